"""Serving contracts as tables of requirements: what a platform expects of a container, each
line measured on a real running container (status codes, content types, timings).

``labkit.sagemaker`` and ``labkit.vertex`` build their contract reports from these pieces.
"""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass


@dataclass
class Requirement:
    name: str
    passed: bool
    detail: str = ""

    def line(self) -> str:
        return f"{'✓' if self.passed else '✗'} {self.name}: {self.detail}"


def table(requirements: list[Requirement]) -> str:
    """One line per requirement (✓/✗, name, what was measured), then the tally."""
    width = max((len(r.name) for r in requirements), default=10)
    lines = [f"  {'✓' if r.passed else '✗'} {r.name:<{width}}  {r.detail}" for r in requirements]
    return "\n".join([*lines, f"  {sum(r.passed for r in requirements)}/{len(requirements)} requirements met"])


def show(requirements: list[Requirement], title: str = "contract") -> None:
    print(f"{title}:\n{table(requirements)}")


def failed(requirements: list[Requirement]) -> list[str]:
    return [r.line() for r in requirements if not r.passed]


@dataclass
class Reply:
    """One HTTP exchange: status (None when no answer), content type, body, seconds, error."""
    status: int | None
    content_type: str
    body: bytes
    seconds: float
    error: str = ""

    def json(self):
        return json.loads(self.body)

    def describe(self) -> str:
        if self.status is None:
            return f"no answer ({self.error}) after {self.seconds:.2f}s"
        return f"{self.status} {self.content_type or '(no content type)'} in {self.seconds * 1000:.0f} ms"


def request(port: int, method: str, path: str, body: bytes | None = None, *, headers: dict | None = None,
            timeout: float = 5.0, host: str = "127.0.0.1") -> Reply:
    """One request with its own timeout; never raises for network errors (they are answers too)."""
    started = time.monotonic()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return Reply(response.status, (response.getheader("Content-Type") or "").split(";")[0].strip(),
                     data, time.monotonic() - started)
    except (OSError, http.client.HTTPException) as exc:
        return Reply(None, "", b"", time.monotonic() - started, type(exc).__name__)
    finally:
        conn.close()


def post_json(port: int, path: str, payload, **kwargs) -> Reply:
    return request(port, "POST", path, json.dumps(payload).encode(),
                   headers={"Content-Type": "application/json", "Accept": "application/json"}, **kwargs)


@dataclass
class Probe:
    """One health probe of a timeline: seconds since the container started, and the reply."""
    at: float
    reply: Reply


def poll(port: int, path: str, *, until: float, every: float = 1.0, probe_timeout: float = 2.0,
         started: float | None = None, stop_on_ok: bool = True, on_probe=None, gone=None) -> list[Probe]:
    """Probe ``GET path`` every ``every`` seconds the way a platform's health checker does (each
    probe has its own ``probe_timeout``) until the first 200 or ``until`` seconds after ``started``,
    or until ``gone()`` says, after a probe nobody answered, that the server has ended."""
    started = time.monotonic() if started is None else started
    timeline: list[Probe] = []
    while time.monotonic() - started < until:
        at = time.monotonic() - started
        reply = request(port, "GET", path, timeout=probe_timeout)
        timeline.append(Probe(at, reply))
        if on_probe:
            on_probe(timeline[-1])
        if stop_on_ok and reply.status == 200:
            break
        if reply.status is None and gone is not None and gone():
            break
        time.sleep(max(0.0, every - (time.monotonic() - started - at)))
    return timeline


def first_ok(timeline: list[Probe]) -> float | None:
    return next((p.at for p in timeline if p.reply.status == 200), None)


def serves_model(port: int, metadata: dict, source: str, hint: str) -> Requirement:
    """Whether the server's ``/version`` reports the model whose ``metadata.json`` is ``metadata``
    (training time and accuracy identify one training run): the platform's artifacts, not a copy
    baked into the image."""
    reply = request(port, "GET", "/version")
    try:
        model = (reply.json() or {}).get("model") or {}
    except ValueError:
        model = {}
    keys = [k for k in ("trained_at", "accuracy") if k in metadata] or list(metadata)
    same = bool(model) and all(model.get(k) == metadata[k] for k in keys)
    return Requirement(f"serves the model from {source}", same,
                       f"/version reports the model in {source}" if same else hint)


def stop_on_sigterm(container, within_s: float) -> tuple[float | None, int | None]:
    """Send SIGTERM the way a platform stops an instance and wait ``within_s`` seconds:
    (seconds it took, exit code), or (None, None) while it still runs (the caller removes it)."""
    started = time.monotonic()
    container.kill(signal="SIGTERM")
    try:
        code = container.wait(timeout=within_s)["StatusCode"]
    except Exception:  # noqa: BLE001 - the wait timed out (requests' ReadTimeout/ConnectionError)
        return None, None
    return time.monotonic() - started, code
