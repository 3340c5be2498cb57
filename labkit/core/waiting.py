"""One way to wait: poll a condition until it holds or a time-out passes."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

from .errors import TimedOut

T = TypeVar("T")


def wait_until(condition: Callable[[], T], *, timeout: float, what: str, every: float = 1.0,
               ignore: tuple[type[BaseException], ...] = (), error: type[Exception] = TimedOut,
               explain: Callable[[], str] | None = None, progress: Callable[[float], None] | None = None) -> T:
    """Call ``condition`` every ``every`` seconds (a try that takes longer is followed at once by
    the next) until it returns a true value, and return it.

    ``what`` names what is awaited ("container x to be healthy"). When ``timeout`` seconds pass
    first, ``error`` (:class:`TimedOut` unless the caller has its own) is raised with "``what``:
    not within Ns", followed by ``explain()`` in brackets when given (what was seen last: a
    status, the end of a log). Exceptions of the types in ``ignore`` count as "not yet".
    ``progress(elapsed)`` is called after each try, for a progress line.
    """
    started = time.monotonic()
    while True:
        tried = time.monotonic()
        try:
            if value := condition():
                return value
        except ignore:
            pass
        elapsed = time.monotonic() - started
        if progress:
            progress(elapsed)
        if elapsed >= timeout:
            detail = explain() if explain else ""
            raise error(f"{what}: not within {timeout:g}s" + (f" ({detail})" if detail else ""))
        time.sleep(max(0.0, min(every - (time.monotonic() - tried), timeout - elapsed)))
