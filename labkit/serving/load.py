"""A small, bounded HTTP load generator for loopback targets (benchmarks, the autoscaling and
blue-green labs). :func:`run_load` stops after ``requests`` requests or ``max_seconds``;
:class:`BackgroundLoad` runs it window after window in a background thread (for lab 07's control
loop to read the offered load while it scales), bounded the same way and stopped like every
:class:`~labkit.core.background.BackgroundTask`. Both refuse any target but this machine's
loopback (:func:`require_loopback`)."""

from __future__ import annotations

import ipaddress
import statistics
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field

from ..core.background import BackgroundTask
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
    #: One entry per request, in the order answered: (time.monotonic() when it ended, latency in
    #: ms or None for a failure, the value of ``run_load``'s ``header`` in the answer or None).
    timeline: list[tuple[float, float | None, str | None]] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if len(self.latencies_ms) < 2:
            return self.latencies_ms[0] if self.latencies_ms else float("nan")
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[int(q) - 1]


def run_load(url: str, body: bytes, *, requests: int = 2000, concurrency: int = 8,
             max_seconds: float = 60, content_type: str = "application/json",
             header: str | None = None, stop: threading.Event | None = None) -> LoadResult:
    """POST ``body`` to ``url`` from ``concurrency`` threads until ``requests`` are done (or
    ``stop`` is set), a new connection each (``Connection: close``); ``header``: an answer header
    to record per request (lab 08 records ``X-Model-Version``: which release answered)."""
    require_loopback(url)
    lock, latencies, errors, timeline = threading.Lock(), [], [0], []
    remaining = [requests]
    deadline = time.monotonic() + max_seconds

    def worker():
        while time.monotonic() < deadline and not (stop and stop.is_set()):
            with lock:
                if remaining[0] == 0:
                    return
                remaining[0] -= 1
            started, seen = time.perf_counter(), None
            try:
                request = urllib.request.Request(url, body, {"Content-Type": content_type})
                with urllib.request.urlopen(request, timeout=10) as response:
                    response.read()
                    seen = response.headers.get(header) if header else None
                ok = True
            except (urllib.error.URLError, OSError):
                ok = False
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                timeline.append((time.monotonic(), elapsed if ok else None, seen))
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
    return LoadResult(len(latencies) + errors[0], errors[0], time.monotonic() - started, latencies, timeline)


@dataclass
class Across:
    """A load run with an action in the middle of it (lab 08: a switch of releases under load)."""
    result: LoadResult
    started: float      # time.monotonic() when the load started
    action_at: float    # seconds after the load started that the action began
    action_s: float     # how long the action took
    value: object       # what the action returned (None when it raised)
    error: str | None   # what it raised, as "Type: message"

    def seen(self, *, before: bool) -> Counter:
        """Header values (``None`` for failures) of the requests that ended before the action
        began (``before=True``), or that were sent after it ended (a request in flight across the
        action is in neither: the old release may rightly answer it)."""
        began = self.started + self.action_at
        ended = began + self.action_s
        counted = Counter()
        for t, latency, value in self.result.timeline:
            sent = t - (latency or 0) / 1000  # a failure's latency is not recorded: its end stands for it
            if (t < began) if before else (sent > ended):
                counted[value if latency is not None else None] += 1
        return counted

    def p99_ms(self, *, during: bool) -> float:
        """p99 latency of the requests that ended while the action ran, plus a second after it
        (``during=True``), or of all the others."""
        start = self.started + self.action_at
        end = start + self.action_s + 1.0
        chosen = [lat for t, lat, _ in self.result.timeline
                  if lat is not None and ((start <= t <= end) == during)]
        return LoadResult(len(chosen), 0, 1.0, chosen).percentile(99)


def run_across(url: str, body: bytes, action, *, requests: int = 3000, concurrency: int = 4,
               after_s: float = 1.0, max_seconds: float = 60, header: str | None = "X-Model-Version") -> Across:
    """:func:`run_load` in a background thread, and ``action()`` called ``after_s`` seconds into
    it (a switch of releases): bounded like the load, on loopback only. An exception from
    ``action`` is recorded, not raised, and ends the load early: the rest of it would measure no
    switch."""
    require_loopback(url)
    box: dict = {}
    failed = threading.Event()
    thread = threading.Thread(target=lambda: box.update(result=run_load(
        url, body, requests=requests, concurrency=concurrency, max_seconds=max_seconds, header=header,
        stop=failed)),
        name="labkit-load-across", daemon=True)
    started = time.monotonic()
    thread.start()
    thread.join(after_s)
    action_at = time.monotonic() - started
    value, error = None, None
    try:
        value = action()
    except Exception as exc:  # noqa: BLE001 - recorded: the caller reads it with the load's figures
        error = f"{type(exc).__name__}: {exc}"
        failed.set()
    action_s = time.monotonic() - started - action_at
    thread.join(max_seconds + 15)
    return Across(box.get("result") or LoadResult(0, 0, 0.0, []), started, action_at, action_s, value, error)


class BackgroundLoad(BackgroundTask):
    """:func:`run_load` against a loopback ``url`` in a background thread, in windows of ``window``
    seconds, each with the number of clients (concurrent requests) the ``clients`` schedule gives
    at that time: a number, or steps ``[(from_s, clients), ...]`` (0 clients: idle). It ends after
    ``max_seconds`` or ``max_requests`` requests, whichever comes first. :attr:`windows` holds each
    window's figures, :meth:`latest` the last ones (what lab 07's control loop records)."""

    kind = "load"

    def __init__(self, url: str, body: bytes, *, clients: int | list[tuple[float, int]] = 4,
                 max_seconds: float = 60, max_requests: int = 50_000, window: float = 2.0,
                 content_type: str = "application/json", name: str = "") -> None:
        super().__init__(max_seconds=max_seconds, name=name)
        require_loopback(url)
        self.url, self.body, self.content_type = url, body, content_type
        self.steps = sorted([(0.0, clients)] if isinstance(clients, int) else [(float(t), n) for t, n in clients])
        if not self.steps or self.steps[0][0] > 0 or any(n < 0 for _, n in self.steps):
            raise ValueError(f"clients: a number, or steps [(from_s, clients), ...] from 0 s, none negative: "
                             f"{clients!r}")
        self.max_requests, self.window = max_requests, window
        self.sent = 0
        self.windows: list[dict] = []

    def clients_at(self, t: float) -> int:
        return [n for start, n in self.steps if start <= t][-1]

    def run(self) -> str | None:
        while not self.stopping:
            began = self.elapsed()
            clients = self.clients_at(began)
            if self.sent >= self.max_requests:
                return f"max_requests ({self.max_requests}) sent"
            if clients == 0:
                step = min([t for t, _ in self.steps if t > began] or [began + self.window]) - began
                result = LoadResult(0, 0, 0.0, [])
                if not self.pause(min(self.window, step)):
                    break
            else:
                result = run_load(self.url, self.body, requests=self.max_requests - self.sent, concurrency=clients,
                                  max_seconds=min(self.window, self.remaining()), content_type=self.content_type)
            self.sent += result.requests
            self.windows.append(window_figures(round(self.elapsed(), 2), clients, result))
        return None

    def latest(self) -> dict | None:
        """The last window's figures: t (s since the load started), clients, requests, errors, rps,
        p50_ms, p99_ms; None before the first window ends."""
        return dict(self.windows[-1]) if self.windows else None


def window_figures(t: float, clients: int, result: LoadResult) -> dict:
    """One window of load as plain numbers (NaN percentiles when nothing succeeded)."""
    return {"t": t, "clients": clients, "requests": result.requests, "errors": result.errors,
            "rps": round(result.rps, 1), "p50_ms": round(result.percentile(50), 1),
            "p99_ms": round(result.percentile(99), 1)}
