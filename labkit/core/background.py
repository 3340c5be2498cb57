"""Bounded work in a background thread that is always stopped: lab 07's control loop and its load.

A :class:`BackgroundTask` runs :meth:`~BackgroundTask.run` in a daemon thread named ``labkit-…``
until it returns, :meth:`~BackgroundTask.stop` is called, or ``max_seconds`` pass (``run`` sleeps
with :meth:`~BackgroundTask.pause`, which wakes at once on a stop and returns False once the time
is up). Every task started is stopped by :func:`stop_all`, which runs at exit (registered when the
first task starts) and which a lab's cleanup calls. Used as a ``with`` block a task is stopped when
the block ends, however it ends (an interrupted cell raises KeyboardInterrupt there). A thread never
outlives its process, so a kernel that dies takes its tasks with it; what they did (replicas
started, say) is the lab cleanup's to remove.
"""

from __future__ import annotations

import atexit
import threading
import time

#: Tasks started and not yet stopped.
_LIVE: set[BackgroundTask] = set()
_LOCK = threading.Lock()
_AT_EXIT = [False]
#: How long :meth:`BackgroundTask.stop` waits for the thread by default.
STOP_TIMEOUT_S = 30.0


class BackgroundTask:
    """One bounded job in a daemon thread. Subclasses write :meth:`run`; ``kind`` names the thread."""

    kind = "task"

    def __init__(self, *, max_seconds: float, name: str = "") -> None:
        if not max_seconds or max_seconds <= 0:
            raise ValueError(f"max_seconds must be a positive number of seconds, not {max_seconds!r}")
        self.max_seconds = float(max_seconds)
        self.name = f"labkit-{self.kind}" + (f"-{name}" if name else "")
        self.started_at: float | None = None
        #: Why the task ended ("finished", "max_seconds (60s) reached", "stopped", or what went wrong).
        self.ended_because: str | None = None
        self._stopping = threading.Event()
        #: Set when run() has returned. Waiting on it, not on Thread.join: a join interrupted by
        #: KeyboardInterrupt can make Thread.is_alive() say False while the thread still runs.
        self._ended = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ for subclasses

    def run(self) -> str | None:
        """The work; returns why it ended (None: "finished"). Called in the thread."""
        raise NotImplementedError

    def elapsed(self) -> float:
        return time.monotonic() - self.started_at if self.started_at is not None else 0.0

    def remaining(self) -> float:
        return max(0.0, self.max_seconds - self.elapsed())

    def pause(self, seconds: float) -> bool:
        """Sleep ``seconds`` (less when the time is up); False when the task must end now."""
        if self._stopping.wait(max(0.0, min(seconds, self.remaining()))):
            return False
        return self.remaining() > 0

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set() or self.remaining() <= 0

    # ------------------------------------------------------------ for callers

    def start(self):
        """Start the thread; returns the task."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name} was started already: make a new one")
        with _LOCK:
            if not _AT_EXIT[0]:
                atexit.register(stop_all)
                _AT_EXIT[0] = True
            _LIVE.add(self)
        self.started_at = time.monotonic()
        self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)
        self._thread.start()
        return self

    def _main(self) -> None:
        try:
            why = self.run()
        except BaseException as exc:  # noqa: BLE001 - a thread's error must end up said, not lost
            why = f"{self.kind} failed: {type(exc).__name__}: {exc}"
        if self.ended_because is None:
            self.ended_because = why or ("stopped" if self._stopping.is_set() else
                                         f"max_seconds ({self.max_seconds:g}s) reached" if self.remaining() <= 0
                                         else "finished")
        with _LOCK:
            _LIVE.discard(self)
        self._ended.set()

    @property
    def running(self) -> bool:
        return self._thread is not None and not self._ended.is_set()

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> bool:
        """Ask the task to end and wait for its thread; True when it has ended. Safe to repeat."""
        if self.ended_because is None and self.running:
            self.ended_because = "stopped"
        self._stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._ended.wait(timeout)
        return not self.running

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the task ends by itself (at most ``timeout`` s); an interrupt (KeyboardInterrupt)
        or any other exception while waiting stops it first. True when it has ended."""
        if self._thread is None:
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        try:  # short waits: a signal (an interrupt) is handled between them, not only when the task ends
            while not self._ended.wait(0.1) and (deadline is None or time.monotonic() < deadline):
                pass
        except BaseException:
            self.stop()
            raise
        return not self.running

    def __enter__(self):
        return self.start() if self._thread is None else self

    def __exit__(self, *exc) -> None:
        self.stop()


def live() -> list[BackgroundTask]:
    """The tasks started and not stopped yet (whose thread may still be ending)."""
    with _LOCK:
        return sorted(_LIVE, key=lambda t: t.name)


def stop_all(timeout: float = STOP_TIMEOUT_S) -> list[str]:
    """Stop every task this process started; returns the names of those that were running."""
    tasks = live()
    for task in tasks:
        task._stopping.set()  # all at once, then wait for each
    for task in tasks:
        task.stop(timeout)
    return [task.name for task in tasks]
