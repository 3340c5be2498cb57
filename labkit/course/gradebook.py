"""What ``labkit grade-all`` writes for a class, from its rows (:class:`labkit.batch.Row`).

- ``gradebook.csv``: a row per student and lab, a column per check (points earned; empty where a
  check was skipped or not run), total and maximum: the shape an LMS's grade import takes.
- ``summary.md`` and ``summary.html``: per lab, each check's pass rate across the class (with a
  plot in the HTML), each student's score, and every submission that was not graded, with why.
- ``junit.xml``: a test case per student and check, for CI test reports.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

import nbformat

from ..core import paths
from . import cells
from .batch import GRADED, Row


def check_columns(rows: list[Row]) -> dict[str, list[tuple[str, int]]]:
    """{lab: [(check id, points), …]} for every lab the rows have, in the solution's order."""
    columns = {}
    for lab in sorted({r.lab for r in rows if r.lab}):
        try:
            solution = nbformat.read(paths.solution_for(lab), as_version=4)
        except paths.LabNotFound:
            continue
        columns[lab] = [(check_id, points) for _, check_id, points in cells.checks(solution)]
    return columns


def pass_rates(rows: list[Row], lab: str) -> dict[str, tuple[int, int]]:
    """{check id: (passed, graded)} over the lab's graded rows (a skipped check is not graded)."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        if row.lab == lab and row.status == GRADED:
            for check in row.checks:
                if not check["skipped"]:
                    counts[check["id"]][0] += check["passed"]
                    counts[check["id"]][1] += 1
    return {check_id: (passed, graded) for check_id, (passed, graded) in counts.items()}


def _check_table(rows: list[Row], lab: str, checks: list[tuple[str, int]]) -> list[tuple]:
    """(check id, points, passed, graded, pass rate or None) per check of the lab."""
    rates = pass_rates(rows, lab)
    table = []
    for check_id, points in checks:
        passed, count = rates.get(check_id, (0, 0))
        table.append((check_id, points, passed, count, passed / count if count else None))
    return table


def _rate(rate: float | None) -> str:
    return "skipped" if rate is None else f"{100 * rate:.0f}%"


def write_csv(rows: list[Row], path: Path) -> None:
    columns = [check_id for checks in check_columns(rows).values() for check_id, _ in checks]
    with open(path, "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["student", "lab", "status", "score", "max_score", "percent", *columns, "reason", "notebook"])
        for row in rows:
            earned = {c["id"]: c["earned"] for c in row.checks if not c["skipped"]}
            percent = f"{100 * row.score / row.max_score:.1f}" if row.max_score else ""
            out.writerow([row.student, row.lab or "", row.status, row.score, row.max_score, percent,
                          *(earned.get(c, "") for c in columns), row.reason, row.notebook])


def _tally(rows: list[Row]) -> str:
    statuses = defaultdict(int)
    for row in rows:
        statuses[row.status] += 1
    return (f"{len(rows)} submission(s) from {len({r.student for r in rows})} student(s): "
            + ", ".join(f"{n} {status}" for status, n in sorted(statuses.items())))


def markdown(rows: list[Row]) -> str:
    lines = ["# Class grades", "", _tally(rows), ""]
    for lab, checks in check_columns(rows).items():
        graded = [r for r in rows if r.lab == lab and r.status == GRADED]
        mean = sum(r.score for r in graded) / len(graded) if graded else 0
        top = max((r.max_score for r in graded), default=0)
        lines += [f"## Lab {lab}", "", f"{len(graded)} graded; mean score {mean:.1f} of {top}.", "",
                  "| check | points | passed | graded | pass rate |", "|---|---|---|---|---|"]
        for check_id, points, passed, count, rate in _check_table(rows, lab, checks):
            lines.append(f"| {check_id} | {points} | {passed} | {count} | {_rate(rate)} |")
        lines.append("")
    lines += ["## Students", "", "| student | lab | status | score | reason |", "|---|---|---|---|---|"]
    for row in rows:
        reason = row.reason.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {row.student} | {row.lab or '?'} | {row.status} | {row.score}/{row.max_score} | {reason} |")
    return "\n".join(lines) + "\n"


def _plot(rows: list[Row], lab: str) -> str:
    """The lab's pass-rate plot as a data URL ('' when nothing was graded)."""
    from ..tools import plots

    rates = {check_id: passed / count for check_id, (passed, count) in pass_rates(rows, lab).items() if count}
    if not rates:
        return ""
    import matplotlib.pyplot as plt

    figure = plots.pass_rates(rates, title=f"Lab {lab}: pass rate per check")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def html_page(rows: list[Row]) -> str:
    e = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>Class grades</title>",
             "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}.low{background:#fdd}</style>",
             f"</head><body><h1>Class grades</h1><p>{e(_tally(rows))}</p>"]
    for lab, checks in check_columns(rows).items():
        parts.append(f"<h2>Lab {e(lab)}</h2>")
        if image := _plot(rows, lab):
            parts.append(f"<img alt='pass rate per check, lab {e(lab)}' src='{image}'>")
        parts.append("<table><tr><th>check</th><th>points</th><th>passed</th><th>graded</th><th>pass rate</th></tr>")
        for check_id, points, passed, count, rate in _check_table(rows, lab, checks):
            low = " class='low'" if rate is not None and rate < 0.5 else ""
            parts.append(f"<tr{low}><td>{e(check_id)}</td><td>{points}</td><td>{passed}</td><td>{count}</td>"
                         f"<td>{_rate(rate)}</td></tr>")
        parts.append("</table>")
    parts.append("<h2>Students</h2><table><tr><th>student</th><th>lab</th><th>status</th><th>score</th>"
                 "<th>reason</th></tr>")
    for row in rows:
        parts.append(f"<tr><td>{e(row.student)}</td><td>{e(row.lab or '?')}</td><td>{e(row.status)}</td>"
                     f"<td>{row.score}/{row.max_score}</td><td>{e(row.reason)}</td></tr>")
    parts.append("</table></body></html>")
    return "\n".join(parts) + "\n"


def junit(rows: list[Row]) -> str:
    """JUnit XML: a suite per lab, a case per student and check; a submission that was not graded
    is one case in error, with the reason."""
    root = ET.Element("testsuites", name="labkit grade-all")
    suites: dict[str, ET.Element] = {}
    for row in rows:
        lab = row.lab or "unknown"
        suite = suites.get(lab)
        if suite is None:
            suite = suites[lab] = ET.SubElement(root, "testsuite", name=f"lab {lab}")
        classname = f"lab{lab}.{row.student}"
        if row.status != GRADED:
            case = ET.SubElement(suite, "testcase", classname=classname, name="grading", time=f"{row.seconds:.1f}")
            ET.SubElement(case, "error", message=f"{row.status}: {row.reason}"[:1000])
            continue
        for check in row.checks:
            case = ET.SubElement(suite, "testcase", classname=classname, name=check["id"])
            if check["skipped"]:
                ET.SubElement(case, "skipped", message=check["message"][:1000])
            elif not check["passed"]:
                ET.SubElement(case, "failure", message=check["message"][:1000])
    for element in [root, *suites.values()]:
        cases = element.iter("testcase")
        counts = defaultdict(int)
        for case in cases:
            counts["tests"] += 1
            for child in case:
                counts[{"failure": "failures", "error": "errors", "skipped": "skipped"}[child.tag]] += 1
        for key in ("tests", "failures", "errors", "skipped"):
            element.set(key, str(counts[key]))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_all(rows: list[Row], out: Path) -> list[Path]:
    """Write the class's gradebook, summaries and JUnit report into ``out``; their paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "gradebook.csv", out / "summary.md", out / "summary.html", out / "junit.xml"]
    write_csv(rows, written[0])
    written[1].write_text(markdown(rows))
    written[2].write_text(html_page(rows))
    written[3].write_text(junit(rows))
    return written
