"""labkit grade, without running a kernel: what comes from the student, what from the solution,
and which outputs count."""

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from labkit import cells, grade, paths
from labkit.checks import MIME_TYPE


def _cell(source, id, **labkit):
    cell = new_code_cell(source, id=id)
    if labkit:
        cell.metadata["labkit"] = labkit
    return cell


def _solution():
    nb = new_notebook(cells=[
        new_markdown_cell("intro", id="intro"),
        _cell("X = 1", "parameters"),
        _cell("NAME = 'n'", "names", role="shared"),
        _cell("BASE = 10", "baseline", role="checker"),
        _cell("y = 0\n### BEGIN SOLUTION\ny = X + 1\n### END SOLUTION", "answer-a"),
        _cell("labkit.check('01.a', 2, lambda: y == 2, hint='h')", "check-a", check="01.a", points=2),
        _cell("demo = 'lab'", "demo"),
        _cell("### BEGIN SOLUTION\nz = 3\n### END SOLUTION", "answer-b"),
        _cell("labkit.check('01.b', 3, lambda: z == 3, hint='h')", "check-b", check="01.b", points=3),
        _cell("labkit.score_table()", "score"),
    ])
    nb.cells[1].metadata["tags"] = ["parameters"]
    nb.metadata["labkit"] = {"lab": "01"}
    return nb


def _record(check_id, passed, points=99):
    data = {"id": check_id, "points": points, "earned": points if passed else 0,
            "passed": passed, "skipped": False, "message": ""}
    return new_output("display_data", data={"text/plain": "x", MIME_TYPE: data})


def _ids(nb):
    return [c.id for c in nb.cells]


def test_only_answer_cells_and_added_cells_come_from_the_student():
    solution, student = _solution(), _solution()
    by_id = {c.id: c for c in student.cells}
    by_id["parameters"].source = "X = 99"                       # an edited parameter
    by_id["demo"].source = "demo = 'edited'"                    # an edited demo
    by_id["check-a"].source = "print('[PASS] 01.a 2/2')"        # an edited check
    by_id["answer-a"].source = "y = 2"                          # the student's answer
    student.cells.insert(6, _cell("helper = 1", "mine", role="checker", check="01.a", points=2))
    student.cells[6].metadata["tags"] = ["parameters"]
    prepared = grade.prepare(student, solution)
    got = {c.id: c for c in prepared.notebook.cells}
    assert _ids(prepared.notebook) == [*_ids(solution)[:6], "mine", *_ids(solution)[6:]]
    assert got["parameters"].source == "X = 1" and got["demo"].source == "demo = 'lab'"
    assert got["check-a"].source == solution.cells[5].source
    assert got["answer-a"].source == "y = 2"
    assert "labkit" not in got["mine"].metadata and got["mine"].metadata["tags"] == []
    assert prepared.roles["mine"] == cells.STUDENT          # a role is never the student's to claim
    assert prepared.roles == {"parameters": cells.SHARED, "names": cells.SHARED, "baseline": cells.CHECKER,
                              "answer-a": cells.STUDENT, "check-a": cells.CHECKER, "demo": cells.STUDENT,
                              "answer-b": cells.STUDENT, "check-b": cells.CHECKER, "score": cells.STUDENT,
                              "intro": cells.STUDENT, "mine": cells.STUDENT}
    assert prepared.notes == []


def test_deleted_reordered_and_duplicated_cells_change_nothing_but_a_missing_answer():
    solution, student = _solution(), _solution()
    student.cells = [c for c in student.cells if c.id not in ("check-a", "demo", "answer-b")]
    student.cells.reverse()                                  # reordered
    student.cells.append(_cell("dup", "answer-a"))           # a duplicated id: the first one counts
    prepared = grade.prepare(student, solution)
    assert _ids(prepared.notebook) == [i for i in _ids(solution) if i != "answer-b"]
    assert [n for n in prepared.notes if "answer-b" in n], prepared.notes


def test_a_notebook_whose_cells_are_not_the_labs_gets_a_note():
    student = new_notebook(cells=[_cell("y = 2", "other-1"), _cell("z = 3", "other-2")])
    prepared = grade.prepare(student, _solution())
    assert _ids(prepared.notebook)[:2] == ["other-1", "other-2"]  # kept, at the top
    assert any("copied into a new notebook" in n for n in prepared.notes)


def test_records_count_only_from_check_cells_and_points_come_from_the_solution():
    solution = _solution()
    executed = grade.prepare(solution, solution).notebook
    at = {c.id: i for i, c in enumerate(executed.cells)}
    executed.cells[at["check-a"]].outputs = [_record("01.a", True, points=1000)]
    executed.cells[at["demo"]].outputs = [_record("01.b", True), new_output(
        "error", ename="NotImplementedError", evalue="", traceback=[])]
    checks, errors = grade.collect(executed, solution)
    assert [(c["id"], c["earned"], c["points"]) for c in checks] == [("01.a", 2, 2), ("01.b", 0, 3)]
    assert checks[1]["message"].startswith("did not run") and "NotImplementedError" in checks[1]["message"]
    assert errors == [{"cell": at["demo"], "ename": "NotImplementedError", "evalue": ""}]


def test_a_record_with_another_id_or_a_skip_that_says_it_passed_earns_nothing():
    solution = _solution()
    executed = grade.prepare(solution, solution).notebook
    at = {c.id: i for i, c in enumerate(executed.cells)}
    executed.cells[at["check-a"]].outputs = [_record("01.b", True)]
    skipped = _record("01.b", True)
    skipped["data"][MIME_TYPE]["skipped"] = True
    executed.cells[at["check-b"]].outputs = [skipped]
    checks, _ = grade.collect(executed, solution)
    assert [(c["earned"], c["passed"], c["skipped"]) for c in checks] == [(0, False, False), (0, False, True)]


def test_report_totals_leave_skipped_checks_out():
    report = grade.Report("01", "nb.ipynb", checks=[
        {"id": "01.a", "points": 2, "earned": 2, "passed": True, "skipped": False, "message": ""},
        {"id": "01.g", "points": 5, "earned": 0, "passed": False, "skipped": True, "message": "NVML not found"},
    ], notes=["a note"])
    assert (report.score, report.max_score) == (2, 2)
    assert "| 01.g | skipped |" in report.markdown() and "> a note" in report.markdown()
    assert report.as_dict()["notes"] == ["a note"]


@pytest.mark.parametrize("text,value", [("3", 3), ("'a'", "a"), ("gcp", "gcp"), ("True", True)])
def test_parameter_values(text, value):
    assert grade.parse_value(text) == value


def test_grading_errors_are_clear(tmp_path):
    with pytest.raises(grade.GradingError, match="no such notebook"):
        grade.grade(tmp_path / "missing.ipynb")
    (tmp_path / "notes.ipynb").write_text("{not json")
    with pytest.raises(grade.GradingError, match="could not be read"):
        grade.grade(tmp_path / "notes.ipynb")
    nbformat.write(new_notebook(), tmp_path / "homework.ipynb")
    with pytest.raises(grade.GradingError, match="cannot tell which lab"):
        grade.grade(tmp_path / "homework.ipynb")
    nbformat.write(new_notebook(), tmp_path / "42_unknown.ipynb")
    with pytest.raises(grade.GradingError, match="no solution notebook for lab 42"):
        grade.grade(tmp_path / "42_unknown.ipynb")


def test_unreadable_and_wrong_lab_notebooks_get_a_zero_report_not_an_error(tmp_path):
    (tmp_path / "01_image_slimming.ipynb").write_text("{not json")
    report = grade.grade(tmp_path / "01_image_slimming.ipynb")
    assert report.lab == "01" and report.score == 0 and report.max_score > 0
    assert "could not be read" in report.notes[0] and all("not graded" in c["message"] for c in report.checks)
    other = grade.grade(paths.LABS / "02_compose_vs_kind.ipynb", lab="01")
    assert other.score == 0 and "lab 02's notebook, not lab 01's" in other.notes[0]


def test_no_engine_is_a_grading_error_not_a_zero(monkeypatch):
    import dataclasses

    from labkit import capabilities, probes

    absent = lambda: probes.Finding(reason="no Docker engine answers at unix:///nowhere")  # noqa: E731
    monkeypatch.setitem(capabilities.TABLE, "docker", dataclasses.replace(capabilities.TABLE["docker"], probe=absent))
    with pytest.raises(grade.GradingError, match="lab 01 cannot be graded on this machine: no Docker engine"):
        grade.grade(paths.LABS / "01_image_slimming.ipynb")


@pytest.mark.parametrize("lab", [p.name[:2] for p in paths.lab_notebooks(paths.SOLUTIONS)])
def test_every_check_cell_declares_what_it_calls(lab):
    """A check cell's metadata (what the grader counts) names the same id and points as its call."""
    solution = nbformat.read(paths.solution_for(lab), as_version=4)
    declared = [(cell.id, check_id, points) for _, check_id, points in cells.checks(solution)
                for cell in [solution.cells[_]]]
    assert declared, f"lab {lab} has no check cell"
    for cell_id, check_id, points in declared:
        cell = next(c for c in solution.cells if c.id == cell_id)
        assert cells.check_calls(cell) == [(check_id, points)], f"{cell_id}: metadata and call disagree"
        assert check_id.startswith(f"{lab}."), f"{check_id} does not carry the lab's number"
    undeclared = [c.id for c in solution.cells if cells.check_calls(c) and not cells.check_of(c)]
    assert not undeclared, f"check calls in cells without check metadata: {undeclared}"
    assert not [c.id for c in solution.cells if cells.is_answer(c) and cells.role(c) != cells.STUDENT], \
        "an answer cell must never run where the checks run"
    assert json.dumps(solution.metadata["labkit"]) and "requires" not in solution.metadata["labkit"]
