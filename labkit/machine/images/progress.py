"""How a base-image run reports: a live status line on a terminal, plain lines in a log or a
Jupyter cell (where a live line would be lost), and one-line reasons for what failed."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any


def mb(size: int | None) -> str:
    """A size in megabytes as the reports print it ("?" when unknown)."""
    return "?" if size is None else f"{size / 1e6:,.0f} MB"


def escape(text: str) -> str:
    """``text`` with rich's markup characters escaped, so a message prints as it is."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def one_line(text: str, limit: int = 300) -> str:
    """``text`` on one line, cut at ``limit`` characters: a reason inside a longer message."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


class Progress:
    """Progress for a terminal (a live status line) or a log / Jupyter cell (plain lines)."""

    HEARTBEAT = 30.0  # seconds between "still working" lines when not live

    def __init__(self, console: Any = None) -> None:
        if console is None:
            from rich.console import Console

            console = Console()
        self.console = console
        self.live = bool(console.is_terminal and not console.is_jupyter
                         and not console.is_dumb_terminal)
        self._status: Any = None
        self._title = ""
        self._last_print = time.monotonic()

    def print(self, text: str) -> None:
        self.console.print(text, highlight=False, soft_wrap=True)
        self._last_print = time.monotonic()

    @contextlib.contextmanager
    def step(self, title: str, fail_mark: str = "[red]✗[/]") -> Iterator[None]:
        """A timed step: "✓ title (12 s)" when it ends, "✗ title: error" when it raises."""
        start = time.monotonic()
        self._title = title
        try:
            if self.live:
                with self.console.status(f"{escape(title)} ...") as status:
                    self._status = status
                    try:
                        yield
                    finally:
                        self._status = None
            else:
                self.print(f"  {escape(title)} ...")
                yield
        except BaseException as exc:
            reason = getattr(exc, "explanation", None) or str(exc) or type(exc).__name__
            reason = one_line(str(reason), 200)
            self.print(f"  {fail_mark} {escape(title)}: {escape(reason)}")
            raise
        self.print(f"  [green]✓[/] {escape(title)} [dim]({time.monotonic() - start:.0f} s)[/]")

    def detail(self, text: str, milestone: bool = False) -> None:
        """A sub-step: shown on the live line; printed when a milestone or as a heartbeat."""
        text = text.strip()
        if not text:
            return
        if self.live and self._status is not None:
            self._status.update(f"{escape(self._title)}: [dim]{escape(text[:100])}[/]")
        elif milestone:
            self.print(f"    {escape(text)}")
        elif time.monotonic() - self._last_print > self.HEARTBEAT:
            self.print(f"    [dim]… {escape(text[:120])}[/]")
