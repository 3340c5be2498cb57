"""The graded-run figures that the README and each lab's overview quote, and the one file they
come from: docs/lab_figures.json, written by `python -m tests.bench labs` (and `make bench`).

The benchmark rewrites the README's table and each overview's "the grader runs … in about …"
from a fresh measurement; tests/test_quoted_figures.py fails when a hand edit makes them disagree.
"""

from __future__ import annotations

import datetime
import json
import os
import re

from labkit.core import paths

RECORD = paths.REPO / "docs" / "lab_figures.json"
README = paths.REPO / "README.md"
#: the part of an overview's Time row that states the measured grading time
GRADED_IN = re.compile(r"(the grader runs (?:this|the finished) notebook in about )(\d+ seconds|a minute|\d+ minutes)")
TABLE_ROWS = (("graded in (s)", "grading_seconds"), ("peak memory (MiB)", "peak_memory_mb"))


def about(seconds: float) -> str:
    """How an overview says a grading time: tens of seconds up to about a minute and a half,
    then whole minutes ("a minute" for 55–75 s)."""
    if 55 <= seconds < 75:
        return "a minute"
    if seconds < 105:
        return f"{max(10, round(seconds / 10) * 10)} seconds"
    return f"{round(seconds / 60)} minutes"


def overview_with(overview: str, seconds: float) -> str:
    """The overview's text with its grading time said for ``seconds``."""
    if not GRADED_IN.search(overview):
        raise ValueError("the overview's Time row does not say 'the grader runs … notebook in about …'")
    return GRADED_IN.sub(lambda m: m.group(1) + about(seconds), overview, count=1)


def readme_with(readme: str, record: dict) -> str:
    """The README with its table of grading seconds and peak memory taken from ``record``."""
    for title, key in TABLE_ROWS:
        row = f"| {title} | " + " | ".join(str(round(record[key][lab])) for lab in sorted(record[key])) + " |"
        readme, found = re.subn(rf"^\| {re.escape(title)} \|.*$", row, readme, count=1, flags=re.M)
        if not found:
            raise ValueError(f"the README has no row '| {title} |'")
    return readme


def read() -> dict:
    return json.loads(RECORD.read_text())


def update(figures: dict) -> None:
    """Record the benchmark's graded-run figures (keyed by notebook stem), then :func:`apply` them."""
    record = {"measured": datetime.date.today().isoformat(), "cpus": os.cpu_count()}
    for key in ("grading_seconds", "peak_memory_mb"):
        record[key] = {stem[:2]: round(value) for stem, value in sorted(figures[key].items())}
    RECORD.write_text(json.dumps(record, indent=2) + "\n")
    apply()


def apply() -> None:
    """Rewrite what quotes the record: the README's table and the solutions' overviews, then the
    labs built from them (`python -m tests.quoted_figures`)."""
    import nbformat

    from labkit.course import build

    record = read()
    README.write_text(readme_with(README.read_text(), record))
    for solution in paths.lab_notebooks(paths.SOLUTIONS):
        nb = nbformat.read(solution, as_version=4)
        overview = nb.cells[0]
        text = overview_with(overview.source, record["grading_seconds"][solution.name[:2]])
        if text != overview.source:
            overview.source = text
            nbformat.write(nb, solution)
    build.build()
    print(f"{RECORD.relative_to(paths.REPO)} ({record['measured']}) is in the README's table and the overviews")


if __name__ == "__main__":
    apply()
