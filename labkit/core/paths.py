"""Where things live: the repository, the labs, and a lab's scratch workspace."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import LabkitError

if TYPE_CHECKING:
    import nbformat

REPO = Path(__file__).resolve().parents[2]
SOLUTIONS = REPO / "solutions"
LABS = REPO / "labs"
ENVIRONMENTS = REPO / "environments"
APP = ENVIRONMENTS / "app"
#: A class release (``labkit release``) has no solutions/: the lab notebooks as built, answer
#: cells marked, stand in for them here, out of the student's way.
PRISTINE = REPO / ".labkit" / "pristine"

_LAB_FILE = re.compile(r"^(\d\d)_[a-z0-9_]+\.ipynb$")


class LabNotFound(LabkitError, LookupError):
    """No lab of that number, or a notebook that names no lab."""


def lab_of(path: Path, nb: nbformat.NotebookNode | None = None) -> str:
    """The lab number ("01") of a notebook: its metadata first, else its file name."""
    if nb is None:
        import nbformat  # here, not at the top: importing it costs a lab's kernel a second (its jsonschema)

        nb = nbformat.read(path, as_version=4)
    lab = nb.metadata.get("labkit", {}).get("lab")
    return str(lab) if lab else lab_from_name(path)


def lab_from_name(path: Path) -> str:
    """The lab number a notebook's file name starts with (``01_image_slimming.ipynb``)."""
    match = _LAB_FILE.match(Path(path).name) or re.match(r"^(\d\d)[_-]", Path(path).name)
    if match:
        return match.group(1)
    raise LabNotFound(
        f"cannot tell which lab {path} is: it has no labkit metadata and its name does not "
        "start with the lab number (e.g. 01_image_slimming.ipynb)")


def is_release() -> bool:
    """Whether this is a class release: a repository without solutions/."""
    return not SOLUTIONS.is_dir()


def solution_for(lab: str) -> Path:
    """The solution notebook of a lab (in a class release, its pristine copy)."""
    return _notebook(lab, PRISTINE if is_release() else SOLUTIONS, "solution notebook")


def lab_notebook(lab: str) -> Path:
    """The student's notebook of a lab, in labs/."""
    return _notebook(lab, LABS, "notebook")


def _notebook(lab: str, folder: Path, what: str) -> Path:
    found = sorted(folder.glob(f"{lab}_*.ipynb"))
    if not found:
        raise LabNotFound(f"no {what} for lab {lab} in {folder}")
    return found[0]


def lab_notebooks(folder: Path = SOLUTIONS) -> list[Path]:
    return sorted(p for p in folder.glob("*.ipynb") if _LAB_FILE.match(p.name))
