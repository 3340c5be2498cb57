"""What each cell of a solution notebook is, as the build and the grader read it.

- An **answer** cell holds a ``### BEGIN SOLUTION`` … ``### END SOLUTION`` region: the lab
  ships a stub there, and at grading the student's version of that cell is the one that runs.
  In a class release (``labkit release``) the pristine copies that stand in for the solutions
  have only the stub, so there the cell carries ``{"labkit": {"answer": true}}`` instead.
- A **check** cell carries ``{"labkit": {"check": "01.final-size", "points": 3}}`` in its
  metadata (as nbgrader keeps grade ids and points) and calls ``labkit.check`` with the same
  id and points. Its ``### BEGIN HIDDEN CHECKS`` … ``### END HIDDEN CHECKS`` region, if any,
  is left out of the lab and runs only when graded.
- A **shared** cell (``{"labkit": {"role": "shared"}}``, and the parameters cell) defines the
  names a lab's cells and its checks use; at grading it runs in both kernels.
- A **checker** cell (``{"labkit": {"role": "checker"}}``) measures a baseline or makes
  something the checks own (a fresh token); at grading it runs only where the checks run.
- Every other cell is the lab's own: at grading it runs as the solution has it, whatever the
  student's copy says.

Run by hand, every cell runs in the one kernel the student has; roles matter only to
``labkit grade``, which runs check and checker cells in a second kernel that never runs
student code.
"""

from __future__ import annotations

import ast
import re

_REGION = r"^[ \t]*(?:#|<!--)?[ \t]*### BEGIN {0}.*?^[ \t]*(?:#|<!--)?[ \t]*### END {0}[^\n]*\n?"
SOLUTION = re.compile(_REGION.format("SOLUTION"), re.M | re.S)
#: In a check cell: cases the student must not read (as nbgrader's hidden tests). The lab ships
#: the cell without them, so a check run by hand tests the visible cases only; graded, the
#: canonical cell runs whole.
HIDDEN = re.compile(_REGION.format("HIDDEN CHECKS"), re.M | re.S)

STUDENT, SHARED, CHECKER = "student", "shared", "checker"
_SHARED_TAGS = {"parameters", "injected-parameters"}  # papermill's: the instructor's -p values


def labkit_metadata(cell) -> dict:
    found = cell.get("metadata", {}).get("labkit") or {}
    return found if isinstance(found, dict) else {}


def check_of(cell) -> tuple[str, int] | None:
    """(check id, points) of a check cell, else None."""
    meta = labkit_metadata(cell)
    if cell.get("cell_type") != "code" or "check" not in meta:
        return None
    return str(meta["check"]), int(meta["points"])


def role(cell) -> str:
    """STUDENT, SHARED or CHECKER (check cells are CHECKER cells)."""
    if check_of(cell):
        return CHECKER
    declared = labkit_metadata(cell).get("role")
    if declared in (SHARED, CHECKER):
        return declared
    if _SHARED_TAGS & set(cell.get("metadata", {}).get("tags", [])):
        return SHARED
    return STUDENT


def is_answer(cell) -> bool:
    """Whether a solution cell (or a release's pristine cell) is one the student writes."""
    return labkit_metadata(cell).get("answer") is True or bool(SOLUTION.search(cell.get("source", "")))


def checks(nb) -> list[tuple[int, str, int]]:
    """(cell index, check id, points) of every check cell, in order."""
    return [(index, *found) for index, cell in enumerate(nb.cells) if (found := check_of(cell))]


def _check_nodes(cell) -> list[ast.Call]:
    """The ``check("id", points, ...)`` calls in a cell's source (read with ast)."""
    try:
        tree = ast.parse(cell.get("source", ""))
    except SyntaxError:
        return []
    return [node for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "check"
            and len(node.args) >= 2 and all(isinstance(a, ast.Constant) for a in node.args[:2])]


def check_calls(cell) -> list[tuple[str, int]]:
    """(id, points) of each ``check("id", points, ...)`` call in a cell's source (read with ast):
    the tests hold them equal to the cell's metadata."""
    return [(node.args[0].value, node.args[1].value) for node in _check_nodes(cell)]


def check_needs(cell) -> dict[str, tuple[str, ...]]:
    """The capabilities each ``check(...)`` call of a cell names in ``needs=``, by check id.
    Raises ValueError when ``needs`` is not written as a literal tuple (it could not be read
    without running the cell)."""
    found = {}
    for node in _check_nodes(cell):
        needs = next((k.value for k in node.keywords if k.arg == "needs"), None)
        try:
            value = ast.literal_eval(needs) if needs is not None else ()
        except ValueError:
            raise ValueError(f"check {node.args[0].value!r}: write needs= as a literal tuple of capability "
                             f"names, e.g. needs=(\"kind\", \"kubectl\")") from None
        found[node.args[0].value] = (value,) if isinstance(value, str) else tuple(value)
    return found
