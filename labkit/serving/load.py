"""A small, bounded HTTP load generator for loopback targets (benchmarks, later the
autoscaling and blue-green labs). It stops after ``requests`` requests or ``max_seconds``."""

from __future__ import annotations

import statistics
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass


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
