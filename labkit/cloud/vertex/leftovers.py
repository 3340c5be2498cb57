"""Labelled Vertex resources: endpoints (with their deployed models) and models carrying
``labkit-lab``/``labkit-run``, listed or deleted on the stand-in or in a real project."""

from __future__ import annotations

import os

from ...core import labels
from ...machine import probes
from ..target import Leftover
from .standin import StandIn, VertexError


def _default_project() -> str | None:
    """The project of the default credentials (gcloud's configured one), if they name one."""
    import google.auth
    import google.auth.exceptions
    try:
        return google.auth.default()[1]
    except google.auth.exceptions.DefaultCredentialsError:
        return None


def init_gcp_sdk(project: str, location: str) -> None:
    """The SDK on the real service (gRPC, default credentials), undoing a stand-in's settings."""
    import google.auth
    from google.cloud import aiplatform
    credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    aiplatform.init(project=project, location=location, credentials=credentials,
                    api_endpoint=f"{location}-aiplatform.googleapis.com", api_transport="grpc")


def sweep(*, delete: bool = False, lab: str | None = None, standin: StandIn | None = None,
          project: str | None = None, location: str = "us-central1") -> list[Leftover]:
    """Labelled leftovers (endpoints with their deployed models, models) of ``lab`` or of every lab,
    on the stand-in when given, else in the project (argument, GOOGLE_CLOUD_PROJECT, or the default
    credentials' project); ``delete=True`` removes them."""
    if standin is not None:
        standin.init_sdk(location=location)
    else:
        reason = probes.gcp_credentials_reason()
        project = project or os.environ.get("GOOGLE_CLOUD_PROJECT") or (None if reason else _default_project())
        if reason or not project:
            why = reason or "no project: pass project= or set GOOGLE_CLOUD_PROJECT"
            raise VertexError(f"cannot look at Google Cloud: {why}")
        init_gcp_sdk(project, location)
    return find(f'labels.{labels.LAB_TAG}="{lab}"' if lab else f"labels.{labels.LAB_TAG}:*", delete=delete)


def find(filter_text: str, *, delete: bool) -> list[Leftover]:
    """The endpoints (each followed by its deployed models) and models the SDK lists for
    ``filter_text``, where it points now; ``delete=True`` undeploys and deletes them."""
    from google.cloud import aiplatform
    found = []
    for endpoint in aiplatform.Endpoint.list(filter=filter_text):
        tags = dict(endpoint.labels)
        found.append(Leftover("endpoint", endpoint.resource_name, tags, endpoint.create_time,
                              endpoint.display_name, f"traffic {dict(endpoint.traffic_split)}"))
        for deployed in endpoint.list_models():
            machine = deployed.dedicated_resources.machine_spec.machine_type or "automatic"
            found.append(Leftover("deployed model", f"{endpoint.resource_name}/deployedModels/{deployed.id}",
                                  tags, deployed.create_time, deployed.display_name,
                                  f"{machine} × {deployed.dedicated_resources.min_replica_count or 1}"))
        if delete:
            endpoint.undeploy_all()
            endpoint.delete()
    for model in aiplatform.Model.list(filter=filter_text):
        found.append(Leftover("model", model.resource_name, dict(model.labels), model.create_time, model.display_name,
                              model.container_spec.image_uri if model.container_spec else ""))
        if delete:
            model.delete()
    return found
