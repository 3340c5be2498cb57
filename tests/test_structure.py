"""Every solution has the labs' anatomy: Overview (with Time and Cost) → Parameters → the shared
``names`` cell → Setup (``lab.start``) → sections, each an exercise with a check after it →
Cleanup → Score. A new lab in solutions/ is held to it as soon as it exists."""

from __future__ import annotations

import ast
import re

import nbformat
import pytest

from labkit import cells, paths
from labkit.course.lab import TARGETS

SOLUTIONS = paths.lab_notebooks(paths.SOLUTIONS)


@pytest.fixture(params=SOLUTIONS, ids=lambda p: p.stem)
def solution(request):
    return request.param.name[:2], nbformat.read(request.param, as_version=4)


def _index(nb, cell_id: str) -> int:
    found = [i for i, c in enumerate(nb.cells) if c.get("id") == cell_id]
    assert found, f"no cell {cell_id!r}"
    return found[0]


def _code_calling(nb, call: str) -> list[int]:
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and call in c.source]


def test_the_overview_comes_first_with_time_and_cost(solution):
    _, nb = solution
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.get("id") == "overview"
    for row in ("Time", "Cost"):
        assert re.search(rf"^\| {row} \|", first.source, re.M), f"the overview has no {row} row"


def test_parameters_then_the_names_cell(solution):
    _, nb = solution
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{len(tagged)} cells are tagged parameters"
    names = nb.cells[tagged[0] + 1]
    assert names.get("id") == "names" and cells.role(names) == cells.SHARED, \
        "the shared `names` cell must come right after the parameters"


def test_target_is_one_of_the_vocabulary_and_checked_by_the_lab(solution):
    number, nb = solution
    parameters = nb.cells[_index(nb, "parameters")]
    assigned = {n.targets[0].id: n.value for n in ast.parse(parameters.source).body
                if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name)}
    assert "TARGET" in assigned, "the parameters cell sets no TARGET"
    assert "# where this lab runs (labkit.lab.TARGETS): " in parameters.source, \
        "document TARGET's choices as every lab does: `# where this lab runs (labkit.lab.TARGETS): …`"
    made = [n for n in ast.walk(ast.parse(nb.cells[_index(nb, "names")].source)) if isinstance(n, ast.Call)
            and getattr(n.func, "attr", None) == "Lab"]
    assert len(made) == 1, "the names cell makes one labkit.Lab"
    keywords = {k.arg: k.value for k in made[0].keywords}
    assert ast.literal_eval(made[0].args[0]) == number, "the Lab's number is not the notebook's"
    assert getattr(keywords.get("target"), "id", None) == "TARGET", "pass target=TARGET to labkit.Lab"
    takes = ast.literal_eval(keywords["targets"]) if "targets" in keywords else ("local",)
    assert set(takes) <= set(TARGETS) and ast.literal_eval(assigned["TARGET"]) in takes
    for target in takes:
        assert f'"{target}"' in parameters.source, f"the parameters cell does not document {target!r}"


def test_setup_starts_the_lab_after_the_names(solution):
    _, nb = solution
    starts = _code_calling(nb, "lab.start(")
    assert starts and starts[0] > _index(nb, "names"), "a set-up cell after `names` calls lab.start()"


def test_each_exercise_has_a_check_after_it(solution):
    _, nb = solution
    answers = [i for i, c in enumerate(nb.cells) if cells.is_answer(c)]
    checks = [i for i, _, _ in cells.checks(nb)]
    assert answers and checks, "a lab has exercises and checks"
    start = _code_calling(nb, "lab.start(")[0]
    assert min(answers) > start and min(checks) > start, "exercises and checks come after the set-up"
    unchecked = [nb.cells[i].id for i in answers if not any(j > i for j in checks)]
    assert not unchecked, f"exercises with no check after them: {unchecked}"


def test_cleanup_then_score_last(solution):
    _, nb = solution
    cleanup = nb.cells[_index(nb, "cleanup")]
    assert "lab.cleanup()" in cleanup.source, "the cleanup cell calls lab.cleanup()"
    assert _index(nb, "cleanup") > max(i for i, c in enumerate(nb.cells) if cells.is_answer(c))
    last = nb.cells[-1]
    assert last.cell_type == "code" and "labkit.score_table(" in last.source, "the last cell shows the score"


def test_check_ids_are_the_labs_unique_and_match_their_calls(solution):
    number, nb = solution
    found = cells.checks(nb)
    ids = [check_id for _, check_id, _ in found]
    assert len(ids) == len(set(ids)), f"check ids repeat: {sorted(i for i in ids if ids.count(i) > 1)}"
    for index, check_id, points in found:
        assert check_id.startswith(f"{number}."), f"{check_id} is not named after lab {number}"
        assert cells.check_calls(nb.cells[index]) == [(check_id, points)], \
            f"cell {nb.cells[index].id}: its labkit.check call is not {check_id!r}, {points} as its metadata"
