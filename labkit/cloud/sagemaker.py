"""SageMaker's side of lab 05 that runs on this machine: the model archive, the serving
contract measured on a real container, the endpoint's start-up as SageMaker's health checker
sees it, and invocation results for the moto emulator taken from the real container.

The limits are SageMaker's documented ones for real-time endpoints with a custom container:
``docker run IMAGE serve``, port 8080 (or ``SAGEMAKER_BIND_TO_PORT``), ``GET /ping`` answered
within 2 s, ``POST /invocations`` within 60 s, SIGTERM then SIGKILL 30 s later, and a start-up
window of ``ContainerStartupHealthCheckTimeoutInSeconds`` (60-3600 s; 8 minutes when unset).
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import tarfile
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..core.errors import LabkitError, RequirementNotMet
from ..serving import contract
from ..serving.app import IRIS_CLASSES, IRIS_ROWS
from ..serving.contract import Requirement
from ..tools import dockerlab

PORT = 8080
PING_TIMEOUT_S = 2.0
INVOKE_TIMEOUT_S = 60.0
STOP_GRACE_S = 30
DEFAULT_STARTUP_S = 480
STARTUP_RANGE_S = (60, 3600)
MODEL_DIR = "/opt/ml/model"


class StartError(LabkitError):
    """The container did not start the way SageMaker starts it."""


# ---------------------------------------------------------------- model.tar.gz

def package_model(model_dir: str | Path, out: str | Path) -> Path:
    """``model.tar.gz`` the way SageMaker unpacks it: the files at the archive's root."""
    model_dir, out = Path(model_dir), Path(out)
    with tarfile.open(out, "w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            tar.add(path, arcname=path.name)
    return out


def archive_members(tar_path: str | Path) -> list[str]:
    with tarfile.open(tar_path, "r:gz") as tar:
        return tar.getnames()


def unpack(tar_path: str | Path, dest: str | Path) -> Path:
    """Unpack like SageMaker does into /opt/ml/model (refusing paths that leave ``dest``)."""
    dest = Path(dest)
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    with tarfile.open(tar_path, "r:gz") as tar:
        tar.extractall(dest, filter="data")
    for path in [dest, *dest.rglob("*")]:  # readable by the image's non-root user
        path.chmod(0o755 if path.is_dir() else 0o644)
    return dest


# ---------------------------------------------------------------- running like SageMaker

def run_like_sagemaker(image: str, model_tar: str | Path, *, lab: str, name: str | None = None,
                       environment: dict | None = None, port: int = PORT, memory_mb: int | None = None):
    """``docker run IMAGE serve`` with the archive unpacked at /opt/ml/model (read-only) and
    the serving port published on a free host port; returns the container. ``memory_mb`` is the
    instance's memory: past it the kernel kills the server (no swap), as on a real instance."""
    import docker

    model_dir = unpack(model_tar, Path(tempfile.mkdtemp(prefix=f"labkit-{lab}-model-")))
    limits = {"mem_limit": f"{memory_mb}m", "memswap_limit": f"{memory_mb}m"} if memory_mb else {}
    try:
        return dockerlab.run(image, lab=lab, name=name, command=["serve"], ports={port: None},
                             environment=environment,
                             volumes={str(model_dir): {"bind": MODEL_DIR, "mode": "ro"}}, **limits)
    except docker.errors.APIError as exc:
        if name:
            dockerlab.remove_container(name)
        raise StartError(f"`docker run {image} serve` did not start: {exc.explanation or exc}. SageMaker "
                         "passes `serve` as the argument: the image needs an exec-form ENTRYPOINT that "
                         "starts the server and accepts `serve`.") from None


def _csv_body(rows) -> bytes:
    text = io.StringIO()
    csv.writer(text).writerows(rows)
    return text.getvalue().encode()


def contract_report(image: str, model_tar: str | Path, *, lab: str, startup_s: float = 60) -> list[Requirement]:
    """Run ``image`` as SageMaker does and measure every requirement of the contract."""
    reqs: list[Requirement] = []
    try:
        container = run_like_sagemaker(image, model_tar, lab=lab, name=f"labkit-{lab}-contract")
    except StartError as exc:
        return [Requirement("`docker run IMAGE serve` starts", False, str(exc))]
    try:
        host = dockerlab.host_port(container, PORT)
        timeline = contract.poll(host, "/ping", until=startup_s, probe_timeout=PING_TIMEOUT_S)
        answered = [p for p in timeline if p.reply.status is not None]
        container.reload()
        reqs.append(Requirement("`serve` starts an HTTP server on 8080", bool(answered),
                                f"first HTTP answer {answered[0].at:.1f}s after start" if answered
                                else f"no HTTP answer on 8080 within {startup_s:.0f}s (container "
                                     f"{container.status}; last log lines: {_tail(container)})"))
        if not answered:
            return reqs
        silent = [p for p in timeline if p.at >= answered[0].at and p.reply.status is None]
        ok = contract.first_ok(timeline)
        reqs.append(Requirement("GET /ping answers within 2 s", not silent,
                                f"{len(answered)} answers, slowest {max(p.reply.seconds for p in answered):.2f}s"
                                if not silent else f"{len(silent)} probe(s) got no answer within 2 s"))
        reqs.append(Requirement("GET /ping is 200 once the model is loaded", ok is not None,
                                f"200 after {ok:.1f}s" if ok is not None
                                else f"last answer: {timeline[-1].reply.describe()} after {startup_s:.0f}s"))
        if ok is None:
            return reqs
        reply = contract.post_json(host, "/invocations", {"instances": IRIS_ROWS}, timeout=INVOKE_TIMEOUT_S)
        right = reply.status == 200 and _predictions(reply) == IRIS_CLASSES
        reqs.append(Requirement("POST /invocations (JSON) predicts", right,
                                f"{reply.describe()}: {_predictions(reply)}" if reply.status == 200
                                else reply.describe()))
        reqs.append(Requirement("JSON answers are application/json", reply.content_type == "application/json",
                                reply.content_type or "no Content-Type"))
        reply = contract.request(host, "POST", "/invocations", _csv_body(IRIS_ROWS),
                                 headers={"Content-Type": "text/csv", "Accept": "text/csv"})
        lines = reply.body.decode(errors="replace").split() if reply.status == 200 else []
        reqs.append(Requirement("POST /invocations (CSV) predicts", lines == IRIS_CLASSES,
                                f"{reply.describe()}: {lines}"))
        reply = contract.request(host, "POST", "/invocations", b"<x/>", headers={"Content-Type": "application/xml"})
        reqs.append(Requirement("unsupported Content-Type is a 4xx", reply.status is not None
                                and 400 <= reply.status < 500, reply.describe()))
        reqs.append(contract.serves_model(host, _archive_metadata(model_tar), "model.tar.gz",
                                          "the model served is not the archive's: is a model baked into the image "
                                          "and pointed at, or is the archive nested in a folder?"))
        seconds, code = contract.stop_on_sigterm(container, STOP_GRACE_S - 1)  # SIGKILL comes at 30 s
        reqs.append(Requirement("SIGTERM stops it within 30 s", seconds is not None and code == 0,
                                f"exited with code {code} {seconds:.1f}s after SIGTERM" if seconds is not None
                                else f"still running {STOP_GRACE_S - 1} s after SIGTERM: SageMaker kills it at 30 s"))
    finally:
        container.remove(force=True)
    reqs.append(_bind_to_port(image, model_tar, lab=lab, startup_s=startup_s))
    return reqs


def _bind_to_port(image: str, model_tar, *, lab: str, startup_s: float) -> Requirement:
    """SageMaker tells containers in a multi-container endpoint which port to use."""
    container = run_like_sagemaker(image, model_tar, lab=lab, name=f"labkit-{lab}-contract-port",
                                   environment={"SAGEMAKER_BIND_TO_PORT": "8081"}, port=8081)
    try:
        # An HTTP answer, not an accepted connection: Docker's port proxy accepts those for any container.
        timeline = contract.poll(dockerlab.host_port(container, 8081), "/ping", until=min(startup_s, 30),
                                 probe_timeout=PING_TIMEOUT_S)
        answered = any(p.reply.status is not None for p in timeline)
        return Requirement("listens on SAGEMAKER_BIND_TO_PORT", answered,
                           "SAGEMAKER_BIND_TO_PORT=8081: answered on 8081" if answered
                           else "SAGEMAKER_BIND_TO_PORT=8081: no HTTP answer on 8081 (is the port fixed in the image?)")
    finally:
        container.remove(force=True)


def _predictions(reply) -> list | None:
    try:
        return reply.json().get("predictions")
    except (ValueError, AttributeError):
        return None


def _archive_metadata(model_tar) -> dict:
    with tarfile.open(model_tar, "r:gz") as tar:
        try:
            return json.load(tar.extractfile("metadata.json"))
        except KeyError:
            return {"missing": "metadata.json at the archive's root"}


def _tail(container, lines: int = 5) -> str:
    return " | ".join(container.logs(tail=lines).decode(errors="replace").split("\n")).strip(" |")


# ---------------------------------------------------------------- start-up window

def startup_timeout(variant: dict) -> int:
    """The start-up window of a production variant (SageMaker's default when unset)."""
    return int(variant.get("ContainerStartupHealthCheckTimeoutInSeconds") or DEFAULT_STARTUP_S)


@dataclass
class Hosting:
    """What SageMaker would conclude about one instance of a variant: InService or Failed."""
    status: str
    reason: str
    window_s: int
    healthy_after: float | None
    timeline: list = field(default_factory=list)
    logs: str = ""
    memory_mb: float | None = None  # what the container used when probing stopped (None: it had ended)
    oom_killed: bool = False        # the kernel killed its process for going past memory_mb


def host_locally(image: str, model_tar: str | Path, variant: dict, *, lab: str, environment: dict | None = None,
                 observe_s: float | None = None, memory_mb: int | None = None, show: bool = True) -> Hosting:
    """Start one instance of ``variant`` the way SageMaker does and probe ``/ping`` every second
    (2 s per probe), in real seconds: InService when the first 200 comes within the variant's
    start-up window, Failed otherwise. Probing stops at the first 200, once the server's process
    has exited, or after ``observe_s`` (default: the window; longer shows when a failed instance
    would have become healthy).
    ``memory_mb`` limits the container to an instance's memory. The container is removed at the
    end; its last log lines, the memory it used and whether it was killed for memory are kept."""
    window = startup_timeout(variant)
    observe = window if observe_s is None else observe_s
    name = variant.get("VariantName", "variant")
    container = run_like_sagemaker(image, model_tar, lab=lab, name=f"labkit-{lab}-{name}",
                                   environment=environment, memory_mb=memory_mb)
    started = time.monotonic()
    last = {}

    def progress(probe):
        summary = probe.reply.status or probe.reply.error
        if show and summary != last.get("summary"):
            print(f"  {probe.at:5.1f}s  /ping → {probe.reply.describe()}")
            last["summary"] = summary

    if show:
        print(f"{name}: start-up window {window}s; probing /ping every second for up to {observe:.0f}s")
    try:
        host = dockerlab.host_port(container, PORT)
        timeline = contract.poll(host, "/ping", until=observe, probe_timeout=PING_TIMEOUT_S,
                                 started=started, on_probe=progress, gone=lambda: _ended(container))
        logs = container.logs(tail=6).decode(errors="replace")
        container.reload()
        oom_killed = bool(container.attrs["State"].get("OOMKilled"))
        used = dockerlab.memory_used_mb(container) if container.status == "running" else None
    finally:
        container.remove(force=True)
    ok = contract.first_ok(timeline)
    if ok is not None and ok <= window:
        result = Hosting("InService", f"/ping answered 200 after {ok:.1f}s", window, ok, timeline, logs)
    else:
        late = f"; the first 200 came at {ok:.1f}s" if ok is not None else ""
        killed = f"; its process was killed for going past {memory_mb} MB (OOMKilled)" if oom_killed else ""
        result = Hosting("Failed", f"The primary container for production variant {name} did not pass the "
                                   f"ping health check within {window}s{late}{killed}", window, ok, timeline, logs)
    result = replace(result, memory_mb=used, oom_killed=oom_killed)
    if show:
        print(f"{name}: {result.status}: {result.reason}")
    return result


@dataclass
class ColdStart:
    """One request that found no instance running, and the requests that came after it."""
    cold_s: float          # from `docker run` to its prediction
    warm_ms: list[float]   # each later request, to the same container, now warm

    @property
    def warm_median_ms(self) -> float:
        return sorted(self.warm_ms)[len(self.warm_ms) // 2]


def cold_and_warm(image: str, model_tar: str | Path, *, lab: str, requests: int = 20,
                  environment: dict | None = None, timeout_s: float = 60) -> ColdStart:
    """What a serverless endpoint scaled to zero does to the first request: the instance starts
    (here ``docker run``; on AWS also the image pull and the archive's download), and the request
    waits, retried, until a prediction comes; then ``requests`` more to the same, warm container.
    The container is removed at the end."""
    started = time.monotonic()
    container = run_like_sagemaker(image, model_tar, lab=lab, name=f"labkit-{lab}-cold", environment=environment)
    payload = {"instances": IRIS_ROWS}
    try:
        host = dockerlab.host_port(container, PORT)
        while (reply := contract.post_json(host, "/invocations", payload, timeout=INVOKE_TIMEOUT_S)).status != 200:
            if time.monotonic() - started > timeout_s:
                raise RequirementNotMet(f"no prediction within {timeout_s:.0f}s of `docker run {image} serve`: "
                                        f"{reply.describe()}; last log lines: {_tail(container)}")
            time.sleep(0.1)
        cold = time.monotonic() - started
        warm = [contract.post_json(host, "/invocations", payload, timeout=INVOKE_TIMEOUT_S).seconds * 1000
                for _ in range(requests)]
    finally:
        container.remove(force=True)
    return ColdStart(cold, warm)


def _ended(container) -> bool:
    """The instance's process has exited: no later probe can be answered (SageMaker would wait out
    the window, and fail it)."""
    container.reload()
    return container.status in ("exited", "dead")


def plot_timeline(*runs: tuple[str, Hosting]):
    """Each run's /ping answers over time (200, 503, no answer) against its start-up window."""
    import matplotlib.pyplot as plt

    colours = {200: "#2ca02c", None: "#d62728"}
    fig, ax = plt.subplots(figsize=(9, 0.9 * len(runs) + 1.3))
    for row, (label, run) in enumerate(runs):
        for probe in run.timeline:
            ax.plot(probe.at, row, "|", markersize=14, color=colours.get(probe.reply.status, "#ff7f0e"))
        ax.plot([run.window_s, run.window_s], [row - 0.35, row + 0.35], color="black", linewidth=2)
        ax.annotate(f"{run.status}", (run.window_s, row), xytext=(6, -4), textcoords="offset points")
    ax.set_yticks(range(len(runs)), [label for label, _ in runs])
    ax.set_xlabel("seconds after the container started   (green 200 · orange 503 · red no answer; "
                  "bar: start-up window)")
    ax.set_ylim(-0.7, len(runs) - 0.3)
    ax.set_title("GET /ping during start-up")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- emulator invocations

def seed_invocations(moto_url: str, results: list[dict]) -> None:
    """Queue the answers moto's ``invoke_endpoint`` returns, in order (moto's static-results API)."""
    body = json.dumps({"region": "us-east-1", "results": results}).encode()
    request = urllib.request.Request(f"{moto_url}/moto-api/static/sagemaker/endpoint-results", body,
                                     {"Content-Type": "application/json"}, method="POST")
    urllib.request.urlopen(request, timeout=5).close()


def seed_from_container(moto_url: str, port: int, bodies: list[bytes], *, variant: str,
                        content_type: str = "application/json", accept: str = "application/json") -> list[bytes]:
    """Send each request body to the real container's /invocations and queue its answers in
    moto, so that ``invoke_endpoint`` on the emulator returns real model output."""
    results, answers = [], []
    for body in bodies:
        reply = contract.request(port, "POST", "/invocations", body,
                                 headers={"Content-Type": content_type, "Accept": accept},
                                 timeout=INVOKE_TIMEOUT_S)
        if reply.status != 200:
            raise RuntimeError(f"the container answered {reply.describe()}: {reply.body[:200]!r}")
        answers.append(reply.body)
        results.append({"Body": reply.body.decode(), "ContentType": reply.content_type,
                        "InvokedProductionVariant": variant})
    seed_invocations(moto_url, results)
    return answers


# ---------------------------------------------------------------- what the checks compare with

def reference_predictions(image: str, model_tar: str | Path, batches: list, *, lab: str) -> list[list]:
    """What the model says for each batch of rows: from a container of ``image`` that the check
    starts itself, as SageMaker would (never from the student's kernel)."""
    container = run_like_sagemaker(image, model_tar, lab=lab, name=f"labkit-{lab}-reference")
    try:
        port = dockerlab.host_port(container, PORT)
        if contract.first_ok(contract.poll(port, "/ping", until=30)) is None:
            raise RequirementNotMet(f"{image} did not answer /ping within 30 s: run sagemaker.contract_report on it")
        answers = []
        for rows in batches:
            reply = contract.post_json(port, "/invocations", {"instances": rows}, timeout=INVOKE_TIMEOUT_S)
            if reply.status != 200:
                raise RequirementNotMet(f"{image} answered {reply.describe()} for {rows}")
            answers.append(reply.json()["predictions"])
        return answers
    finally:
        container.remove(force=True)


def invocations(moto, endpoint: str) -> list[dict]:
    """Every InvokeEndpoint request the emulator answered for ``endpoint`` (from its request
    log): ``content_type`` and the JSON ``body`` (None when it was not JSON)."""
    found = []
    for request in moto.requests():
        path = urllib.parse.urlsplit(request.get("url", "")).path
        if request.get("method") == "POST" and urllib.parse.unquote(path) == f"/endpoints/{endpoint}/invocations":
            headers = {k.lower(): v for k, v in (request.get("headers") or {}).items()}
            try:
                body = json.loads(request["body"])
            except ValueError:
                body = None
            found.append({"content_type": headers.get("content-type", ""), "body": body})
    return found
