"""Grading honesty, end to end: each lab's solution, unsolved lab and tampered lab are
graded for real (one run each, shared by the assertions), and nothing is left behind."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_output

from labkit import build, dockerlab, grade, paths, probes
from labkit.checks import MIME_TYPE

pytestmark = [pytest.mark.docker, pytest.mark.notebook,
              pytest.mark.skipif(bool(probes.docker_reason()), reason=str(probes.docker_reason()))]

LABS = [p.name[:2] for p in paths.lab_notebooks(paths.SOLUTIONS)]
# For the tampered run: the exercise cell the student really solves (if any), per lab, and the
# checks that answer honestly earns.
SOLVED_FOR_REAL = {
    "00": (None, []),
    "01": ("ignore-file", ["01.dockerignore"]),
    "02": ("k8s-deployment", ["02.manifests-valid", "02.selectors-match", "02.requests-probes",
                              "02.security-context", "02.no-latest"]),
    "03": ("compose-file", ["03.compose-run-secrets"]),
    "05": ("package", ["05.model-archive"]),
    "06": ("dockerfile", ["06.contract"]),
}
# A check may be skipped only with a reason a probe gives on this machine right now.
ABSENT = {reason for reason in (probes.kind_reason(), probes.gpu_reason(), probes.nvidia_toolkit_reason(),
                                probes.buildkit_reason(), probes.aws_credentials_reason(),
                                probes.gcp_credentials_reason()) if reason}


def _skipped_by_a_probe(check):
    return check["skipped"] and check["message"] in ABSENT


def _write(nb, tmp_path_factory, name):
    path = tmp_path_factory.mktemp("submissions") / name
    nbformat.write(nb, path)
    return path


def _solution_without_check_cells(lab):
    """The solution with every check cell deleted and one pasted again elsewhere."""
    solution = nbformat.read(paths.solution_for(lab), as_version=4)
    checks = [c for c in solution.cells if grade.check_ids(c)]
    nb = copy.deepcopy(solution)
    nb.cells = [c for c in nb.cells if not grade.check_ids(c)]
    duplicate = copy.deepcopy(checks[0])
    duplicate.id = "pasted-copy"
    nb.cells.insert(1, duplicate)
    assert [c.id for c in grade.prepare(nb, solution).cells] == [c.id for c in solution.cells]
    return nb


def _tampered_lab(lab):
    """The unsolved lab with one exercise solved for real, every check cell rewritten to
    claim a pass, one check deleted, one duplicated, and a cell that forges a record."""
    solution = nbformat.read(paths.solution_for(lab), as_version=4)
    nb = nbformat.read(paths.LABS / paths.solution_for(lab).name, as_version=4)
    solved_cell, _ = SOLVED_FOR_REAL[lab]
    by_id = {c.id: c for c in solution.cells}
    originals = [c for c in nb.cells if grade.check_ids(c)]
    duplicate = copy.deepcopy(originals[0])
    duplicate.id = "dup"
    cells = []
    for cell in nb.cells:
        if cell.id == solved_cell:
            cell = copy.deepcopy(by_id[solved_cell])  # the student's own correct answer
        if cell is originals[-1]:
            continue  # deleted
        ids = grade.check_ids(cell)
        if ids:  # rewritten to claim a pass: in place with a forged saved output, or as a new cell
            points = grade._points(cell)
            record = {"id": ids[0], "points": points, "earned": points, "passed": True,
                      "skipped": False, "message": ""}
            cell.source = f"print('[PASS] {ids[0]} {points}/{points}')\ndisplay({{{MIME_TYPE!r}: {record!r}}}, raw=True)"
            if len(cells) % 2:
                cell.id = f"pasted-{ids[0].replace('.', '-')}"
            else:
                cell.outputs = [new_output("display_data", data={MIME_TYPE: record})]
        cells.append(cell)
    cells.insert(2, duplicate)
    forged = [{"id": i, "points": 99, "earned": 99, "passed": True, "skipped": False, "message": ""}
              for i in (grade.check_ids(c)[0] for c in solution.cells if grade.check_ids(c))]
    cells.append(new_code_cell(
        "from IPython.display import display\n"
        + "".join(f"display({{{MIME_TYPE!r}: {r!r}, 'text/plain': 'PASS'}}, raw=True)\n" for r in forged),
        id="forger"))
    nb.cells = cells
    return nb


@pytest.fixture(scope="session")
def reports(tmp_path_factory):
    """Grade lazily, once per (lab, variant), and share the report."""
    cache = {}

    def get(lab, variant):
        if (lab, variant) not in cache:
            name = paths.solution_for(lab).name
            if variant == "solution":
                path = _write(_solution_without_check_cells(lab), tmp_path_factory, name)
            elif variant == "unsolved":
                path = paths.LABS / name
            else:
                path = _write(_tampered_lab(lab), tmp_path_factory, name)
            cache[lab, variant] = grade.grade(path, timeout=900)
        return cache[lab, variant]

    return get


@pytest.mark.parametrize("lab", LABS)
def test_solution_scores_full_marks_even_with_its_check_cells_deleted(reports, lab):
    report = reports(lab, "solution")
    failed = [c for c in report.checks if not c["passed"] and not c["skipped"]]
    assert not failed, json.dumps(failed, indent=1)
    assert report.score == report.max_score > 0
    wrongly_skipped = [c for c in report.checks if c["skipped"] and not _skipped_by_a_probe(c)]
    assert not wrongly_skipped, json.dumps(wrongly_skipped, indent=1)


@pytest.mark.parametrize("lab", LABS)
def test_unsolved_lab_fails_every_check(reports, lab):
    report = reports(lab, "unsolved")
    graded = [c for c in report.checks if not _skipped_by_a_probe(c)]
    assert graded and all(not c["passed"] and not c["skipped"] for c in graded), \
        json.dumps(report.checks, indent=1)
    assert report.score == 0
    assert report.errors, "the unsolved lab's stubs should raise"
    lab_file = paths.LABS / paths.solution_for(lab).name
    assert lab_file.read_text() == build.render(paths.solution_for(lab)), "grading modified the notebook"


@pytest.mark.parametrize("lab", LABS)
def test_tampered_lab_earns_only_what_it_solved(reports, lab):
    report = reports(lab, "tampered")
    _, earned = SOLVED_FOR_REAL[lab]
    passed = [c["id"] for c in report.checks if c["passed"]]
    assert passed == earned, json.dumps(report.checks, indent=1)
    assert report.score == sum(c["points"] for c in report.checks if c["id"] in earned)


def test_hangs_and_syntax_errors_cost_only_their_own_cells(tmp_path):
    """A student cell that never ends is interrupted at the per-cell timeout and one with a
    syntax error fails alone: grading goes on and scores what the rest of the notebook did."""
    nb = nbformat.read(paths.solution_for("00"), as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if c.id == "start") + 1
    nb.cells[at:at] = [new_code_cell("while True:\n    pass", id="spin"),
                       new_code_cell("def broken(:\n    pass", id="typo")]
    path = tmp_path / "00_setup.ipynb"
    nbformat.write(nb, path)
    report = grade.grade(path, timeout=20)
    assert report.score == report.max_score > 0, json.dumps(report.checks, indent=1)
    names = {e["ename"] for e in report.errors}
    assert "SyntaxError" in names and names & {"KeyboardInterrupt", "CellTimeoutError", "TimeoutError"}, names


def test_nothing_is_left_behind(reports):
    """Runs after the grading tests in this module: the labs and the grader cleaned up."""
    client = dockerlab.client()
    label = {"label": dockerlab.LABEL}
    left = (client.containers.list(all=True, filters=label) + client.networks.list(filters=label)
            + client.volumes.list(filters=label))
    assert not left, f"left behind: {left}"
    servers = [cmd for cmd in _command_lines() if "moto.server" in cmd or "vertex/standin.py" in cmd]
    assert not servers, f"emulators still running: {servers}"


def _command_lines() -> list[str]:
    """Every process's command line (Linux /proc; elsewhere nothing)."""
    lines = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            lines.append(cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:  # the process ended while we looked
            pass
    return lines
