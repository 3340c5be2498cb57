"""``labkit grade-all``: grade a class's submissions, each in a ``labkit grade`` process of its own.

A process per submission, with its own folder, TMPDIR and run id, means that a notebook that
hangs, kills its kernel or crashes the grader costs only its own row: past the time limit, the
process and everything it started (kernels, emulators) are killed, its temporary files removed
and the lab's containers cleaned up. Runs of one lab never overlap, nor labs that may not share
the engine (:func:`syllabus.can_run_together`; :mod:`labkit.locks` holds the same rule across
processes); other labs go ``jobs`` at a time. A report records a fingerprint of the submission
and of the lab's canonical code, so a second run grades only what changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..core import paths
from ..core.names import slug
from ..machine import capabilities
from ..tools import dockerlab
from . import syllabus

#: What a row of the gradebook says happened to a submission.
GRADED, NOT_GRADED, TIMED_OUT, DUPLICATE, FAILED = "graded", "not graded", "timed out", "duplicate", "failed"
#: Seconds one submission may take, all cells together, before its run is killed.
LIMIT_S = 1200
_SKIP_DIRS = {".ipynb_checkpoints", "work", ".labkit", ".git", "reports", "__pycache__"}


@dataclass
class Submission:
    student: str
    path: Path
    lab: str | None            # None: neither its metadata nor its name says
    duplicate_of: Path | None = None


@dataclass
class Row:
    """One line of the gradebook: a student's submission of one lab, and what came of it."""

    student: str
    lab: str | None
    notebook: str
    status: str
    score: int = 0
    max_score: int = 0
    checks: list[dict] = field(default_factory=list)
    reason: str = ""
    seconds: float = 0.0
    reused: bool = False       # an unchanged submission's earlier report

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


def _lab_of(path: Path, forced: str | None) -> str | None:
    """What the notebook's metadata says, else its name (``dave_00_setup.ipynb``), else ``forced``."""
    try:
        return paths.lab_of(path)
    except Exception:  # noqa: BLE001 - unreadable or unnamed: the name, else the instructor's --lab
        match = re.search(r"(?:^|[_-])(\d\d)[_-]", path.name)
        return match.group(1) if match else forced


def _student_of_file(path: Path) -> str:
    """``alice_01_image_slimming.ipynb`` → ``alice``; ``alice.ipynb`` → ``alice``."""
    stem = path.stem
    match = re.match(r"^(?P<student>.+?)[_-]\d\d[_-]", stem)
    return match.group("student") if match else stem


def discover(folder: Path, *, lab: str | None = None) -> list[Submission]:
    """The submissions in ``folder``: its notebooks (the student from the file name), or its
    sub-folders, one per student (every notebook in it, such as a clone of the class
    repository's labs/). With ``lab``, only that lab's, as far as a notebook says which lab it is
    (one that says nothing, or cannot be read, is kept: its row says why it scores 0).
    Two submissions of one student and lab: the first in path order is graded, the other listed."""
    folder = Path(folder)
    found: list[Submission] = []
    for entry in sorted(folder.iterdir()):
        if entry.is_file() and entry.suffix == ".ipynb":
            found.append(Submission(_student_of_file(entry), entry, _lab_of(entry, lab)))
        elif entry.is_dir() and entry.name not in _SKIP_DIRS:
            for notebook in sorted(entry.rglob("*.ipynb")):
                if not _SKIP_DIRS & set(notebook.relative_to(entry).parts[:-1]):
                    found.append(Submission(entry.name, notebook, _lab_of(notebook, lab)))
    if lab:
        found = [s for s in found if s.lab in (lab, None) or s.path.parent == folder]
    first: dict[tuple[str, str | None], Path] = {}
    for submission in found:
        key = (submission.student, submission.lab)
        if key in first:
            submission.duplicate_of = first[key]
        else:
            first[key] = submission.path
    return found


class LabPool:
    """Runs ``run(job)`` for every job, ``workers`` at a time, never two of one lab at once nor
    two labs that may not share the engine. ``lab_of(job)`` says a job's lab (None: no lab,
    runs any time). Results, or the exception a job raised, are kept by job."""

    def __init__(self, jobs: Iterable[Hashable], run: Callable, *, lab_of: Callable, workers: int = 1):
        self.jobs, self.run, self.lab_of = list(jobs), run, lab_of
        self.results: dict = {}
        self.busy: list[str] = []
        self.lock = threading.Condition()
        self.threads = [threading.Thread(target=self._work, daemon=True) for _ in range(max(1, workers))]
        for thread in self.threads:
            thread.start()

    def _fits(self, job) -> bool:
        lab = self.lab_of(job)
        return lab is None or all(syllabus.can_run_together(lab, other) for other in self.busy)

    def _work(self) -> None:
        while True:
            with self.lock:
                while self.jobs and not (ready := [j for j in self.jobs if self._fits(j)]):
                    self.lock.wait()
                if not self.jobs:
                    return
                job = ready[0]
                self.jobs.remove(job)
                lab = self.lab_of(job)
                if lab is not None:
                    self.busy.append(lab)
            try:
                result = self.run(job)
            except BaseException as exc:  # noqa: BLE001 - whoever asks for this job's result gets it
                result = exc
            with self.lock:
                self.results[job] = result
                if lab is not None:
                    self.busy.remove(lab)
                self.lock.notify_all()

    def get(self, job):
        """The job's result, once it has one (re-raises what the job raised)."""
        with self.lock:
            while job not in self.results:
                self.lock.wait()
            result = self.results[job]
        if isinstance(result, BaseException):
            raise result
        return result

    def wait(self) -> dict:
        for thread in self.threads:
            thread.join()
        return self.results


def canonical_fingerprint(lab: str) -> str:
    """What a lab's grade depends on besides the submission: its solution and the package's code."""
    digest = hashlib.sha256(paths.solution_for(lab).read_bytes())
    package = Path(__file__).resolve().parents[1]
    for source in sorted(package.rglob("*.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()


def _fingerprint(submission: Submission, canonical: dict[str, str]) -> str:
    digest = hashlib.sha256(submission.path.read_bytes())
    digest.update((canonical.get(submission.lab or "", "") + (submission.lab or "")).encode())
    return digest.hexdigest()


def _kill_tree(process: subprocess.Popen) -> None:
    """Kill a grading process and all it started (kernels in their own process groups, emulators)."""
    import psutil

    try:
        family = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    for member in [process, *family]:
        try:
            member.kill()
        except (psutil.NoSuchProcess, ProcessLookupError):
            pass
    process.wait()
    psutil.wait_procs(family, timeout=10)


class Batch:
    """Grade ``submissions`` into ``out``: ``out/reports/<student>/<lab>.json`` (``.md``,
    ``.executed.ipynb``, ``.log``) for each; :mod:`labkit.gradebook` writes the class's files."""

    def __init__(self, out: Path, *, lab: str | None = None, limit: float = LIMIT_S, cell_timeout: int = 900,
                 regrade: bool = False, show: Callable[[str], None] = print):
        self.out, self.lab, self.limit, self.cell_timeout = Path(out), lab, limit, cell_timeout
        self.regrade, self.show = regrade, show
        self.canonical: dict[str, str] = {}
        self.cannot: dict[str, str | None] = {}   # lab → why this machine cannot grade it (None: it can)

    def report_path(self, submission: Submission) -> Path:
        name = slug(submission.student, keep="._") or "student"
        return self.out / "reports" / name / f"{submission.lab or 'unknown'}.json"

    def grade(self, submission: Submission) -> Row:
        """One submission's row; never raises for anything the submission is or does."""
        row = Row(submission.student, submission.lab, str(submission.path), NOT_GRADED)
        if submission.duplicate_of:
            row.status, row.reason = DUPLICATE, (f"not graded: {submission.student} has another lab "
                                                 f"{submission.lab} submission, {submission.duplicate_of}, "
                                                 "graded instead; remove one and run again")
            return row
        if submission.lab is not None:
            try:
                self.canonical.setdefault(submission.lab, canonical_fingerprint(submission.lab))
            except paths.LabNotFound as exc:
                row.reason = f"not graded: {exc}"
                return row
            if submission.lab not in self.cannot:
                self.cannot[submission.lab] = capabilities.missing(*syllabus.needs(submission.lab).requires)
            if self.cannot[submission.lab]:
                row.status, row.reason = FAILED, (f"lab {submission.lab} cannot be graded on this machine: "
                                                  f"{self.cannot[submission.lab]}")
                return row
        report = self.report_path(submission)
        fingerprint = _fingerprint(submission, self.canonical)
        if not self.regrade and (earlier := _earlier(report, fingerprint)):
            return earlier
        report.parent.mkdir(parents=True, exist_ok=True)
        row = self._run(submission, report, row)
        report.write_text(json.dumps({**_read_json(report), "batch": {**row.as_dict(), "fingerprint": fingerprint}},
                                     indent=2) + "\n")
        if not report.with_suffix(".md").exists():  # the grader wrote none: the student still reads why
            report.with_suffix(".md").write_text(f"# Lab {row.lab or '?'}: {row.status}\n\nNotebook: "
                                                 f"`{row.notebook}`\n\n> {row.reason}\n")
        return row

    def _run(self, submission: Submission, report: Path, row: Row) -> Row:
        command = [sys.executable, "-m", "labkit.cli", "grade", str(submission.path), "--json", str(report),
                   "--timeout", str(self.cell_timeout)]
        if self.lab:
            command += ["--lab", self.lab]
        for stale in (report, report.with_suffix(".md"), report.with_suffix(".executed.ipynb")):
            stale.unlink(missing_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix="labkit-grade-all-"))
        started = time.monotonic()
        try:
            with open(report.with_suffix(".log"), "w") as log:
                process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=paths.REPO,
                                           env={**os.environ, "TMPDIR": str(scratch)})
                try:
                    code = process.wait(timeout=self.limit)
                except subprocess.TimeoutExpired:
                    _kill_tree(process)
                    code = None
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
            row.seconds = round(time.monotonic() - started, 1)
        if code is None:
            if submission.lab:
                dockerlab.cleanup(submission.lab, show=False)
            row.status, row.reason = TIMED_OUT, (f"not graded: still running after {self.limit:.0f} s, the time "
                                                 "limit for one notebook (a cell that never ends?); it was stopped")
            return row
        graded = _read_json(report)
        if code != 0 or "checks" not in graded:
            said = report.with_suffix(".log").read_text(errors="replace").strip().splitlines()
            row.status, row.reason = FAILED, (said[-1] if said else f"labkit grade exited with {code}")[:300]
            return row
        row.lab, row.status = graded["lab"], GRADED
        row.score, row.max_score, row.checks = graded["score"], graded["max_score"], graded["checks"]
        said = list(graded.get("notes", []))
        if errors := graded.get("errors"):
            said.append(f"{len(errors)} cell(s) raised errors, the first in cell {errors[0]['cell']}: "
                        f"{errors[0]['ename']}: {errors[0]['evalue']}")
        row.reason = "; ".join(said)[:500]
        if row.checks and all(c["message"].startswith("not graded:") for c in row.checks):
            row.status = NOT_GRADED  # unreadable, or another lab's notebook: the report says which
        return row


def _read_json(path: Path) -> dict:
    try:
        found = json.loads(path.read_text())
        return found if isinstance(found, dict) else {}
    except (OSError, ValueError):
        return {}


def _earlier(report: Path, fingerprint: str) -> Row | None:
    """The row an earlier run recorded for this very submission (a grader failure is tried again)."""
    earlier = _read_json(report).get("batch") or {}
    if earlier.get("fingerprint") != fingerprint or earlier.get("status") == FAILED:
        return None
    fields = {k: v for k, v in earlier.items() if k in Row.__dataclass_fields__}
    return Row(**{**fields, "reused": True})


def grade_all(folder: Path, out: Path, *, lab: str | None = None, jobs: int = 1, **options) -> list[Row]:
    """Grade every submission in ``folder`` (see :func:`discover`) into ``out``; the rows in order."""
    submissions = discover(folder, lab=lab)
    batch = Batch(out, lab=lab, **options)
    total, done = len(submissions), []

    def run(index: int) -> Row:
        row = batch.grade(submissions[index])
        done.append(index)
        score = f"{row.score}/{row.max_score}" if row.status == GRADED else row.status
        batch.show(f"[{len(done)}/{total}] {row.student} lab {row.lab or '?'}: {score}"
                   f"{' (unchanged: earlier report)' if row.reused else f' in {row.seconds:.0f} s'}"
                   f"{'  ' + row.reason if row.status != GRADED and row.reason else ''}")
        return row

    pool = LabPool(range(total), run, lab_of=lambda i: submissions[i].lab, workers=jobs)
    results = pool.wait()
    return [results[i] if isinstance(results[i], Row) else
            Row(submissions[i].student, submissions[i].lab, str(submissions[i].path), FAILED,
                reason=f"the batch failed on it: {type(results[i]).__name__}: {results[i]}"[:300])
            for i in range(total)]

