"""``labkit grade``: score a student's notebook so that only the real work earns points.

The student's notebook is never modified. A copy is prepared in which only the **answer
cells** (those with a solution region in the solution) and the cells the student added come
from the student; every other cell (parameters, set-up, demos, baselines, checks) is the
solution's own, in the solution's order. The copy runs under papermill with the
:mod:`labkit.grade_engine` engine: the student's cells in one kernel, the checks in a second
kernel that never runs student code, against local services (the moto emulator, the Vertex
stand-in) that the grader started. Check records are read only from the check cells that
the second kernel ran; points come from the solution.

What this defends against, and what it does not, is the README's grading threat model.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import os
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from ..cloud import spend
from ..core import paths
from ..core.errors import LabkitError
from ..machine import capabilities
from ..tools import dockerlab
from . import cells, locks, syllabus
from .checks import MIME_TYPE


class GradingError(LabkitError, RuntimeError):
    """Grading itself could not run (not a low score)."""


@dataclass
class Prepared:
    notebook: nbformat.NotebookNode
    roles: dict[str, str]                  # cell id → cells.STUDENT / SHARED / CHECKER
    notes: list[str] = field(default_factory=list)


def prepare(student: nbformat.NotebookNode, solution: nbformat.NotebookNode) -> Prepared:
    """The notebook to run: the solution, with the student's answer cells and added cells."""
    solution_ids = [c.get("id") for c in solution.cells]
    known = set(solution_ids)
    answers = {c.id for c in solution.cells if cells.is_answer(c)}
    mine: dict[str, nbformat.NotebookNode] = {}
    added: dict[str | None, list] = defaultdict(list)  # the student's own cells, after the lab cell they follow
    anchor = None
    for cell in student.cells:
        cell_id = cell.get("id")
        if cell_id in known:
            mine.setdefault(cell_id, cell)
            anchor = cell_id
        else:
            added[anchor].append(cell)
    notes, roles, used_ids = [], {}, set(known)
    out = nbformat.v4.new_notebook(metadata=copy.deepcopy(solution.metadata))

    def add_student_cells(after):
        for cell in added.get(after, []):
            cell = _clean(cell)
            cell.metadata.pop("labkit", None)   # a role is the solution's to give, never the student's
            cell.metadata["tags"] = [t for t in cell.metadata.get("tags", []) if "parameters" not in t]
            if cell.get("id") in used_ids or not cell.get("id"):
                cell.id = "student-" + uuid.uuid4().hex[:8]
            used_ids.add(cell.id)
            roles[cell.id] = cells.STUDENT
            out.cells.append(cell)

    add_student_cells(None)
    for lab_cell in solution.cells:
        if lab_cell.id in answers:
            if lab_cell.id not in mine:
                notes.append(f"answer cell {lab_cell.id!r} is not in the notebook: its exercise counts as not done")
                add_student_cells(lab_cell.id)
                continue
            cell = _clean(lab_cell)
            cell.cell_type, cell.source = mine[lab_cell.id].cell_type, mine[lab_cell.id].source
            if cell.cell_type != "code":
                cell.pop("outputs", None)
                cell.pop("execution_count", None)
        else:
            cell = _clean(lab_cell)
        roles[cell.id] = cells.STUDENT if lab_cell.id in answers else cells.role(lab_cell)
        out.cells.append(cell)
        add_student_cells(lab_cell.id)
    if answers and not answers & set(mine):
        notes.append("no cell of this notebook is one of the lab's answer cells (cell ids differ): was it copied "
                     "into a new notebook? Work in the lab's own notebook (labs/NN_….ipynb) so that the grader "
                     "finds your answers")
    return Prepared(out, roles, notes)


def _clean(cell) -> nbformat.NotebookNode:
    cell = copy.deepcopy(cell)
    if cell.cell_type == "code":
        cell.outputs, cell.execution_count = [], None
    cell.metadata.pop("papermill", None)
    cell.metadata.pop("execution", None)
    return cell


@dataclass
class Report:
    lab: str
    notebook: str
    checks: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
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
                "checks": self.checks, "errors": self.errors, "notes": self.notes}

    def markdown(self) -> str:
        lines = [f"# Lab {self.lab}: {self.score}/{self.max_score}", "",
                 f"Notebook: `{self.notebook}`", ""]
        lines += [f"> {note}" for note in self.notes] + ([""] if self.notes else [])
        lines += ["| check | result | points | message |", "|---|---|---|---|"]
        for c in self.checks:
            result = "skipped" if c["skipped"] else ("pass" if c["passed"] else "FAIL")
            message = c["message"].replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {c['id']} | {result} | {c['earned']}/{c['points']} | {message} |")
        if self.errors:
            lines += ["", "## Errors in the notebook", ""]
            lines += [f"- cell {e['cell']}: {e['ename']}: {e['evalue']}" for e in self.errors]
        return "\n".join(lines) + "\n"


def collect(executed: nbformat.NotebookNode, solution: nbformat.NotebookNode) -> tuple[list, list]:
    """The check records of the check cells (run by the checks' kernel), and the errors of the rest."""
    wanted = {solution.cells[i].id: (check_id, points) for i, check_id, points in cells.checks(solution)}
    records, errors, first_error = {}, [], None
    for index, cell in enumerate(executed.cells):
        if cell.cell_type != "code":
            continue
        check_id, points = wanted.get(cell.get("id"), (None, 0))
        for out in cell.get("outputs", []):
            record = out.get("data", {}).get(MIME_TYPE) if check_id else None
            if isinstance(record, dict) and record.get("id") == check_id:
                records[check_id] = record
            if out.get("output_type") == "error":
                error = {"cell": index, "ename": out.get("ename", ""), "evalue": str(out.get("evalue", ""))[:300]}
                if not check_id:
                    errors.append(error)
                first_error = first_error or error
        if check_id and check_id not in records:
            why = "did not run"
            if first_error:
                why += f" (stopped at cell {first_error['cell']}: {first_error['ename']}: {first_error['evalue']})"
            records[check_id] = _not_run(check_id, points, why)
    checks = []
    for check_id, points in wanted.values():
        record = records.get(check_id) or _not_run(check_id, points, "did not run")
        passed, skipped = record.get("passed") is True, record.get("skipped") is True
        checks.append({"id": check_id, "points": points, "earned": points if passed and not skipped else 0,
                       "passed": passed and not skipped, "skipped": skipped,
                       "message": str(record.get("message", ""))})
    return checks, errors


def _not_run(check_id: str, points: int, why: str) -> dict:
    return {"id": check_id, "points": points, "earned": 0, "passed": False, "skipped": False, "message": why}


def parse_value(text: str):
    """A ``-p NAME VALUE`` value: a Python literal when it is one, else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def grade(notebook: Path, *, parameters: dict | None = None, timeout: int = 900, lab: str | None = None,
          executed_path: Path | None = None, progress: bool = False, environment: dict | None = None) -> Report:
    """Grade ``notebook`` (of lab ``lab``, else the lab its metadata or name says).

    ``environment`` adds or replaces variables of both kernels' environment (a ``PATH`` without
    kubectl, say, to see which checks are skipped on a machine that lacks it).
    A notebook that cannot be read or is another lab's gets a report that scores 0 and says
    why; :class:`GradingError` is raised only when grading itself cannot run (no such file, an
    unknown lab, a required capability missing on this machine).
    """
    notebook = Path(notebook).resolve()
    if not notebook.exists():
        raise GradingError(f"no such notebook: {notebook}")
    started = time.monotonic()
    student, unreadable = None, None
    try:
        student = nbformat.read(notebook, as_version=4)
    except Exception as exc:  # noqa: BLE001 - corrupt JSON, not a notebook, bad encoding
        unreadable = f"the notebook could not be read ({type(exc).__name__}: {str(exc)[:200]})"
    try:
        found = paths.lab_of(notebook, student) if student is not None else paths.lab_from_name(notebook)
    except paths.LabNotFound as exc:
        if lab is None:
            raise GradingError(str(exc) if student is not None else f"{notebook}: {unreadable}") from None
        found = lab
    lab = lab or found
    try:
        solution = nbformat.read(paths.solution_for(lab), as_version=4)
    except paths.LabNotFound as exc:
        raise GradingError(str(exc)) from None
    if unreadable or found != lab:
        why = unreadable or f"this is lab {found}'s notebook, not lab {lab}'s"
        checks = [_not_run(i, p, f"not graded: {why}") for _, i, p in cells.checks(solution)]
        return Report(lab, str(notebook), checks, notes=[why], seconds=time.monotonic() - started)
    needs = syllabus.needs(lab)
    if reason := capabilities.missing(*needs.requires):
        raise GradingError(f"lab {lab} cannot be graded on this machine: {reason}")

    prepared = prepare(student, solution)
    with locks.graded_run(lab, waiting=lambda why: print(f"labkit grade: {why}", file=sys.stderr, flush=True)), \
            tempfile.TemporaryDirectory(prefix=f"labkit-grade-{lab}-") as workdir, \
            contextlib.ExitStack() as services:
        dockerlab.cleanup(lab, show=False)
        dockerlab.prune_stale_images(lab)
        private = Path(services.enter_context(tempfile.TemporaryDirectory(prefix="labkit-checker-")))
        shared_env, checker_env = _start_services(needs.services, lab, private, services)
        run_env = {spend.RUN_ID_ENV: spend.new_run_id(), **shared_env}
        # The grader's own LABKIT_* settings (strict mode, another run's services) are not the kernels'.
        base = {**{k: v for k, v in os.environ.items() if not k.startswith("LABKIT_")}, **(environment or {})}
        source = Path(workdir) / notebook.name
        output = Path(executed_path or Path(workdir) / f"executed-{notebook.name}")
        nbformat.write(prepared.notebook, source)
        executed, failure = _execute(source, output, parameters or {}, workdir, timeout, progress, prepared.roles,
                                     student_env={**base, **run_env}, checker_env={**base, **run_env, **checker_env})
        dockerlab.cleanup(lab, show=False)
    checks, errors = collect(executed or prepared.notebook, solution)
    notes = list(prepared.notes)
    if failure:
        notes.append(f"the notebook could not be run to the end: {failure}")
    for error in (executed.metadata.get("labkit", {}).get("checker_errors", []) if executed else []):
        notes.append(f"the lab's own cell {error['cell']} failed where the checks run: "
                     f"{error['ename']}: {error['evalue']}")
    return Report(lab, str(notebook), checks, errors, notes, time.monotonic() - started)


def _execute(source: Path, output: Path, parameters: dict, workdir: str, timeout: int, progress: bool,
             roles: dict, *, student_env: dict, checker_env: dict):
    """Run the prepared notebook with the two-kernel engine: (the executed notebook, or None if
    nothing ran; why the run stopped short, or None). The kernels start in ``workdir`` (not
    papermill's ``cwd``, which changes the whole process's directory: graded runs may go in parallel)."""
    import papermill

    from . import grade_engine

    failure = None
    try:
        executed = papermill.execute_notebook(
            str(source), str(output), parameters=parameters, kernel_name="python3",
            engine_name=grade_engine.NAME, progress_bar=progress, request_save_on_cell_execute=True,
            timeout=timeout, roles=roles, student_env=student_env, checker_env=checker_env, kernel_cwd=workdir)
        return executed, None
    except papermill.PapermillExecutionError:
        pass  # cell errors are part of the grade, and papermill saved the notebook
    except Exception as exc:  # noqa: BLE001 - a kernel that would not start or died: grade what ran
        failure = f"{type(exc).__name__}: {str(exc)[:300]}"
    return (nbformat.read(output, as_version=4) if output.exists() else None), failure


def _start_services(names, lab: str, private: Path, stack: contextlib.ExitStack) -> tuple[dict, dict]:
    """Start the services the lab talks to; (environment for both kernels, for the checks' only)."""
    shared, checker = {}, {}
    if "moto" in names:
        from ..cloud import emulators

        recording = private / "moto-requests.jsonl"
        moto = emulators.start_moto(emulators.free_port(None), show=False, recording=recording)  # never attach
        stack.callback(moto.stop)
        shared[emulators.MOTO_URL_ENV] = moto.url
        checker[emulators.MOTO_RECORDING_ENV] = str(recording)
    if "vertex-standin" in names:
        from ..cloud import vertex

        from ..cloud.emulators import free_port

        standin = vertex.start_standin(lab, free_port(None), show=False)
        stack.callback(standin.stop)
        shared[vertex.STANDIN_URL_ENV] = standin.url
    return shared, checker

