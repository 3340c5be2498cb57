"""One replica's capacity (lab 07): a stepped, bounded load on loopback, and the highest step that
keeps p99 under an objective. An autoscaling target (SageMaker's invocations per instance, an
HPA's CPU target) means nothing until one replica's capacity is measured.

Each step is one headless locust run (``--run-time``, a request budget, locust's CSV stats), the
tool the field uses; environments/load/README.md has the measured comparison with
:func:`.load.run_load` on a two-core machine that chose it. Locust runs in its own process group,
killed in a ``finally``: no load process outlives the call, however it ends (an interrupted kernel
included; a killed kernel's locust notices its parent is gone and stops within a second).
Locust's stats give latencies in whole milliseconds below 100 ms (its histogram's buckets).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import importlib.util
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import urllib.parse
from pathlib import Path

from ..core.errors import LabkitError, RequirementNotMet, TimedOut
from .load import require_loopback, run_load

LOCUSTFILE = Path(__file__).with_name("locust_user.py")
#: Requests a second one locust user sends at most. An offered rate is spread over
#: ceil(rate / PER_USER_RPS) users: once answers take longer than 1/PER_USER_RPS s (50 ms), the
#: users fall behind and the achieved rate drops under the offered one, as a saturated server's does.
PER_USER_RPS = 20
#: Seconds locust may take to start and to write its files, on top of a step's run time.
STARTUP_S = 30


@dataclasses.dataclass(frozen=True)
class Step:
    """One step of load: what was offered, what the server did with it, what the loader cost."""

    offered_rps: float | None  # requests/s asked for; None: as fast as ``users`` get answers
    users: int
    requests: int
    errors: int
    rps: float  # achieved, as locust counts it
    p50_ms: float
    p95_ms: float
    p99_ms: float
    seconds: float  # how long the load ran (locust's start-up left out)
    loader_cpu: float  # cores the locust process used while loading: near 1.0, it measured itself
    server_cpu: float | None = None  # cores the server's container used meanwhile (when it was given)

    def line(self) -> str:
        offered = f"{self.offered_rps:6.0f} rps offered" if self.offered_rps else f"{self.users:4d} users (closed)"
        server = "" if self.server_cpu is None else f"server {self.server_cpu:.2f} CPU, "
        return (f"{offered}: {self.rps:6.1f} rps, p50 {self.p50_ms:4.0f} ms, p95 {self.p95_ms:4.0f} ms, "
                f"p99 {self.p99_ms:4.0f} ms, {self.errors} errors of {self.requests} ({server}locust "
                f"{self.loader_cpu:.2f} CPU)")


def step_load(url: str, body: bytes, *, rates=(50, 100, 200, 400), seconds_per_step: int = 5,
              max_requests: int = 5000, content_type: str = "application/json", container=None,
              p99_objective_ms: float | None = None, show: bool = True) -> list[Step]:
    """Offer each rate of ``rates`` (requests/s, in order) to ``url`` for ``seconds_per_step``
    seconds or ``max_requests`` requests, whichever comes first: one :class:`Step` each. The
    whole call is bounded by ``len(rates) × (seconds_per_step + STARTUP_S)`` seconds and
    ``len(rates) × max_requests`` requests. Given the server's ``container``, each step also
    says the CPU it used: a server below its CPU limit at the top step was held back by
    something else (the machine's other cores: the loader, Docker's proxy, other work).

    Given ``p99_objective_ms``, a step that misses the objective (an error, p99 at or over it, or
    under 90 % of the rate offered) is run once more and the better of the two kept: other work
    on the machine only ever makes a step look worse, and one stall of a busy laptop should not
    decide a replica's capacity, where two in a row describe the replica. This bounds the call
    by twice the figures above."""
    require_loopback(url)
    if not rates or any(r <= 0 for r in rates):
        raise ValueError(f"rates must be positive requests/s, got {list(rates)}")
    def one(rate: float, again: bool = False) -> Step:
        used = container_cpu_s(container)
        step = run_step(url, body, users=max(1, math.ceil(rate / PER_USER_RPS)), rate=rate,
                        seconds=seconds_per_step, max_requests=max_requests, content_type=content_type)
        if container is not None:
            step = dataclasses.replace(step, server_cpu=(container_cpu_s(container) - used) / step.seconds)
        if show:
            print(step.line() + ("  (again)" if again else ""))
        return step

    steps = []
    for rate in rates:
        step = one(rate)
        if p99_objective_ms is not None and _missed(step, p99_objective_ms):
            step = min(step, one(rate, again=True), key=lambda s: (_missed(s, p99_objective_ms), s.errors, s.p99_ms))
        steps.append(step)
    return steps


def _missed(step: Step, p99_objective_ms: float) -> bool:
    return bool(step.errors or not step.requests or not step.p99_ms < p99_objective_ms
                or step.rps < 0.9 * (step.offered_rps or 0))


def measure_replica(image: str, body: bytes, *, lab: str, cpus: float, rates, seconds_per_step: int,
                    name: str | None = None, max_requests: int = 5000, warmup: int = 20,
                    environment: dict | None = None, p99_objective_ms: float | None = None,
                    show: bool = True) -> list[Step]:
    """One replica of ``image`` on loopback with a CPU limit of ``cpus`` (standing for an instance
    size), warmed up with ``warmup`` requests (its first answers are slow), then :func:`step_load`
    (which runs a step that misses ``p99_objective_ms`` once more);
    the container is removed however the call ends. Lab 07's §1 and its check, and the bench,
    measure with this one function."""
    from ..tools import dockerlab
    from .app import wait_ready

    with dockerlab.running(image, lab=lab, name=name, nano_cpus=int(cpus * 1e9), ports={8080: None},
                           environment=environment) as replica:
        url = f"http://127.0.0.1:{wait_ready(replica, 8080)}/predict"
        run_load(url, body, requests=warmup, concurrency=2)
        if show:
            print(f"one replica, {cpus} CPU, {seconds_per_step} s a step:")
        return step_load(url, body, rates=rates, seconds_per_step=seconds_per_step, max_requests=max_requests,
                         container=replica, p99_objective_ms=p99_objective_ms, show=show)


def container_cpu_s(container) -> float:
    """CPU seconds the container has used since it started (0 for None): one reading of ``docker
    stats``. Read before and after a step: the server's idle time while locust starts adds nothing."""
    if container is None:
        return 0.0
    return container.stats(stream=False, one_shot=True)["cpu_stats"]["cpu_usage"]["total_usage"] / 1e9


def capacity(steps: list[Step], p99_objective_ms: float) -> Step | None:
    """The highest-loaded step whose p99 is under ``p99_objective_ms`` with no errors (None when
    none is): the most one replica carries within the objective. A step with no answers does
    not count (its p99 is NaN)."""
    good = [s for s in steps if s.errors == 0 and s.requests > 0 and s.p99_ms < p99_objective_ms]
    return max(good, key=lambda s: (s.offered_rps or 0, s.rps), default=None)


def run_step(url: str, body: bytes, *, users: int, rate: float | None = None, seconds: int = 5,
             max_requests: int = 5000, content_type: str = "application/json",
             user_class: str = "FastPoster") -> Step:
    """One headless locust run: ``users`` users POST ``body`` to ``url``, together ``rate``
    requests/s at most (as fast as answers come when None), for ``seconds`` seconds or
    ``max_requests`` requests."""
    require_loopback(url)
    if seconds < 1 or max_requests < 1 or users < 1:
        raise ValueError("a step needs at least 1 second, 1 request and 1 user")
    if importlib.util.find_spec("locust") is None:
        raise RequirementNotMet("locust is not installed: `make setup` installs it (or `pip install -e '.[load]'`)")
    parts = urllib.parse.urlsplit(url)
    path = parts.path or "/"
    with tempfile.TemporaryDirectory(prefix="labkit-load-") as folder:
        work = Path(folder)
        (work / "body").write_bytes(body)
        env = {**os.environ, "LABKIT_LOAD_BODY": str(work / "body"),
               "LABKIT_LOAD_PATH": path + (f"?{parts.query}" if parts.query else ""),
               "LABKIT_LOAD_CONTENT_TYPE": content_type, "LABKIT_LOAD_MAX_REQUESTS": str(max_requests),
               "LABKIT_LOAD_USER_RPS": str(rate / users if rate else 0), "LABKIT_LOAD_PARENT": str(os.getpid()),
               "LABKIT_LOAD_REPORT": str(work / "report.json")}
        argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), user_class, "--headless",
                "--host", f"{parts.scheme}://{parts.netloc}", "--users", str(users),
                "--spawn-rate", str(users * 10), "--run-time", f"{int(seconds)}s", "--only-summary",
                "--exit-code-on-error", "0", "--loglevel", "WARNING"]
        code, output = run_bounded(argv, timeout=seconds + STARTUP_S, env=env, cwd=work)
        row = _aggregated(work / "report.csv")
        if code != 0 or row is None or not (work / "report.json").exists():
            raise LabkitError(f"locust failed (exit {code}); its last output:\n{output[-2000:]}")
        report = json.loads((work / "report.json").read_text())
    return Step(offered_rps=rate, users=users, requests=int(row["Request Count"]),
                errors=int(row["Failure Count"]), rps=float(row["Requests/s"]),
                p50_ms=_ms(row["50%"]), p95_ms=_ms(row["95%"]), p99_ms=_ms(row["99%"]), seconds=report["wall_s"],
                loader_cpu=report["cpu_s"] / report["wall_s"] if report["wall_s"] else 0.0)


def _aggregated(path: Path) -> dict | None:
    if not path.exists():
        return None
    with path.open(newline="") as f:
        return next((row for row in csv.DictReader(f) if row.get("Name") == "Aggregated"), None)


def _ms(value: str) -> float:
    return float("nan") if value in ("", "N/A") else float(value)


def run_bounded(argv: list[str], *, timeout: float, env: dict | None = None, cwd=None) -> tuple[int, str]:
    """Run ``argv`` to its end in a process group of its own, for ``timeout`` seconds at most:
    (exit code, output). The group is killed in a ``finally``, so neither the process nor
    anything it started outlives the call, even on a time-out or a KeyboardInterrupt."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TimedOut(f"{Path(argv[0]).name} {' '.join(argv[1:3])}: not ended within {timeout:.0f}s; "
                       f"stopped") from None
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if proc.stdout:
            proc.stdout.close()
    return proc.returncode, output.decode(errors="replace")
