"""Auto-graded checks: ``check(id, points, test, hint)``.

A check runs a test callable that inspects real end state (an image, a container, a
file) and turns whatever happens into a record; student errors never escape. The
record is displayed twice: a human line (``[PASS] 01.final-size 3/3``) and a machine
record under :data:`MIME_TYPE`, which ``labkit grade`` collects from the executed
notebook. With ``LABKIT_STRICT=1`` a failed check raises, so nbval sees it.
"""

from __future__ import annotations

import html
import os
import re
import traceback
from dataclasses import asdict, dataclass
from typing import Callable

from ..core.errors import LabkitError, RequirementNotMet, TimedOut
from ..machine import capabilities

MIME_TYPE = "application/vnd.labkit.check+json"
CHECK_ID = re.compile(r"^\d\d\.[a-z0-9][a-z0-9-]*$")


class CheckFailed(LabkitError, AssertionError):
    """Raised by a failed check when ``LABKIT_STRICT=1`` (an AssertionError, as nbval expects a
    failing cell's to be)."""


class Skip(Exception):
    """Raised by a test when a probe found that its environment is absent. Not a LabkitError: a
    skip is no error, and an ``except LabkitError`` in a check's test must not swallow it."""


@dataclass
class CheckResult:
    id: str
    points: int
    earned: int
    passed: bool
    skipped: bool
    message: str

    @property
    def line(self) -> str:
        if self.skipped:
            return f"[SKIP] {self.id} ({self.message})"
        status = "PASS" if self.passed else "FAIL"
        return f"[{status}] {self.id} {self.earned}/{self.points}"


# Results of the checks run in this kernel, by id, for the closing score table.
RESULTS: dict[str, CheckResult] = {}


def skip(reason: str) -> None:
    """Skip the running check; ``reason`` must come from a probe (see labkit.probes)."""
    raise Skip(reason)


def check(
    id: str,
    points: int,
    test: Callable[[], object],
    hint: str,
    *,
    needs: tuple[str, ...] = (),
) -> None:
    """Run ``test`` and show the outcome; the result is kept in :data:`RESULTS`.

    ``test`` passes by returning anything but ``False``; an ``AssertionError``, a
    ``RequirementNotMet`` or a ``TimedOut`` from labkit's tools (or a ``False`` return) fails it
    with its message, any other exception fails it with the exception's type and text. ``needs`` names the optional capabilities the check uses
    (:mod:`labkit.capabilities`: "kind", "kubectl", "buildkit"…): when one is absent the
    check is skipped with its probe's reason.
    """
    if not CHECK_ID.match(id):
        raise ValueError(f"check id {id!r} must look like '01.final-size'")
    try:
        reason = capabilities.missing(*needs)
        if reason:
            raise Skip(reason)
        outcome = test()
        if outcome is False:
            raise AssertionError("the check's condition is not met")
        result = CheckResult(id, points, points, True, False, "")
    except Skip as exc:
        result = CheckResult(id, points, 0, False, True, str(exc))
    except (AssertionError, RequirementNotMet, TimedOut) as exc:
        result = CheckResult(id, points, 0, False, False, str(exc) or "assertion failed")
    except Exception as exc:  # student errors become a failed check, never a crash
        frames = traceback.extract_tb(exc.__traceback__)
        where = f" (at {frames[-1].name}, line {frames[-1].lineno})" if frames else ""
        result = CheckResult(id, points, 0, False, False, f"{type(exc).__name__}: {exc}{where}")
    RESULTS[id] = result
    _show(result, hint)
    if os.environ.get("LABKIT_STRICT") == "1" and not (result.passed or result.skipped):
        raise CheckFailed(f"{result.line}: {result.message}")


def _show(result: CheckResult, hint: str) -> None:
    text = result.line
    if not result.passed and not result.skipped:
        text += f"\n  why:  {result.message}\n  hint: {hint}"
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - labkit always ships with IPython
        get_ipython = lambda: None  # noqa: E731
    if get_ipython() is None:
        print(text)
        return
    colour = "#1a7f37" if result.passed else ("#6e7781" if result.skipped else "#cf222e")
    body = html.escape(result.line)
    if not result.passed and not result.skipped:
        body += (f"<br><b>why:</b> {html.escape(result.message)}"
                 f"<br><b>hint:</b> {html.escape(hint)}")
    bundle = {
        "text/plain": text,
        "text/html": f'<div style="font-family:monospace;color:{colour}">{body}</div>',
        MIME_TYPE: asdict(result),
    }
    display(bundle, raw=True)


def score_table(results: dict[str, CheckResult] | None = None) -> str:
    """Show the checks run in this kernel as a table, with the total; returns the text."""
    from rich.console import Console
    from rich.table import Table

    results = RESULTS if results is None else results
    table = Table(title="Score")
    for column in ("check", "result", "points"):
        table.add_column(column)
    earned = possible = 0
    for r in results.values():
        status = "skipped: " + r.message if r.skipped else ("pass" if r.passed else "FAIL")
        table.add_row(r.id, status, "-" if r.skipped else f"{r.earned}/{r.points}")
        if not r.skipped:
            earned, possible = earned + r.earned, possible + r.points
    table.add_row("total", "", f"{earned}/{possible}", style="bold")
    console = Console(width=100, force_jupyter=False, record=True)
    console.print(table)
    return console.export_text()
