"""labkit build: markers, reproducibility, protection of student work."""

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from labkit import build, paths


def _solution(tmp_path):
    nb = new_notebook(cells=[
        new_markdown_cell("Explain.\n<!-- ### BEGIN SOLUTION -->\nthe answer\n<!-- ### END SOLUTION -->"),
        new_code_cell("x = 1\n### BEGIN SOLUTION\ny = x + 1\n### END SOLUTION\nprint(y)"),
        new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 2\n    ### END SOLUTION"),
        new_code_cell("%%writefile Dockerfile\n### BEGIN SOLUTION\nFROM python:3.11-slim\n### END SOLUTION"),
        new_code_cell("check('01.a', 1, t, hint='h')", metadata={"labkit": {"check": "01.a", "points": 1}}),
        new_code_cell("def t():\n    assert f() == 2\n    ### BEGIN HIDDEN CHECKS\n    assert f() != 3\n"
                      "    ### END HIDDEN CHECKS\ncheck('01.b', 1, t)", metadata={"labkit": {"check": "01.b", "points": 1}}),
        new_code_cell("# a note on ### BEGIN HIDDEN CHECKS\n### BEGIN HIDDEN CHECKS\nkept = 1\n### END HIDDEN CHECKS"),
    ])
    nb.metadata["labkit"] = {"lab": "01"}
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="2\n")]
    nb.cells[1].execution_count = 3
    (tmp_path / "solutions").mkdir()
    nbformat.write(nb, tmp_path / "solutions" / "01_demo.ipynb")
    return tmp_path / "solutions", tmp_path / "labs"


def test_markers_become_stubs_and_other_cells_stay_as_they_are(tmp_path):
    solutions, labs = _solution(tmp_path)
    assert build.build(solutions=solutions, labs=labs) == [labs / "01_demo.ipynb"]
    cells = nbformat.read(labs / "01_demo.ipynb", as_version=4).cells
    assert "the answer" not in cells[0].source and "YOUR ANSWER HERE" in cells[0].source
    assert cells[1].source == "x = 1\n# YOUR CODE HERE\nraise NotImplementedError()\nprint(y)"
    assert cells[1].outputs == [] and cells[1].execution_count is None
    assert cells[2].source == "def f():\n    # YOUR CODE HERE\n    raise NotImplementedError()"
    assert cells[3].source == "%%writefile Dockerfile\n# YOUR CODE HERE"
    assert cells[4].source == "check('01.a', 1, t, hint='h')" and cells[4].metadata["labkit"]["check"] == "01.a"
    assert cells[5].source == "def t():\n    assert f() == 2\ncheck('01.b', 1, t)", "hidden cases are left out"
    assert "kept = 1" in cells[6].source, "only a check cell has hidden cases"
    src = nbformat.read(solutions / "01_demo.ipynb", as_version=4)
    assert [c.id for c in src.cells] == [c.id for c in cells], "cell ids are kept"


def test_build_is_reproducible_and_check_finds_staleness(tmp_path):
    solutions, labs = _solution(tmp_path)
    build.build(solutions=solutions, labs=labs)
    first = (labs / "01_demo.ipynb").read_bytes()
    assert build.build(check_only=True, solutions=solutions, labs=labs) == []
    build.build(solutions=solutions, labs=labs)
    assert (labs / "01_demo.ipynb").read_bytes() == first
    nb = nbformat.read(solutions / "01_demo.ipynb", as_version=4)
    nb.cells[0].source += "\nmore"
    nbformat.write(nb, solutions / "01_demo.ipynb")
    assert build.build(check_only=True, solutions=solutions, labs=labs) == [labs / "01_demo.ipynb"]


def test_a_lab_with_student_work_is_never_overwritten(tmp_path):
    solutions, labs = _solution(tmp_path)
    build.build(solutions=solutions, labs=labs)
    lab = nbformat.read(labs / "01_demo.ipynb", as_version=4)
    lab.cells[1].source, lab.cells[1].execution_count = "y = 2", 1
    nbformat.write(lab, labs / "01_demo.ipynb")
    before = (labs / "01_demo.ipynb").read_text()
    nb = nbformat.read(solutions / "01_demo.ipynb", as_version=4)
    nb.cells[0].source += "\nchanged"
    nbformat.write(nb, solutions / "01_demo.ipynb")
    assert build.build(check_only=True, solutions=solutions, labs=labs) == []
    with pytest.raises(build.HasStudentWork):
        build.build(solutions=solutions, labs=labs)
    assert (labs / "01_demo.ipynb").read_text() == before
    build.build(force=True, solutions=solutions, labs=labs)
    assert (labs / "01_demo.ipynb").read_text() != before


def test_repository_labs_are_in_sync_and_outputs_free():
    assert build.build(check_only=True) == []
    for folder in (paths.SOLUTIONS, paths.LABS):
        for path in paths.lab_notebooks(folder):
            nb = nbformat.read(path, as_version=4)
            assert not any(c.get("outputs") for c in nb.cells), f"{path} has saved outputs"
