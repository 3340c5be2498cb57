"""A teaching stand-in for the Vertex AI REST API (v1) -- NOT an emulator.

Google publishes no Vertex AI emulator. This small server answers only the REST calls that
lab 06 makes through the real ``google-cloud-aiplatform`` SDK (``api_transport="rest"``,
``api_endpoint="http://127.0.0.1:PORT"``, anonymous credentials), so that the lab's code is the
code a student runs against a real project, and deployments run the student's real container:

  models:upload, models get/list/delete            (upload and delete are operations)
  endpoints create/get/list/delete                 (create and delete are operations)
  endpoints:deployModel / :undeployModel           (operations; deploy starts a container)
  endpoints:predict                                (forwarded to a container by traffic split)
  operations get                                   (what the SDK polls)

What differs from Vertex AI: no IAM or quotas, any credentials are accepted; machines are
"instant" and all replicas are one local container (machine type and replica counts are stored,
never used); no autoscaling; artifacts are local directories only (``gs://`` is refused);
the image must exist locally (never pulled); errors that Vertex reports before an operation
starts (deleting an endpoint with deployed models) come back as a failed operation, which the
SDK raises as the same ``google.api_core`` exception as over gRPC. State is in memory only.

Run: ``python environments/vertex/standin.py --port 8090 --lab 06``. SIGTERM or Ctrl-C removes
every container it started. ``GET /standin/resources`` lists what it holds, and
``GET /standin/predictions`` every predict call it forwarded (so a check can tell that a
prediction really went through the endpoint).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import re
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

API = "type.googleapis.com/google.cloud.aiplatform.v1."
# Shared with labkit, which this process cannot import: tests/test_vertex_standin.py keeps them equal.
ARTIFACT_MOUNT = "/mnt/vertex-artifacts"
LAB_LABEL, ROLE_LABEL = "labkit.lab", "labkit.vertex"
ENDPOINT_LABEL, DEPLOYED_MODEL_LABEL = "labkit.vertex.endpoint", "labkit.vertex.deployed-model"
HTTP_STATUS = {"INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "NOT_FOUND": 404, "ALREADY_EXISTS": 409,
               "INTERNAL": 500, "UNIMPLEMENTED": 501, "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504}
GRPC_CODE = {"INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4, "NOT_FOUND": 5, "ALREADY_EXISTS": 6,
             "FAILED_PRECONDITION": 9, "INTERNAL": 13, "UNIMPLEMENTED": 12, "UNAVAILABLE": 14}


class ApiError(Exception):
    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def matches(filter_text: str, resource: dict) -> bool:
    """The subset of AIP-160 filters the lab uses: ``labels.K=V``, ``labels.K:*``,
    ``display_name=V``, joined with AND."""
    for term in filter(None, re.split(r"\s+AND\s+", filter_text.strip(), flags=re.IGNORECASE)):
        m = re.fullmatch(r'\s*labels\.([\w-]+)\s*(=|:)\s*"?([^"]*)"?\s*', term)
        if m:
            key, op, value = m.groups()
            labels = resource.get("labels") or {}
            if key not in labels or (not (op == ":" and value == "*") and labels[key] != value):
                return False
            continue
        m = re.fullmatch(r'\s*(display_name|displayName)\s*=\s*"?([^"]*)"?\s*', term)
        if not m:
            raise ApiError("INVALID_ARGUMENT", f"unsupported filter term {term!r}: the stand-in knows "
                                               "labels.KEY=VALUE, labels.KEY:* and display_name=VALUE")
        if resource.get("displayName") != m.group(2):
            return False
    return True


class Docker:
    """The container side: one container per deployed model, labelled so it can be found."""

    def __init__(self, lab: str, server_id: str, deploy_timeout: float):
        import docker
        self.client = docker.from_env()
        self.lab, self.server_id, self.deploy_timeout = lab, server_id, deploy_timeout

    def start(self, model: dict, endpoint_id: str, deployed_id: str) -> tuple[object, int]:
        import docker.errors
        spec = model.get("containerSpec") or {}
        image = spec.get("imageUri", "")
        try:
            self.client.images.get(image)
        except docker.errors.ImageNotFound:
            raise ApiError("FAILED_PRECONDITION", f"image {image!r} does not exist locally: build it (or docker "
                                                  "pull/tag it) first; the stand-in never pulls images") from None
        port = int(((spec.get("ports") or [{}])[0]).get("containerPort") or 8080)
        prefix = f"/v1/endpoints/{endpoint_id}/deployedModels/{deployed_id}"
        health, predict = spec.get("healthRoute") or prefix, spec.get("predictRoute") or f"{prefix}:predict"
        env = {e["name"]: e.get("value", "") for e in spec.get("env") or []}
        env.update(AIP_HTTP_PORT=str(port), AIP_HEALTH_ROUTE=health, AIP_PREDICT_ROUTE=predict,
                   AIP_DEPLOYED_MODEL_ID=deployed_id, AIP_ENDPOINT_ID=endpoint_id, AIP_MODE="PREDICTION",
                   AIP_MODEL_DIR="", AIP_STORAGE_URI="")
        volumes = {}
        uri = model.get("artifactUri") or ""
        if uri.startswith("gs://"):
            raise ApiError("FAILED_PRECONDITION", f"artifactUri {uri} is in Cloud Storage: the stand-in serves "
                                                  "local directories only (pass the local model directory)")
        if uri:
            path = Path(uri.removeprefix("file://")).expanduser()
            if not path.is_dir():
                raise ApiError("FAILED_PRECONDITION", f"artifactUri {uri} is not a directory on this machine")
            volumes[str(path.resolve())] = {"bind": ARTIFACT_MOUNT, "mode": "ro"}
            env["AIP_STORAGE_URI"] = env["AIP_MODEL_DIR"] = ARTIFACT_MOUNT
        container = self.client.containers.run(
            image, entrypoint=spec.get("command") or None, command=spec.get("args") or None,
            environment=env, ports={f"{port}/tcp": ("127.0.0.1", None)}, volumes=volumes, detach=True,
            name=f"vertex-standin-{endpoint_id}-{deployed_id}",
            labels={LAB_LABEL: self.lab, ROLE_LABEL: self.server_id, ENDPOINT_LABEL: endpoint_id,
                    DEPLOYED_MODEL_LABEL: deployed_id})
        try:
            host_port = self._wait_healthy(container, port, health)
        except ApiError:
            container.remove(force=True)
            raise
        return container, host_port

    def _wait_healthy(self, container, port: int, route: str) -> int:
        deadline = time.monotonic() + self.deploy_timeout
        while True:
            container.reload()
            if container.status == "exited":
                raise ApiError("FAILED_PRECONDITION", f"the model container exited (code "
                               f"{container.attrs['State']['ExitCode']}) before its health route {route} "
                               f"answered 200. Last log lines:\n{self.logs(container)}")
            bindings = (container.attrs["NetworkSettings"]["Ports"] or {}).get(f"{port}/tcp")
            if bindings:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{bindings[0]['HostPort']}{route}", timeout=2) as r:
                        if r.status == 200:
                            return int(bindings[0]["HostPort"])
                except (urllib.error.URLError, OSError):
                    pass
            if time.monotonic() > deadline:
                raise ApiError("DEADLINE_EXCEEDED", f"the model container did not answer 200 on its health route "
                               f"{route} (port {port}, AIP_HTTP_PORT) within {self.deploy_timeout:.0f}s. "
                               f"Last log lines:\n{self.logs(container)}")
            time.sleep(0.3)

    @staticmethod
    def logs(container, lines: int = 20) -> str:
        return container.logs(tail=lines).decode(errors="replace").rstrip()

    def remove_all(self) -> int:
        found = self.client.containers.list(all=True, filters={"label": f"{ROLE_LABEL}={self.server_id}"})
        for container in found:
            container.remove(force=True)
        return len(found)


class State:
    """Models, endpoints and operations, in memory; one lock guards them."""

    def __init__(self, docker: Docker | None):
        self.lock = threading.RLock()
        self.models: dict[str, dict] = {}
        self.endpoints: dict[str, dict] = {}
        self.operations: dict[str, dict] = {}
        self.containers: dict[str, tuple[object, int]] = {}  # deployed model id -> (container, host port)
        self.predictions: list[dict] = []  # every predict call forwarded: endpoint, deployed model, instances
        self.ids = itertools.count(int(time.time()) % 100000 * 1000)
        self.docker = docker

    def new_id(self) -> str:
        return str(next(self.ids))

    # ---- operations
    def operation(self, parent: str, metadata_type: str, work) -> dict:
        """Start ``work()`` (returns the response dict) in a thread; the operation records its result."""
        name = f"{parent}/operations/{self.new_id()}"
        op = {"name": name, "done": False,
              "metadata": {"@type": API + metadata_type, "genericMetadata": {"createTime": now(), "updateTime": now()}}}
        with self.lock:
            self.operations[name] = op

        def run():
            try:
                result = work()
                update = {"done": True, "response": result}
            except ApiError as exc:
                update = {"done": True, "error": {"code": GRPC_CODE[exc.status], "message": exc.message}}
            except Exception as exc:  # noqa: BLE001 - reported to the caller, as Vertex would
                update = {"done": True, "error": {"code": GRPC_CODE["INTERNAL"], "message": f"{exc!r}"}}
            with self.lock:
                op.update(update)
                op["metadata"]["genericMetadata"]["updateTime"] = now()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        thread.join(0.05)  # quick work completes in the first answer, as on Vertex
        with self.lock:
            return dict(op)

    # ---- models (each model id holds its versions: {version id: resource})
    def upload(self, parent: str, body: dict) -> dict:
        model = dict(body.get("model") or {})
        if not (model.get("containerSpec") or {}).get("imageUri"):
            raise ApiError("INVALID_ARGUMENT", "model.containerSpec.imageUri is required")
        parent_model = body.get("parentModel", "")
        model_id = parent_model.rsplit("/", 1)[-1] if parent_model else body.get("modelId") or self.new_id()
        name = f"{parent}/models/{model_id}"
        with self.lock:
            versions = self.models.get(model_id)
            if parent_model and versions is None:
                raise ApiError("NOT_FOUND", f"parent model {parent_model} not found")
            if versions is not None and not parent_model:
                raise ApiError("ALREADY_EXISTS", f"model {name} already exists: upload a new version with parent_model")
            versions = self.models.setdefault(model_id, {})
            version = str(max(map(int, versions), default=0) + 1)
            aliases = list(model.get("versionAliases") or ([] if versions else ["default"]))
            if not versions and "default" not in aliases:
                aliases.append("default")  # the first version is the default one
            if "default" in aliases:
                for older in versions.values():
                    older["versionAliases"] = [a for a in older["versionAliases"] if a != "default"]
            stamp = now()
            model.update(name=name, createTime=stamp, updateTime=stamp, versionId=version, versionAliases=aliases,
                         versionCreateTime=stamp, versionUpdateTime=stamp, etag=self.new_id(),
                         supportedDeploymentResourcesTypes=["DEDICATED_RESOURCES"], deployedModels=[])
            model.setdefault("labels", {})
            versions[version] = model
        return self.operation(parent, "UploadModelOperationMetadata",
                              lambda: {"@type": API + "UploadModelResponse", "model": name, "modelVersionId": version})

    def model(self, ref: str) -> dict:
        """``ID`` (the default version), ``ID@VERSION`` or ``ID@ALIAS``."""
        model_id, _, wanted = ref.rsplit("/", 1)[-1].partition("@")
        with self.lock:
            versions = self.models.get(model_id) or {}
            found = versions.get(wanted) or next(
                (v for v in versions.values() if (wanted or "default") in v["versionAliases"]), None)
            if found is None:
                raise ApiError("NOT_FOUND", f"model {ref} not found")
            return found

    def delete_model(self, parent: str, ref: str) -> dict:
        model = self.model(ref)
        model_id, _, version = ref.partition("@")

        def work():
            with self.lock:
                versions = self.models[model_id]
                doomed = [model] if version else list(versions.values())
                deployed = [d for m in doomed for d in m["deployedModels"]]
                if deployed:
                    raise ApiError("FAILED_PRECONDITION", f"model {model['name']} is deployed to "
                                   f"{deployed[0]['endpoint']}: undeploy it first")
                if version and "default" in model["versionAliases"] and len(versions) > 1:
                    raise ApiError("FAILED_PRECONDITION", "the default version cannot be deleted while other "
                                                          "versions exist: make another version the default first")
                for m in doomed:
                    del versions[m["versionId"]]
                if not versions:
                    del self.models[model_id]
            return {"@type": "type.googleapis.com/google.protobuf.Empty"}
        return self.operation(parent, "DeleteOperationMetadata", work)

    def all_models(self, default_only: bool = False) -> list[dict]:
        with self.lock:
            return [m for versions in self.models.values() for m in versions.values()
                    if not default_only or "default" in m["versionAliases"]]

    # ---- endpoints
    def create_endpoint(self, parent: str, body: dict, endpoint_id: str | None) -> dict:
        endpoint_id = endpoint_id or self.new_id()
        name = f"{parent}/endpoints/{endpoint_id}"
        with self.lock:
            if endpoint_id in self.endpoints:
                raise ApiError("ALREADY_EXISTS", f"endpoint {name} already exists")
            stamp = now()
            endpoint = {**body, "name": name, "createTime": stamp, "updateTime": stamp, "etag": self.new_id(),
                        "deployedModels": [], "trafficSplit": {}}
            endpoint.setdefault("labels", {})
            self.endpoints[endpoint_id] = endpoint
        return self.operation(parent, "CreateEndpointOperationMetadata",
                              lambda: {"@type": API + "Endpoint", **self.endpoint(endpoint_id)})

    def endpoint(self, endpoint_id: str) -> dict:
        with self.lock:
            if endpoint_id not in self.endpoints:
                raise ApiError("NOT_FOUND", f"endpoint {endpoint_id} not found")
            return self.endpoints[endpoint_id]

    def delete_endpoint(self, parent: str, endpoint_id: str) -> dict:
        endpoint = self.endpoint(endpoint_id)

        def work():
            with self.lock:
                if endpoint["deployedModels"]:
                    raise ApiError("FAILED_PRECONDITION", f"endpoint {endpoint['name']} has deployed models "
                                   f"({', '.join(d['id'] for d in endpoint['deployedModels'])}): undeploy them "
                                   "first (endpoint.undeploy_all() or endpoint.delete(force=True))")
                del self.endpoints[endpoint_id]
            return {"@type": "type.googleapis.com/google.protobuf.Empty"}
        return self.operation(parent, "DeleteOperationMetadata", work)

    def deploy(self, parent: str, endpoint_id: str, body: dict) -> dict:
        endpoint = self.endpoint(endpoint_id)
        wanted = dict(body.get("deployedModel") or {})
        model = self.model(wanted.get("model", ""))
        if self.docker is None:
            raise ApiError("UNAVAILABLE", "this stand-in runs without Docker: deployModel needs a Docker engine")
        deployed_id = wanted.get("id") or self.new_id()
        split = {k: int(v) for k, v in (body.get("trafficSplit") or {}).items()}
        if split and sum(split.values()) != 100:
            raise ApiError("INVALID_ARGUMENT", f"trafficSplit {split} must add up to 100")

        def work():
            container, host_port = self.docker.start(model, endpoint_id, deployed_id)
            deployed = {**wanted, "id": deployed_id, "model": model["name"], "modelVersionId": model["versionId"],
                        "createTime": now()}
            deployed.setdefault("displayName", model.get("displayName", ""))
            with self.lock:
                self.containers[deployed_id] = (container, host_port)
                endpoint["deployedModels"].append(deployed)
                if split:  # "0" names the model being deployed; an empty split leaves the old one
                    endpoint["trafficSplit"] = {(deployed_id if k == "0" else k): v for k, v in split.items() if v}
                elif not endpoint["trafficSplit"]:
                    endpoint["trafficSplit"] = {deployed_id: 100}
                endpoint["updateTime"] = now()
                model["deployedModels"].append({"endpoint": endpoint["name"], "deployedModelId": deployed_id})
            return {"@type": API + "DeployModelResponse", "deployedModel": deployed}
        return self.operation(parent, "DeployModelOperationMetadata", work)

    def undeploy(self, parent: str, endpoint_id: str, body: dict) -> dict:
        endpoint = self.endpoint(endpoint_id)
        deployed_id = body.get("deployedModelId", "")
        with self.lock:
            deployed = next((d for d in endpoint["deployedModels"] if d["id"] == deployed_id), None)
        if deployed is None:
            raise ApiError("NOT_FOUND", f"deployed model {deployed_id} not found on {endpoint['name']}")
        split = {k: int(v) for k, v in (body.get("trafficSplit") or {}).items() if int(v)}
        rest = {k: v for k, v in endpoint["trafficSplit"].items() if k != deployed_id}
        if not split and len(endpoint["deployedModels"]) > 1 and endpoint["trafficSplit"].get(deployed_id):
            raise ApiError("FAILED_PRECONDITION", f"deployed model {deployed_id} still gets traffic: pass a "
                                                  "trafficSplit for the models that stay")

        def work():
            container = self.containers.pop(deployed_id, (None, 0))[0]
            if container is not None:
                container.remove(force=True)
            with self.lock:
                endpoint["deployedModels"].remove(deployed)
                endpoint["trafficSplit"] = split or rest
                endpoint["updateTime"] = now()
                model = self.model(f"{deployed['model']}@{deployed['modelVersionId']}")
                model["deployedModels"] = [d for d in model["deployedModels"] if d["deployedModelId"] != deployed_id]
            return {"@type": API + "UndeployModelResponse"}
        return self.operation(parent, "UndeployModelOperationMetadata", work)

    def predict(self, endpoint_id: str, body: dict) -> dict:
        endpoint = self.endpoint(endpoint_id)
        with self.lock:
            split = {k: v for k, v in endpoint["trafficSplit"].items() if v > 0 and k in self.containers}
        if not split:
            raise ApiError("FAILED_PRECONDITION", f"endpoint {endpoint['name']} has no deployed model that "
                                                  "receives traffic: deploy a model first")
        deployed_id = random.choices(list(split), weights=list(split.values()))[0]
        deployed = next(d for d in endpoint["deployedModels"] if d["id"] == deployed_id)
        model = self.model(f"{deployed['model']}@{deployed['modelVersionId']}")
        spec = model.get("containerSpec") or {}
        route = spec.get("predictRoute") or f"/v1/endpoints/{endpoint_id}/deployedModels/{deployed_id}:predict"
        host_port = self.containers[deployed_id][1]
        payload = {k: body[k] for k in ("instances", "parameters") if k in body}
        request = urllib.request.Request(f"http://127.0.0.1:{host_port}{route}", json.dumps(payload).encode(),
                                         {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as r:
                answer = json.load(r)
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace")[:500]
            raise ApiError("INVALID_ARGUMENT" if exc.code < 500 else "INTERNAL",
                           f"the model container answered {exc.code}: {text}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise ApiError("UNAVAILABLE", f"the model container did not answer on {route}: {exc}") from None
        if not isinstance(answer, dict) or "predictions" not in answer:
            raise ApiError("INTERNAL", "the model container's answer has no \"predictions\" key: a Vertex "
                                       "container must return {\"predictions\": [...]}")
        with self.lock:
            self.predictions.append({"endpoint": endpoint["name"], "deployedModelId": deployed_id,
                                     "instances": payload.get("instances"), "predictions": answer["predictions"],
                                     "time": now()})
        return {"predictions": answer["predictions"], "deployedModelId": deployed_id, "model": deployed["model"],
                "modelDisplayName": model.get("displayName", ""), "modelVersionId": model["versionId"]}

    def resources(self) -> dict:
        with self.lock:
            return {"models": self.all_models(), "endpoints": list(self.endpoints.values()),
                    "containers": [{"deployedModelId": k, "container": c.id, "hostPort": p}
                                   for k, (c, p) in self.containers.items()]}


PARENT = r"(?P<parent>projects/[^/]+/locations/[^/]+)"
ROUTES = [  # (method, pattern on the path after /v1/, handler name)
    ("POST", rf"{PARENT}/models:upload", "upload"),
    ("GET", rf"{PARENT}/models", "list_models"),
    ("GET", rf"{PARENT}/models/(?P<id>[^/:]+)", "get_model"),
    ("DELETE", rf"{PARENT}/models/(?P<id>[^/:]+)", "delete_model"),
    ("POST", rf"{PARENT}/endpoints", "create_endpoint"),
    ("GET", rf"{PARENT}/endpoints", "list_endpoints"),
    ("GET", rf"{PARENT}/endpoints/(?P<id>[^/:]+)", "get_endpoint"),
    ("DELETE", rf"{PARENT}/endpoints/(?P<id>[^/:]+)", "delete_endpoint"),
    ("POST", rf"{PARENT}/endpoints/(?P<id>[^/:]+):deployModel", "deploy"),
    ("POST", rf"{PARENT}/endpoints/(?P<id>[^/:]+):undeployModel", "undeploy"),
    ("POST", rf"{PARENT}/endpoints/(?P<id>[^/:]+):predict", "predict"),
    ("GET", r"(?P<name>projects/.+/operations/[^/:]+)", "get_operation"),
]


class Handler(BaseHTTPRequestHandler):
    state: State  # set on the class by serve()
    server_version = "vertex-standin/1"

    def log_message(self, fmt, *args):
        sys.stderr.write(f"{self.log_date_time_string()} {fmt % args}\n")

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def dispatch(self, method: str) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}") if length else {}
            if url.path == "/standin/resources" and method == "GET":
                return self.reply(200, self.state.resources())
            if url.path == "/standin/predictions" and method == "GET":
                with self.state.lock:
                    return self.reply(200, {"predictions": list(self.state.predictions)})
            if url.path == "/standin/health":
                return self.reply(200, {"status": "ok"})
            path = re.sub(r"^/(v1|ui)/", "", urllib.parse.unquote(url.path))  # the SDK polls operations under /ui/ too
            for verb, pattern, action in ROUTES:
                m = re.fullmatch(pattern, path)
                if verb == method and m:
                    return self.reply(200, getattr(self, action)(body=body, query=query, **m.groupdict()))
            raise ApiError("UNIMPLEMENTED", f"{method} {url.path} is not one of the calls this teaching stand-in "
                                            "serves (see environments/vertex/README.md)")
        except ApiError as exc:
            self.reply(HTTP_STATUS[exc.status], {"error": {"code": HTTP_STATUS[exc.status], "message": exc.message,
                                                           "status": exc.status}})
        except ValueError as exc:
            self.reply(400, {"error": {"code": 400, "message": f"bad request body: {exc}",
                                       "status": "INVALID_ARGUMENT"}})

    def reply(self, code: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    # ---- actions
    def upload(self, parent, body, query):
        return self.state.upload(parent, body)

    def get_model(self, parent, id, body, query):
        return self.state.model(id)

    def list_models(self, parent, body, query):
        with self.state.lock:
            found = self.state.all_models(default_only=True)
            return {"models": [m for m in found if matches(query.get("filter", ""), m)]}

    def delete_model(self, parent, id, body, query):
        return self.state.delete_model(parent, id)

    def create_endpoint(self, parent, body, query):
        return self.state.create_endpoint(parent, body, query.get("endpointId"))

    def get_endpoint(self, parent, id, body, query):
        return self.state.endpoint(id)

    def list_endpoints(self, parent, body, query):
        with self.state.lock:
            return {"endpoints": [e for e in self.state.endpoints.values() if matches(query.get("filter", ""), e)]}

    def delete_endpoint(self, parent, id, body, query):
        return self.state.delete_endpoint(parent, id)

    def deploy(self, parent, id, body, query):
        return self.state.deploy(parent, id, body)

    def undeploy(self, parent, id, body, query):
        return self.state.undeploy(parent, id, body)

    def predict(self, parent, id, body, query):
        return self.state.predict(id, body)

    def get_operation(self, name, body, query):
        with self.state.lock:
            if name not in self.state.operations:
                raise ApiError("NOT_FOUND", f"operation {name} not found")
            return dict(self.state.operations[name])


BANNER = ("Vertex AI teaching stand-in (NOT an emulator: a few v1 REST calls, no IAM, no autoscaling, "
          "instant machines, local artifacts only)")


def serve(port: int, lab: str, host: str = "127.0.0.1", deploy_timeout: float = 120) -> None:
    server_id = f"{os.getpid()}-{port}"
    try:
        docker = Docker(lab, server_id, deploy_timeout)
    except Exception as exc:  # noqa: BLE001 - models and endpoints still work without Docker
        print(f"no Docker engine ({exc.__class__.__name__}): deployModel will be refused", flush=True)
        docker = None
    Handler.state = State(docker)
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True

    def on_signal(signum, _frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_signal)
    print(f"{BANNER}\nlistening on http://{host}:{port} for lab {lab}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if docker is not None:
            removed = docker.remove_all()
            print(f"stopped; removed {removed} model container(s)", flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=BANNER)
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--lab", default="06", help="value of the labkit.lab label on model containers")
    parser.add_argument("--deploy-timeout", type=float, default=120,
                        help="seconds a model container has to answer 200 on its health route")
    args = parser.parse_args(argv)
    serve(args.port, args.lab, args.host, args.deploy_timeout)


if __name__ == "__main__":
    main()
