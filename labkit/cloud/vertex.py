"""Lab 06's Vertex AI side: a local stand-in for the API, the serving-contract check, the SDK's
local endpoint, and a target that is the stand-in or a real project behind the spend guard.

The same notebook code runs against both targets through the real ``google-cloud-aiplatform``
SDK: :meth:`Target.init_sdk` points it at the stand-in (REST over plain http, anonymous
credentials) or at the project. Everything a run creates carries the labels
``labkit-lab``/``labkit-run`` (:func:`labkit.spend.resource_tags`), which is what
:meth:`Target.delete_all` and :func:`sweep` look for.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..core import paths
from ..machine import probes
from ..serving import app as serving
from ..serving import contract
from ..serving.contract import Requirement
from ..tools import dockerlab
from . import emulators, spend

STANDIN_SCRIPT = paths.ENVIRONMENTS / "vertex" / "standin.py"
STANDIN_URL_ENV = "LABKIT_VERTEX_URL"  # the stand-in ``labkit grade`` runs for the lab
DEFAULT_PORT = 8090
LOCAL_PROJECT = "labkit-local"
ARTIFACT_MOUNT = "/mnt/vertex-artifacts"  # where the stand-in and contract_report mount a model directory
SIGTERM_LIMIT_S = 10
_STANDIN_URLS: set[str] = set()  # stand-ins of this process, for the artifact shim


class VertexError(RuntimeError):
    """A Vertex step failed; the message says what to do."""


# ---------------------------------------------------------------- the stand-in

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
                        all=True, filters={"label": f"labkit.vertex={self.process.pid}-{self.port}"}):
                    c.remove(force=True)
            except dockerlab.DockerLabError:
                pass
        _STANDIN_URLS.discard(self.url)


def start_standin(lab: str, port: int | None = None, *, show: bool = True, timeout: float = 30) -> StandIn:
    """Start the Vertex AI stand-in for ``lab`` on ``port`` (8090 if free, else a free one) and wait
    until it answers; it is stopped at interpreter exit, and dies with this process. Under
    ``labkit grade`` (``LABKIT_VERTEX_URL`` set, no ``port`` asked for) attach to the grader's."""
    if port is None and (url := os.environ.get(STANDIN_URL_ENV)):
        host, _, found = urllib.parse.urlsplit(url).netloc.rpartition(":")
        standin = StandIn(port=int(found), host=host, lab=lab)
        if not standin.answers():
            raise VertexError(f"the grader's Vertex stand-in at {url} does not answer")
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


# ---------------------------------------------------------------- the serving contract

def contract_report(image: str, *, lab: str, model_dir: str | Path | None = None, port: int = 7080,
                    health_route: str = "/health", predict_route: str = "/predict",
                    timeout: float = 60) -> list[Requirement]:
    """Run ``image`` the way Vertex AI runs a serving container and check its side of the contract.

    Sets ``AIP_HTTP_PORT``/``AIP_HEALTH_ROUTE``/``AIP_PREDICT_ROUTE`` (and ``AIP_STORAGE_URI`` to the
    read-only mounted ``model_dir``), then checks: it listens on AIP_HTTP_PORT, the health route
    answers 200 once ready, the predict route answers the Iris rows right with a JSON content type,
    a malformed body gets a 4xx, the model served is the one in ``model_dir`` (when given), and
    SIGTERM stops it within 10 s. The container is removed.
    """
    env = {"AIP_HTTP_PORT": str(port), "AIP_HEALTH_ROUTE": health_route, "AIP_PREDICT_ROUTE": predict_route,
           "AIP_MODE": "PREDICTION", "AIP_STORAGE_URI": ""}
    volumes = {}
    if model_dir is not None:
        model_dir = Path(model_dir).resolve()
        if not model_dir.is_dir():
            raise VertexError(f"model_dir {model_dir} is not a directory")
        volumes[str(model_dir)] = {"bind": ARTIFACT_MOUNT, "mode": "ro"}
        env["AIP_STORAGE_URI"] = ARTIFACT_MOUNT
    ports = {port: None, **({8080: None} if port != 8080 else {})}
    container = dockerlab.run(image, lab=lab, ports=ports, environment=env, volumes=volumes)
    try:
        return _check_contract(container, port, health_route, predict_route, timeout,
                               _metadata(model_dir) if model_dir is not None else None)
    finally:
        container.remove(force=True)


def _metadata(model_dir: Path) -> dict:
    path = model_dir / "metadata.json"
    return json.loads(path.read_text()) if path.is_file() else {"missing": str(path)}


def _check_contract(container, port: int, health_route: str, predict_route: str,
                    timeout: float, metadata: dict | None) -> list[Requirement]:
    host = dockerlab.host_port(container, port)
    fallback = dockerlab.host_port(container, 8080) if port != 8080 else None

    def answers(on: int) -> int | None:
        return contract.request(on, "GET", health_route, timeout=2).status

    found, deadline, started = [], time.monotonic() + timeout, time.monotonic()
    status = None
    while time.monotonic() < deadline:
        status = answers(host)
        container.reload()
        if status is not None or container.status == "exited":
            break
        if fallback and answers(fallback) is not None:
            time.sleep(1)  # listening on 8080 already: give AIP_HTTP_PORT one more second, no more
            status = answers(host)
            break
        time.sleep(0.3)
    if status is None:
        logs = container.logs(tail=8).decode(errors="replace").strip()
        if container.status == "exited":
            why = f"the container exited (code {container.attrs['State']['ExitCode']}); last log lines:\n{logs}"
        elif fallback and answers(fallback) is not None:
            why = (f"it answers on 8080, not on AIP_HTTP_PORT={port}: read the port from the AIP_HTTP_PORT "
                   "environment variable (Vertex picks it), do not hard-code it")
        else:
            why = f"nothing answered on port {port} within {timeout:.0f}s; last log lines:\n{logs}"
        found.append(Requirement(f"listens on AIP_HTTP_PORT={port}", False, why))
        skipped = "not checked: the server never answered on AIP_HTTP_PORT"
        found += [Requirement(n, False, skipped) for n in (
            f"health route {health_route} answers 200 when ready", f"predict route {predict_route} answers right",
            "predictions come back as JSON", "a malformed body gets a 4xx, not a 5xx")]
    else:
        found.append(Requirement(f"listens on AIP_HTTP_PORT={port}", True,
                                 f"answered after {time.monotonic() - started:.1f}s"))
        found += _check_routes(host, health_route, predict_route, deadline)
        if metadata is not None:
            found.append(contract.serves_model(
                host, metadata, "AIP_STORAGE_URI",
                "the model served is not the one in AIP_STORAGE_URI: is a model baked into the image, or a "
                "model folder given on the command line?"))
    found.append(_check_sigterm(container))
    return found


def _check_routes(host: int, health_route: str, predict_route: str, deadline: float) -> list[Requirement]:
    found = []
    timeline = contract.poll(host, health_route, until=max(0.01, deadline - time.monotonic()), every=0.3)
    status = timeline[-1].reply.status if timeline else None
    found.append(Requirement(f"health route {health_route} answers 200 when ready", status == 200,
                             "200" if status == 200 else f"last answer {status}: serve AIP_HEALTH_ROUTE and "
                             "answer 200 once the model is loaded"))
    reply = contract.post_json(host, predict_route, {"instances": serving.IRIS_ROWS}, timeout=15)
    try:
        predictions = reply.json().get("predictions")
    except (ValueError, AttributeError):
        predictions = None
    right = reply.status == 200 and predictions == serving.IRIS_CLASSES
    raw = reply.body or reply.error.encode()
    found.append(Requirement(
        f"predict route {predict_route} answers right", right,
        f"{serving.IRIS_CLASSES}" if right else f"answer {reply.status}: {raw[:200].decode(errors='replace')!r}; "
        f'expected {{"predictions": {serving.IRIS_CLASSES}}} for {{"instances": <the three Iris rows>}} on '
        "AIP_PREDICT_ROUTE"))
    found.append(Requirement("predictions come back as JSON", reply.content_type == "application/json",
                             f"Content-Type: {reply.content_type or '(none)'}"))
    bad = contract.request(host, "POST", predict_route, b"{not json", headers={"Content-Type": "application/json"},
                           timeout=15)
    ok = bad.status is not None and 400 <= bad.status < 500
    found.append(Requirement("a malformed body gets a 4xx, not a 5xx", ok,
                             f"answered {bad.describe()}" + ("" if ok else ": reject bad input with 400, a 5xx says "
                                                                         "the server is broken (and Vertex may retry it)")))
    return found


def _check_sigterm(container) -> Requirement:
    name = f"stops within {SIGTERM_LIMIT_S} s of SIGTERM"
    container.reload()
    if container.status != "running":
        return Requirement(name, False, f"not checked: the container is {container.status}")
    seconds, code = contract.stop_on_sigterm(container, SIGTERM_LIMIT_S)
    if seconds is None:
        return Requirement(name, False, f"still running {SIGTERM_LIMIT_S} s after SIGTERM: use the exec form of "
                                        "ENTRYPOINT/CMD (or an init) and stop on SIGTERM")
    return Requirement(name, True, f"exited in {seconds:.1f}s (code {code})")


# ---------------------------------------------------------------- the SDK's local endpoint

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
    """The containers of the SDK's local endpoints that ``lab`` opened (created after ``since``, a Unix time)."""
    prefix = LOCAL_ENDPOINT_PREFIX.format(lab=lab)
    found = []
    for container in dockerlab.client().containers.list(all=True):
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


def reference_predictions(image: str, model_dir: str | Path, batches: list, *, lab: str) -> list[list]:
    """What the model says for each batch of rows: from a container of ``image`` that the check
    starts itself with the model in AIP_STORAGE_URI (never from the student's kernel)."""
    container = dockerlab.run(image, lab=lab, name=f"labkit-{lab}-reference", ports={7080: None},
                              environment={"AIP_HTTP_PORT": "7080", "AIP_STORAGE_URI": ARTIFACT_MOUNT},
                              volumes={str(Path(model_dir).resolve()): {"bind": ARTIFACT_MOUNT, "mode": "ro"}})
    try:
        port = dockerlab.host_port(container, 7080)
        if contract.first_ok(contract.poll(port, "/readyz", until=30)) is None:
            raise AssertionError(f"{image} was not ready within 30 s with the model in AIP_STORAGE_URI")
        return [contract.post_json(port, "/predict", {"instances": rows}).json()["predictions"] for rows in batches]
    finally:
        container.remove(force=True)


# ---------------------------------------------------------------- emulator or real project

@dataclass
class Leftover:
    """A labelled Vertex resource: ``kind`` is "endpoint", "deployed model" or "model"."""

    kind: str
    name: str
    display_name: str
    labels: dict[str, str]
    detail: str = ""
    created: datetime | None = None

    @property
    def lab(self) -> str:
        return self.labels.get(spend.LAB_TAG, "")

    @property
    def run(self) -> str:
        return self.labels.get(spend.RUN_TAG, "")

    def describe(self) -> str:
        age = "" if self.created is None else \
            f", {(datetime.now(timezone.utc) - self.created).total_seconds() / 3600:.1f} h old"
        return (f"{self.kind} {self.name} ({self.display_name!r}, lab {self.lab or '?'}, run {self.run or '?'}"
                f"{age}{', ' + self.detail if self.detail else ''})")


@dataclass
class Target:
    """Where lab 06 deploys: the stand-in ("emulator") or a real project ("gcp")."""

    kind: str
    lab: str
    run: str
    project: str
    location: str
    standin: StandIn | None = None
    teardown: spend.Teardown = field(default_factory=spend.Teardown)

    @property
    def labels(self) -> dict[str, str]:
        return spend.resource_tags(self.lab, self.run)

    @property
    def filter(self) -> str:
        return " AND ".join(f'labels.{k}="{v}"' for k, v in self.labels.items())

    def init_sdk(self) -> None:
        if self.kind == "emulator":
            self.standin.init_sdk(self.project, self.location)
            return
        _init_gcp_sdk(self.project, self.location)

    def preflight(self, machine_type: str, count: int = 1) -> spend.Estimate | None:
        """Print what ``count`` machines cost here (the stand-in: nothing)."""
        if self.kind == "emulator":
            print(f"stand-in: {count} × {machine_type} costs $0 (a local container; nothing is billed)")
            return None
        found = spend.estimate("vertex", machine_type, count)
        print(found.describe())
        return found

    def artifacts(self, model_dir: str | Path) -> str:
        """Where Vertex reads the model: the local path (stand-in), or a copy in a labelled bucket."""
        model_dir = Path(model_dir).resolve()
        if not model_dir.is_dir():
            raise VertexError(f"model_dir {model_dir} is not a directory")
        if self.kind == "emulator":
            return str(model_dir)
        from google.cloud import storage
        client = storage.Client(project=self.project)
        bucket = client.bucket(f"labkit-{self.lab}-{self.run}")
        bucket.labels = self.labels
        bucket = client.create_bucket(bucket, location=self.location)
        self.teardown.add(f"bucket gs://{bucket.name}", lambda: bucket.delete(force=True))
        for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
            bucket.blob(f"model/{path.relative_to(model_dir).as_posix()}").upload_from_filename(str(path))
        return f"gs://{bucket.name}/model"

    def image_uri(self, local_image: str) -> str:
        """The image Vertex runs: the local one (stand-in), or a copy pushed to Artifact Registry."""
        if self.kind == "emulator":
            return local_image
        import google.auth
        import google.auth.transport.requests
        credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
        credentials.refresh(google.auth.transport.requests.Request())
        session = google.auth.transport.requests.AuthorizedSession(credentials)
        api = f"https://artifactregistry.googleapis.com/v1/projects/{self.project}/locations/{self.location}"
        found = session.get(f"{api}/repositories/labkit")
        if found.status_code not in (200, 404):
            raise VertexError(f"cannot read Artifact Registry in {self.project} ({found.status_code}): "
                              f"{found.text[:300]} — is the Artifact Registry API enabled?")
        if found.status_code == 404:
            created = session.post(f"{api}/repositories?repositoryId=labkit",
                                   json={"format": "DOCKER", "labels": self.labels})
            if created.status_code >= 300:
                raise VertexError(f"could not create Artifact Registry repository labkit: {created.text[:300]}")
            self.teardown.add("Artifact Registry repository labkit",
                              lambda: session.delete(f"{api}/repositories/labkit").raise_for_status())
            time.sleep(5)  # the repository accepts pushes a few seconds after it is created
        registry = f"{self.location}-docker.pkg.dev"
        name = local_image.rsplit("/", 1)[-1].split(":")[0]
        tag = local_image.rsplit(":", 1)[1] if ":" in local_image.rsplit("/", 1)[-1] else "latest"
        remote = f"{registry}/{self.project}/labkit/{name}"
        auth = {"username": "oauth2accesstoken", "password": credentials.token}
        client = dockerlab.client()
        client.login(registry=registry, **auth)
        client.images.get(local_image).tag(remote, tag)
        for line in client.images.push(remote, tag=tag, auth_config=auth, stream=True, decode=True):
            if "error" in line:
                raise VertexError(f"docker push {remote}:{tag} failed: {line['error']}")
        self.teardown.add(f"image {remote}:{tag}", lambda: session.delete(
            f"{api}/repositories/labkit/packages/{name}").raise_for_status())
        return f"{remote}:{tag}"

    def leftovers(self) -> list[Leftover]:
        """This run's labelled endpoints (with their deployed models) and models that still exist."""
        if self.kind == "emulator" and not self.standin.answers():
            return []
        self.init_sdk()
        return _sweep(self.filter, delete=False)

    def predictions(self) -> list[dict]:
        """Every predict call the stand-in forwarded (``endpoint``, ``deployedModelId``, ``instances``);
        a real project keeps no such log here: []."""
        return self.standin.predictions() if self.kind == "emulator" else []

    def delete_all(self) -> list[Leftover]:
        """Undeploy and delete this run's endpoints and models, then run the teardown list."""
        gone = self._delete_labelled()
        self.teardown.run()
        return gone

    def _delete_labelled(self) -> list[Leftover]:
        if self.kind == "emulator" and not self.standin.answers():
            return []  # the stand-in is gone, and its containers with it
        self.init_sdk()
        return _sweep(self.filter, delete=True)

    def __post_init__(self) -> None:
        """The teardown list starts with this run's labelled endpoints and models."""
        self.teardown.add(f"Vertex endpoints and models labelled {spend.RUN_TAG}={self.run}", self._delete_labelled)


def _default_project() -> str | None:
    """The project of the default credentials (gcloud's configured one), if they name one."""
    import google.auth
    import google.auth.exceptions
    try:
        return google.auth.default()[1]
    except google.auth.exceptions.DefaultCredentialsError:
        return None


def _init_gcp_sdk(project: str, location: str) -> None:
    """The SDK on the real service (gRPC, default credentials), undoing a stand-in's settings."""
    import google.auth
    from google.cloud import aiplatform
    credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    aiplatform.init(project=project, location=location, credentials=credentials,
                    api_endpoint=f"{location}-aiplatform.googleapis.com", api_transport="grpc")


def target(kind: str, *, lab: str, project: str | None = None, location: str = "us-central1",
           confirm_spend: bool = False, standin: StandIn | None = None) -> Target:
    """The stand-in (``"emulator"``; started if not given) or a real project (``"gcp"``: only with
    credentials and ``confirm_spend=True``; project from the argument or GOOGLE_CLOUD_PROJECT).
    Creates nothing in a real project."""
    if kind == "emulator":
        return Target(kind, lab, spend.run_id(), project or LOCAL_PROJECT, location,
                      standin=standin or start_standin(lab))
    if kind != "gcp":
        raise ValueError(f"unknown target kind {kind!r}: use 'emulator' or 'gcp'")
    spend.require_opt_in("Google Cloud (Vertex AI)", confirm_spend=confirm_spend,
                         credentials_reason=probes.gcp_credentials_reason())
    project = project or os.environ.get("GOOGLE_CLOUD_PROJECT")
    if not project:
        raise VertexError("no project: pass project=... or set GOOGLE_CLOUD_PROJECT")
    return Target(kind, lab, spend.run_id(), project, location)


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
        _init_gcp_sdk(project, location)
    return _sweep(f'labels.{spend.LAB_TAG}="{lab}"' if lab else f"labels.{spend.LAB_TAG}:*", delete=delete)


def _sweep(filter_text: str, *, delete: bool) -> list[Leftover]:
    from google.cloud import aiplatform
    found = []
    for endpoint in aiplatform.Endpoint.list(filter=filter_text):
        labels = dict(endpoint.labels)
        found.append(Leftover("endpoint", endpoint.resource_name, endpoint.display_name, labels,
                              f"traffic {dict(endpoint.traffic_split)}", endpoint.create_time))
        for deployed in endpoint.list_models():
            machine = deployed.dedicated_resources.machine_spec.machine_type or "automatic"
            found.append(Leftover("deployed model", f"{endpoint.resource_name}/deployedModels/{deployed.id}",
                                  deployed.display_name, labels,
                                  f"{machine} × {deployed.dedicated_resources.min_replica_count or 1}",
                                  deployed.create_time))
        if delete:
            endpoint.undeploy_all()
            endpoint.delete()
    for model in aiplatform.Model.list(filter=filter_text):
        found.append(Leftover("model", model.resource_name, model.display_name, dict(model.labels),
                              model.container_spec.image_uri if model.container_spec else "", model.create_time))
        if delete:
            model.delete()
    return found
