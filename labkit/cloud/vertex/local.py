"""The aiplatform SDK's local endpoint (``LocalModel.deploy_to_local_endpoint``) for a local image:
its container named for the lab, kept stopped until the lab's cleanup, and found again by name."""

from __future__ import annotations

import atexit
import os
from pathlib import Path

from ...tools import dockerlab
from .standin import LOCAL_PROJECT, VertexError

LOCAL_ENDPOINT_PREFIX = "labkit-{lab}-local-endpoint-"


def _local_endpoint_class(lab: str):
    from google.cloud.aiplatform.prediction.local_endpoint import LocalEndpoint

    class LabLocalEndpoint(LocalEndpoint):
        """The SDK's LocalEndpoint, whose container gets a lab name (the SDK labels nothing) and is
        stopped, not removed, when the block ends: its log shows what it served, and the lab's
        cleanup (or interpreter exit) removes it."""

        def serve(self):
            super().serve()
            container = self.container
            container.rename(LOCAL_ENDPOINT_PREFIX.format(lab=lab) + container.short_id)
            atexit.register(lambda: _remove_quietly(container))

        def _stop_container_if_exists(self):
            if self.container is not None:
                try:
                    self.container.stop(timeout=5)
                except dockerlab.docker.errors.NotFound:
                    pass
                self.container = None

    return LabLocalEndpoint


def _remove_quietly(container) -> None:
    try:
        container.remove(force=True)
    except dockerlab.docker.errors.NotFound:
        pass


def local_endpoint_containers(lab: str, *, since: float = 0.0) -> list:
    """The containers of the SDK's local endpoints that ``lab`` opened (created after ``since``, a Unix time).
    Only containers so named are listed, and one removed while the list is read is left out: other
    labs' containers come and go meanwhile, and the SDK inspects each container it lists."""
    prefix = LOCAL_ENDPOINT_PREFIX.format(lab=lab)
    found = []
    for container in dockerlab.client().containers.list(all=True, filters={"name": prefix}, ignore_removed=True):
        if container.name.startswith(prefix) and dockerlab.created_at(container) >= since:
            found.append(container)
    return found


def local_endpoint(image: str, *, lab: str, model_dir: str | Path | None = None, health_route: str = "/health",
                   predict_route: str = "/predict", port: int = 7080, ready_timeout: int = 60):
    """The SDK's ``LocalModel(...).deploy_to_local_endpoint(...)`` for a local image (never pulled).

    Returns the LocalEndpoint, not started: use it as a context manager (``with ... as endpoint:``),
    then ``endpoint.predict(request=...)``, ``run_health_check()``, ``print_container_logs()``.
    No credentials are mounted and no GPU is requested. The SDK does not label its container, so
    it is named ``labkit-<lab>-local-endpoint-<id>``; it is stopped when the block ends (its log
    stays readable) and removed by the lab's cleanup or at interpreter exit.
    """
    from google.cloud.aiplatform import initializer
    from google.cloud.aiplatform.prediction import LocalModel
    try:
        dockerlab.client().images.get(image)
    except Exception:  # noqa: BLE001 - ImageNotFound or no engine: say what to do
        raise VertexError(f"lab {lab}: image {image} does not exist locally: build it first "
                          "(the local endpoint never pulls)") from None
    if not initializer.global_config._project:  # else the SDK asks google.auth for one (slow, offline)
        initializer.global_config._project = os.environ.get("GOOGLE_CLOUD_PROJECT") or LOCAL_PROJECT
    model = LocalModel(serving_container_image_uri=image, serving_container_predict_route=predict_route,
                       serving_container_health_route=health_route, serving_container_ports=[port])
    previous = os.environ.pop("GOOGLE_APPLICATION_CREDENTIALS", None)  # keep real keys out of the container
    try:
        endpoint = model.deploy_to_local_endpoint(
            artifact_uri=str(Path(model_dir).resolve()) if model_dir else None, credential_path=None,
            container_ready_timeout=ready_timeout, container_ready_check_interval=1)
    finally:
        if previous is not None:
            os.environ["GOOGLE_APPLICATION_CREDENTIALS"] = previous
    endpoint.__class__ = _local_endpoint_class(lab)
    return endpoint

