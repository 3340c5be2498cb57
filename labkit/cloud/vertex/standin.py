"""Lab 06's Vertex AI stand-in: start ``environments/vertex/standin.py`` (or attach to the grader's),
point the aiplatform SDK at it, and read what it holds and what it forwarded."""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ...core import labels, paths
from ...core.errors import LabkitError
from ...tools import dockerlab
from .. import emulators

STANDIN_SCRIPT = paths.ENVIRONMENTS / "vertex" / "standin.py"
STANDIN_URL_ENV = "LABKIT_VERTEX_URL"  # the stand-in ``labkit grade`` runs for the lab
DEFAULT_PORT = 8090
LOCAL_PROJECT = "labkit-local"
#: Where the stand-in and contract_report mount a model directory (standin.py spells it too; a test keeps both equal).
ARTIFACT_MOUNT = "/mnt/vertex-artifacts"
_STANDIN_URLS: set[str] = set()  # stand-ins of this process, for the artifact shim


class VertexError(LabkitError):
    """A Vertex step failed; the message says what to do."""


@dataclass
class StandIn(emulators.ChildServer):
    """A running ``environments/vertex/standin.py`` (a teaching stand-in, not an emulator)."""

    lab: str = ""
    health_path = "/standin/health"

    def init_sdk(self, project: str = LOCAL_PROJECT, location: str = "us-central1") -> None:
        """Point the aiplatform SDK at this stand-in: REST transport, plain http, anonymous credentials.

        The REST transports take a scheme in the endpoint (``http://127.0.0.1:PORT``). A local
        ``artifact_uri`` given to ``Model.upload`` is passed through as a path instead of being
        copied to a Cloud Storage staging bucket, which the stand-in does not have.
        """
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import aiplatform
        _install_artifact_shim()
        aiplatform.init(project=project, location=location, api_endpoint=self.url, api_transport="rest",
                        credentials=AnonymousCredentials())

    def resources(self) -> dict:
        """What the stand-in holds: ``models``, ``endpoints`` (REST JSON) and ``containers``."""
        with urllib.request.urlopen(f"{self.url}/standin/resources", timeout=5) as r:
            return json.load(r)

    def predictions(self) -> list[dict]:
        """Every predict call the stand-in forwarded: ``endpoint``, ``deployedModelId``, ``instances``."""
        with urllib.request.urlopen(f"{self.url}/standin/predictions", timeout=5) as r:
            return json.load(r)["predictions"]

    def stop(self, show: bool = False) -> None:
        """Stop the server, which removes its model containers (safe to repeat); the grader's is left running."""
        if self.attached:
            if show:
                print(f"the Vertex stand-in on port {self.port} belongs to the grader: it stops it")
            return
        if self.terminate(grace=30) and show:
            print(f"stopped the Vertex stand-in on port {self.port}")
        if self.process is not None:  # a killed server cannot clean up: remove what it left
            try:
                for c in dockerlab.client().containers.list(
                        all=True, filters={"label": f"{labels.VERTEX_SERVER}={self.process.pid}-{self.port}"}):
                    c.remove(force=True)
            except dockerlab.DockerLabError:
                pass
        _STANDIN_URLS.discard(self.url)


def start_standin(lab: str, port: int | None = None, *, show: bool = True, timeout: float = 30) -> StandIn:
    """Start the Vertex AI stand-in for ``lab`` on ``port`` (8090 if free, else a free one) and wait
    until it answers; it is stopped at interpreter exit, and dies with this process. Under
    ``labkit grade`` (``LABKIT_VERTEX_URL`` set, no ``port`` asked for) attach to the grader's."""
    if port is None and (url := os.environ.get(STANDIN_URL_ENV)):
        standin = StandIn.attach(url, error=VertexError, lab=lab)
        _STANDIN_URLS.add(standin.url)
        if show:
            print(f"Vertex AI stand-in (teaching stand-in, not an emulator) answers on {standin.url} "
                  "(started by the grader)")
        return standin
    standin = emulators.start_child(StandIn, [sys.executable, str(STANDIN_SCRIPT), "--port", "{port}", "--lab", lab],
                                    name="the Vertex stand-in", port=port, default_port=DEFAULT_PORT,
                                    timeout=timeout, error=VertexError, lab=lab)
    _STANDIN_URLS.add(standin.url)
    if show:
        print(f"Vertex AI stand-in (teaching stand-in, not an emulator) answers on {standin.url} "
              f"(pid {standin.process.pid}, log {standin.log_path})")
    return standin


def _install_artifact_shim() -> None:
    """While the SDK points at one of our stand-ins, ``Model.upload(artifact_uri=<local dir>)`` keeps
    the path (the stand-in mounts it) instead of staging it in a Cloud Storage bucket."""
    from google.cloud.aiplatform import initializer
    from google.cloud.aiplatform.utils import gcs_utils
    original = gcs_utils.stage_local_data_in_gcs
    if getattr(original, "labkit_shim", False):
        return

    def stage(data_path: str, *args, **kwargs) -> str:
        if initializer.global_config.api_endpoint in _STANDIN_URLS:
            return str(Path(data_path).resolve())
        return original(data_path, *args, **kwargs)

    stage.labkit_shim = True
    gcs_utils.stage_local_data_in_gcs = stage

