"""``labkit build``: write labs/ from solutions/ with nbgrader-style markers.

In a solution notebook, code between ``### BEGIN SOLUTION`` and ``### END SOLUTION``
becomes a stub for the student, and a check cell's ``### BEGIN HIDDEN CHECKS`` region is left
out (see :mod:`labkit.cells` for what each cell is). Outputs
and execution counts are cleared and cell ids and metadata kept, so the transform is
reproducible and the grader can match cells between a lab and its solution.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import TYPE_CHECKING

from ..core import paths
from ..core.errors import LabkitError
from .cells import HIDDEN, SOLUTION, check_of

if TYPE_CHECKING:
    # The functions that read or write notebooks import nbformat themselves: a check that calls
    # written_text in a lab's kernel spares that kernel the import (see lab.Notebook).
    import nbformat

CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()\n"
FILE_STUB = "# YOUR CODE HERE\n"  # a cell that writes a file (%%writefile): a comment, not Python
MARKDOWN_STUB = "YOUR ANSWER HERE\n"


def _indent_of(match: re.Match) -> str:
    return re.match(r"[ \t]*", match.group(0)).group(0)


def strip_cell(cell: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The student's version of one solution cell."""
    cell = copy.deepcopy(cell)
    source = cell.source
    if cell.cell_type == "code":
        stub = FILE_STUB if source.startswith("%%") else CODE_STUB
        if check_of(cell):
            source = HIDDEN.sub("", source)
        source = SOLUTION.sub(lambda m: "".join(_indent_of(m) + line + "\n"
                                                for line in stub.splitlines()), source)
        cell.outputs = []
        cell.execution_count = None
    else:
        source = SOLUTION.sub(MARKDOWN_STUB, source)
    cell.source = source.rstrip("\n")
    cell.metadata.pop("execution", None)
    return cell


def written_file(notebook: Path, cell_id: str) -> str:
    """The file a solution's ``%%writefile`` cell writes, without its markers: one source
    for the notebook, the benchmark and the reference files that later labs use."""
    import nbformat

    return written_text(nbformat.read(notebook, as_version=4), cell_id)


def written_text(nb: nbformat.NotebookNode, cell_id: str) -> str:
    """:func:`written_file` for a notebook already read."""
    cell = next(c for c in nb.cells if c.get("id") == cell_id)
    body = cell.source.split("\n", 1)[1] if cell.source.startswith("%%writefile") else cell.source
    return "".join(line + "\n" for line in body.splitlines() if "### BEGIN" not in line and "### END" not in line)


def student_notebook(solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb = copy.deepcopy(solution)
    nb.cells = [strip_cell(c) for c in solution.cells]
    return nb


def render(solution_path: Path) -> str:
    import nbformat

    nb = nbformat.read(solution_path, as_version=4)
    return nbformat.writes(student_notebook(nb)) + "\n"


class HasStudentWork(LabkitError, RuntimeError):
    """A lab notebook has been run (it has outputs): rebuilding would lose that work."""


def has_student_work(path: Path) -> bool:
    import nbformat

    nb = nbformat.read(path, as_version=4)
    return any(c.cell_type == "code" and (c.outputs or c.execution_count) for c in nb.cells)


def build(check_only: bool = False, force: bool = False, solutions: Path = paths.SOLUTIONS,
          labs: Path = paths.LABS) -> list[Path]:
    """Write (or, with ``check_only``, compare) every lab; returns the stale ones.

    A lab notebook that has outputs holds a student's work: it is never overwritten
    unless ``force`` is given, nor reported as stale.
    """
    stale = []
    for solution in paths.lab_notebooks(solutions):
        target = labs / solution.name
        text = render(solution)
        if not target.exists() or target.read_text() != text:
            worked_on = target.exists() and not force and has_student_work(target)
            if check_only:
                if not worked_on:  # a notebook with outputs is a student's, not a stale build
                    stale.append(target)
                continue
            stale.append(target)
            if worked_on:
                raise HasStudentWork(
                    f"{target} has outputs, so it holds someone's work: it was not overwritten. "
                    "Copy it elsewhere (or clear its outputs) and build again, or pass --force.")
            labs.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
    return stale
