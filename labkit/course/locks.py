"""Locks that keep graded runs on one Docker engine out of each other's way, across processes.

A lab's images, containers, ports and cleanup carry the lab's name (students type them), so two
runs of one lab at once would remove or rebuild each other's work: a run holds its lab's lock
for its whole length. A lab that joins and leaves a swarm must not run beside one that uses
Compose (:func:`syllabus.can_run_together`): the first holds the engine's lock alone, the
others share it. ``labkit grade`` takes both, so two instructors' runs, or ``labkit grade-all``
workers, simply wait for each other. The kernel drops a lock when its holder dies, however it dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from . import syllabus

#: Where the lock files live: one folder for every process on the machine, whatever its TMPDIR
#: (``grade-all`` gives each graded run a TMPDIR of its own).
FOLDER = Path("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir()) / "labkit-grade-locks"


class LockTimeout(TimeoutError):
    """The lock stayed held by another run for longer than the caller would wait."""


@contextlib.contextmanager
def _flock(name: str, mode: int, timeout: float | None) -> Iterator[None]:
    FOLDER.mkdir(parents=True, exist_ok=True)
    with open(FOLDER / f"{name}.lock", "a+") as handle:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise LockTimeout(f"another graded run held the {name} lock for {timeout:.0f} s "
                                      f"(lock file {FOLDER / name}.lock)") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def graded_run(lab: str, *, timeout: float | None = None, waiting=None) -> Iterator[None]:
    """Hold lab ``lab``'s lock and the engine's, as its needs say; ``waiting`` (a callable)
    is told once when another run makes this one wait."""
    needs = syllabus.needs(lab)
    engine = fcntl.LOCK_EX if needs.swarm else fcntl.LOCK_SH if "compose" in needs.requires else None
    with contextlib.ExitStack() as held:
        for name, mode in ((f"lab-{lab}", fcntl.LOCK_EX), ("engine", engine)):
            if mode is None:
                continue
            try:
                held.enter_context(_flock(name, mode, 0))
            except LockTimeout:
                if waiting:
                    waiting(f"waiting for another graded run to release the {name} lock")
                held.enter_context(_flock(name, mode, timeout))
        yield
