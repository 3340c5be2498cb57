"""Lab 06's Vertex AI side: a local stand-in for the API (standin), the serving-contract check
(contract), the SDK's local endpoint (local), and a target that is the stand-in or a real project
behind the spend guard (targets), whose labelled leftovers a sweep finds (leftovers).

The same notebook code runs against both targets through the real ``google-cloud-aiplatform``
SDK: :meth:`Target.init_sdk` points it at the stand-in (REST over plain http, anonymous
credentials) or at the project. Everything a run creates carries the labels
``labkit-lab``/``labkit-run`` (:func:`labkit.spend.resource_tags`), which is what
:meth:`Target.delete_all` and :func:`sweep` look for.
"""

from ..target import Deletion, Leftover
from .contract import SIGTERM_LIMIT_S, contract_report, reference_predictions
from .leftovers import sweep
from .local import LOCAL_ENDPOINT_PREFIX, local_endpoint, local_endpoint_containers
from .standin import (ARTIFACT_MOUNT, DEFAULT_PORT, LOCAL_PROJECT, STANDIN_SCRIPT, STANDIN_URL_ENV, StandIn,
                      VertexError, start_standin)
from .targets import Target, target

__all__ = ["ARTIFACT_MOUNT", "DEFAULT_PORT", "Deletion", "LOCAL_ENDPOINT_PREFIX", "LOCAL_PROJECT", "Leftover",
           "SIGTERM_LIMIT_S", "STANDIN_SCRIPT", "STANDIN_URL_ENV", "StandIn", "Target", "VertexError",
           "contract_report", "local_endpoint", "local_endpoint_containers", "reference_predictions",
           "start_standin", "sweep", "target"]
