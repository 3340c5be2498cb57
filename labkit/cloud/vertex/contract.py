"""Vertex AI's serving contract, checked on a local container: the AIP_* variables, the routes, the
model in AIP_STORAGE_URI and SIGTERM; and the reference predictions a check compares with."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

from ...core.errors import RequirementNotMet, TimedOut
from ...core.waiting import wait_until
from ...serving import app as serving
from ...serving import contract
from ...serving.contract import Requirement
from ...tools import dockerlab
from .standin import ARTIFACT_MOUNT, VertexError

SIGTERM_LIMIT_S = 10


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

    def settled() -> bool:
        """An answer on AIP_HTTP_PORT, an exited container, or an answer on 8080 only."""
        nonlocal status
        status = answers(host)
        container.reload()
        if status is not None or container.status == "exited":
            return True
        if fallback and answers(fallback) is not None:
            time.sleep(1)  # listening on 8080 already: give AIP_HTTP_PORT one more second, no more
            status = answers(host)
            return True
        return False

    with contextlib.suppress(TimedOut):  # no answer in time: what was seen last says why, below
        wait_until(settled, timeout=timeout, what=f"an answer on AIP_HTTP_PORT={port}", every=0.3)
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


def reference_predictions(image: str, model_dir: str | Path, batches: list, *, lab: str) -> list[list]:
    """What the model says for each batch of rows: from a container of ``image`` that the check
    starts itself with the model in AIP_STORAGE_URI (never from the student's kernel)."""
    container = dockerlab.run(image, lab=lab, name=f"labkit-{lab}-reference", ports={7080: None},
                              environment={"AIP_HTTP_PORT": "7080", "AIP_STORAGE_URI": ARTIFACT_MOUNT},
                              volumes={str(Path(model_dir).resolve()): {"bind": ARTIFACT_MOUNT, "mode": "ro"}})
    try:
        port = dockerlab.host_port(container, 7080)
        if contract.first_ok(contract.poll(port, "/readyz", until=30)) is None:
            raise RequirementNotMet(f"{image} was not ready within 30 s with the model in AIP_STORAGE_URI")
        return [contract.post_json(port, "/predict", {"instances": rows}).json()["predictions"] for rows in batches]
    finally:
        container.remove(force=True)
