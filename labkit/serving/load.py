"""A small, bounded HTTP load generator for loopback targets (benchmarks, later the
autoscaling and blue-green labs). It stops after ``requests`` requests or ``max_seconds``, and
refuses any target but this machine's loopback (:func:`require_loopback`)."""

from __future__ import annotations

import ipaddress
import statistics
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from ..core.errors import LabkitError


class NotLoopback(LabkitError, ValueError):
    """A load run was pointed somewhere other than this machine's loopback."""


def require_loopback(url: str) -> None:
    """Refuse a URL whose host is not loopback (``127.0.0.0/8``, ``::1`` or ``localhost``): the
    labs load only their own containers, never someone else's server (nor a cloud bill)."""
    host = urllib.parse.urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise NotLoopback(f"load runs target loopback only (127.0.0.1, ::1, localhost), not {host or url!r}: "
                          f"publish the container's port on 127.0.0.1 and load http://127.0.0.1:PORT/...")


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if len(self.latencies_ms) < 2:
            return self.latencies_ms[0] if self.latencies_ms else float("nan")
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[int(q) - 1]


def run_load(url: str, body: bytes, *, requests: int = 2000, concurrency: int = 8,
             max_seconds: float = 60, content_type: str = "application/json") -> LoadResult:
    """POST ``body`` to ``url`` from ``concurrency`` threads until ``requests`` are done."""
    require_loopback(url)
    lock, latencies, errors = threading.Lock(), [], [0]
    remaining = [requests]
    deadline = time.monotonic() + max_seconds

    def worker():
        while time.monotonic() < deadline:
            with lock:
                if remaining[0] == 0:
                    return
                remaining[0] -= 1
            started = time.perf_counter()
            try:
                request = urllib.request.Request(url, body, {"Content-Type": content_type})
                with urllib.request.urlopen(request, timeout=10) as response:
                    response.read()
                ok = True
            except (urllib.error.URLError, OSError):
                ok = False
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                if ok:
                    latencies.append(elapsed)
                else:
                    errors[0] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return LoadResult(len(latencies) + errors[0], errors[0], time.monotonic() - started, latencies)
