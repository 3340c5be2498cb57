"""``labkit grade``: run a student's notebook with the canonical checks and score it.

The student's notebook is never modified. A copy is prepared in which every check cell
is the canonical one from the solution (an edited check cell is replaced, a deleted one
re-inserted where the solution has it, a duplicate dropped); the copy runs under
papermill in a fresh working directory with errors allowed and a per-cell timeout that
interrupts the kernel; then the check records are read from the canonical cells'
outputs only, so output printed by any other cell counts for nothing.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import dockerlab, paths, probes
from .checks import MIME_TYPE

CHECK_CALL = re.compile(r"""\bcheck\(\s*["'](\d\d\.[a-z0-9][a-z0-9-]*)["']""")
NEEDS = {"docker": probes.docker_reason, "cloud": probes.cloud_sdks_reason}


class GradingError(RuntimeError):
    """Grading itself could not run (not a low score)."""


def check_ids(cell) -> list[str]:
    return CHECK_CALL.findall(cell.source) if cell.cell_type == "code" else []


def canonical_checks(solution: nbformat.NotebookNode) -> list[tuple[int, str]]:
    """(cell index, check id) of every check cell in the solution, in order."""
    found = []
    for index, cell in enumerate(solution.cells):
        ids = check_ids(cell)
        if len(ids) > 1:
            raise GradingError(f"solution cell {cell.id} holds several checks {ids}: one per cell")
        if ids:
            found.append((index, ids[0]))
    return found


def prepare(student: nbformat.NotebookNode, solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook to run: the student's cells with the solution's check cells in place."""
    checks = canonical_checks(solution)
    check_cell_ids = {solution.cells[i].id for i, _ in checks}
    nb = copy.deepcopy(student)
    nb.cells = [c for c in nb.cells
                if not check_ids(c) and c.get("id") not in check_cell_ids
                and MIME_TYPE not in json.dumps(c.get("outputs", []))]
    for index, _ in checks:
        canonical = copy.deepcopy(solution.cells[index])
        canonical.outputs, canonical.execution_count = [], None
        nb.cells.insert(_insert_at(nb, solution, index), canonical)
    nb.metadata.setdefault("labkit", {})["lab"] = solution.metadata["labkit"]["lab"]
    return nb


def _insert_at(nb, solution, index: int) -> int:
    """Where the solution's cell ``index`` goes: after its nearest preceding cell that the
    student still has (and after the check cells already placed there), else at the
    position of the nearest following one, else at the end."""
    position = {c.get("id"): i for i, c in enumerate(nb.cells)}
    for before in reversed(solution.cells[:index]):
        if before.id in position:
            at = position[before.id] + 1
            while at < len(nb.cells) and check_ids(nb.cells[at]):
                at += 1
            return at
    for after in solution.cells[index + 1:]:
        if after.id in position:
            return position[after.id]
    return len(nb.cells)


@dataclass
class Report:
    lab: str
    notebook: str
    checks: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def score(self) -> int:
        return sum(c["earned"] for c in self.checks if not c["skipped"])

    @property
    def max_score(self) -> int:
        return sum(c["points"] for c in self.checks if not c["skipped"])

    def as_dict(self) -> dict:
        return {"lab": self.lab, "notebook": self.notebook, "score": self.score,
                "max_score": self.max_score, "seconds": round(self.seconds, 1),
                "checks": self.checks, "errors": self.errors}

    def markdown(self) -> str:
        lines = [f"# Lab {self.lab}: {self.score}/{self.max_score}", "",
                 f"Notebook: `{self.notebook}`", "",
                 "| check | result | points | message |", "|---|---|---|---|"]
        for c in self.checks:
            result = "skipped" if c["skipped"] else ("pass" if c["passed"] else "FAIL")
            message = c["message"].replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {c['id']} | {result} | {c['earned']}/{c['points']} | {message} |")
        if self.errors:
            lines += ["", "## Errors in the notebook", ""]
            lines += [f"- cell {e['cell']}: {e['ename']}: {e['evalue']}" for e in self.errors]
        return "\n".join(lines) + "\n"


def collect(executed: nbformat.NotebookNode, solution: nbformat.NotebookNode) -> tuple[list, list]:
    """The check records of the canonical cells, and the errors of the other cells."""
    wanted = {solution.cells[i].id: check_id for i, check_id in canonical_checks(solution)}
    points = {check_id: _points(solution.cells[i]) for i, check_id in canonical_checks(solution)}
    records, errors, first_error = {}, [], None
    for index, cell in enumerate(executed.cells):
        if cell.cell_type != "code":
            continue
        check_id = wanted.get(cell.get("id"))
        for out in cell.get("outputs", []):
            if check_id and MIME_TYPE in out.get("data", {}):
                record = out["data"][MIME_TYPE]
                if record.get("id") == check_id:
                    records[check_id] = record
            if out.get("output_type") == "error":
                error = {"cell": index, "ename": out.get("ename", ""),
                         "evalue": str(out.get("evalue", ""))[:300]}
                if not check_id:
                    errors.append(error)
                first_error = first_error or error
        if check_id and check_id not in records:
            why = "did not run"
            if first_error:
                why += f" (stopped at cell {first_error['cell']}: {first_error['ename']}: {first_error['evalue']})"
            records[check_id] = {"id": check_id, "points": points[check_id], "earned": 0,
                                 "passed": False, "skipped": False, "message": why}
    checks = []
    for check_id in wanted.values():
        record = records.get(check_id) or {"id": check_id, "points": points[check_id], "earned": 0,
                                           "passed": False, "skipped": False, "message": "did not run"}
        record["points"] = points[check_id]  # the solution's points, whatever the record says
        record["earned"] = record["points"] if record.get("passed") else 0
        checks.append({k: record.get(k) for k in ("id", "points", "earned", "passed", "skipped", "message")})
    return checks, errors


def _points(cell) -> int:
    match = re.search(r"""\bcheck\(\s*["'][^"']+["']\s*,\s*(\d+)""", cell.source)
    if not match:
        raise GradingError(f"solution check cell {cell.id} does not give its points as a number")
    return int(match.group(1))


def parse_value(text: str):
    """A ``-p NAME VALUE`` value: a Python literal when it is one, else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def grade(notebook: Path, *, parameters: dict | None = None, timeout: int = 900,
          executed_path: Path | None = None, progress: bool = False) -> Report:
    """Grade ``notebook``; raise :class:`GradingError` only when grading cannot run."""
    import papermill

    notebook = Path(notebook).resolve()
    if not notebook.exists():
        raise GradingError(f"no such notebook: {notebook}")
    try:
        student = nbformat.read(notebook, as_version=4)
    except Exception as exc:
        raise GradingError(f"{notebook} is not a readable notebook: {exc}") from None
    try:
        lab = paths.lab_of(notebook, student)
        solution = nbformat.read(paths.solution_for(lab), as_version=4)
    except paths.LabNotFound as exc:
        raise GradingError(str(exc)) from None
    for need in solution.metadata.get("labkit", {}).get("requires", []):
        reason = NEEDS[need]()
        if reason:
            raise GradingError(f"lab {lab} needs {need}: {reason}")

    prepared = prepare(student, solution)
    if "docker" in solution.metadata.get("labkit", {}).get("requires", []):
        dockerlab.cleanup(lab, show=False)
        dockerlab.prune_stale_images(lab)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"labkit-grade-{lab}-") as workdir:
        source = Path(workdir) / notebook.name
        output = Path(executed_path or Path(workdir) / f"executed-{notebook.name}")
        nbformat.write(prepared, source)
        saved_strict = os.environ.pop("LABKIT_STRICT", None)
        try:
            papermill.execute_notebook(
                str(source), str(output), parameters=parameters or {}, cwd=workdir,
                kernel_name="python3", progress_bar=progress, request_save_on_cell_execute=True,
                allow_errors=True, timeout=timeout, interrupt_on_timeout=True)
        except papermill.PapermillExecutionError:
            pass  # cell errors are part of the grade, and papermill saved the notebook
        except Exception as exc:  # dead kernel and the like: grade what ran
            if not output.exists():
                raise GradingError(f"the notebook could not be run: {exc}") from None
        finally:
            if saved_strict is not None:
                os.environ["LABKIT_STRICT"] = saved_strict
            dockerlab.cleanup(lab, show=False)
        executed = nbformat.read(output, as_version=4) if output.exists() else prepared
    checks, errors = collect(executed, solution)
    return Report(lab, str(notebook), checks, errors, time.monotonic() - started)
