"""labkit grade, without running a kernel: canonical check cells and record collection."""

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from labkit import grade
from labkit.checks import MIME_TYPE


def _solution():
    nb = new_notebook(cells=[
        new_markdown_cell("intro", id="intro"),
        new_code_cell("x = 1", id="work-a"),
        new_code_cell("labkit.check('01.a', 2, lambda: x == 1, hint='h')", id="check-a"),
        new_code_cell("y = 2", id="work-b"),
        new_code_cell("labkit.check('01.b', 3, lambda: y == 2, hint='h')", id="check-b"),
        new_code_cell("labkit.score_table()", id="score"),
    ])
    nb.metadata["labkit"] = {"lab": "01"}
    return nb


def _record(check_id, passed, points=99):
    data = {"id": check_id, "points": points, "earned": points if passed else 0,
            "passed": passed, "skipped": False, "message": ""}
    return new_output("display_data", data={"text/plain": "x", MIME_TYPE: data})


def _ids(nb):
    return [c.id for c in nb.cells]


def test_untouched_notebook_keeps_its_shape():
    solution = _solution()
    assert _ids(grade.prepare(solution, solution)) == _ids(solution)


def test_edited_check_cells_are_replaced_and_deleted_ones_reinserted():
    solution = _solution()
    student = _solution()
    student.cells[2].source = "print('[PASS] 01.a 2/2')"  # rewritten to print a pass
    del student.cells[4]  # check 01.b deleted
    student.cells.insert(1, new_code_cell("labkit.check('01.a', 2, lambda: True, hint='')", id="dup"))
    student.cells.append(new_code_cell("display(forged)", id="forger"))
    student.cells[-1].outputs = [_record("01.b", True)]
    prepared = grade.prepare(student, solution)
    assert _ids(prepared) == ["intro", "work-a", "check-a", "work-b", "check-b", "score"]
    assert prepared.cells[2].source == solution.cells[2].source


def test_checks_whose_exercise_was_deleted_go_where_the_solution_has_them():
    solution = _solution()
    student = _solution()
    student.cells = [c for c in student.cells if c.id not in {"work-a", "check-a", "work-b", "check-b"}]
    assert _ids(grade.prepare(student, solution)) == ["intro", "check-a", "check-b", "score"]


def test_records_count_only_from_canonical_cells_and_points_come_from_the_solution():
    solution = _solution()
    executed = grade.prepare(solution, solution)
    executed.cells[2].outputs = [_record("01.a", True, points=1000)]
    executed.cells[3].outputs = [_record("01.b", True), new_output(
        "error", ename="NotImplementedError", evalue="", traceback=[])]
    checks, errors = grade.collect(executed, solution)
    assert [(c["id"], c["earned"], c["points"]) for c in checks] == [("01.a", 2, 2), ("01.b", 0, 3)]
    assert checks[1]["message"].startswith("did not run")
    assert "NotImplementedError" in checks[1]["message"]
    assert errors == [{"cell": 3, "ename": "NotImplementedError", "evalue": ""}]


def test_report_totals_leave_skipped_checks_out():
    report = grade.Report("01", "nb.ipynb", checks=[
        {"id": "01.a", "points": 2, "earned": 2, "passed": True, "skipped": False, "message": ""},
        {"id": "01.g", "points": 5, "earned": 0, "passed": False, "skipped": True, "message": "NVML not found"},
    ])
    assert (report.score, report.max_score) == (2, 2)
    assert "| 01.g | skipped |" in report.markdown()


def test_a_solution_with_two_checks_in_one_cell_is_refused():
    solution = _solution()
    solution.cells[2].source += "\nlabkit.check('01.c', 1, f, hint='h')"
    with pytest.raises(grade.GradingError, match="one per cell"):
        grade.canonical_checks(solution)


@pytest.mark.parametrize("text,value", [("3", 3), ("'a'", "a"), ("gcp", "gcp"), ("True", True)])
def test_parameter_values(text, value):
    assert grade.parse_value(text) == value


def test_grading_errors_are_clear(tmp_path):
    with pytest.raises(grade.GradingError, match="no such notebook"):
        grade.grade(tmp_path / "missing.ipynb")
    (tmp_path / "notes.ipynb").write_text("{not json")
    with pytest.raises(grade.GradingError, match="not a readable notebook"):
        grade.grade(tmp_path / "notes.ipynb")
    nbformat.write(new_notebook(), tmp_path / "homework.ipynb")
    with pytest.raises(grade.GradingError, match="cannot tell which lab"):
        grade.grade(tmp_path / "homework.ipynb")
    nbformat.write(new_notebook(), tmp_path / "42_unknown.ipynb")
    with pytest.raises(grade.GradingError, match="no solution notebook for lab 42"):
        grade.grade(tmp_path / "42_unknown.ipynb")


def test_no_engine_is_a_grading_error_not_a_zero(monkeypatch):
    from labkit import paths

    monkeypatch.setitem(grade.NEEDS, "docker", lambda: "no Docker engine answers at unix:///nowhere")
    with pytest.raises(grade.GradingError, match="lab 01 needs docker: no Docker engine"):
        grade.grade(paths.LABS / "01_image_slimming.ipynb")
