"""``labkit release OUT``: the repository a graded class gets, without the answers.

A class must not clone what it is graded against: solutions/, tests/, and the answers that
environments/ keeps for later labs (:mod:`labkit.course.references`). The release holds the labs
as built from solutions/, the package, the starting files of environments/, the FAQ map and the
glossary of docs/, a student README, Makefile and .gitignore (the templates in
environments/release/), GitHub Classroom's autograding workflow (:mod:`labkit.course.classroom`),
and pristine copies of the labs, answer cells marked, in ``.labkit/pristine/``: there they stand
in for solutions/, so that ``make grade`` checks a notebook against the checks the lab shows. The
instructor's own grading adds the hidden ones.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import nbformat

from ..core import paths
from ..core.errors import LabkitError
from . import cells, classroom
from .build import student_notebook
from .references import REFERENCES, WITHHELD

#: The student's README, Makefile and .gitignore, which the release writes at its root (and
#: leaves out of its environments/).
TEMPLATES = paths.ENVIRONMENTS / "release"
#: What the release copies from the repository (its files that git tracks or would add).
SHIPPED = ("labkit/", "environments/", "pyproject.toml", "environment.yml", "docs/faq.md", "docs/glossary.md")
LEFT_OUT = {str(TEMPLATES.relative_to(paths.REPO)) + "/", *(r.path for r in REFERENCES), *WITHHELD}


class ReleaseError(LabkitError, RuntimeError):
    """The release cannot be written where it was asked; the message says why."""


def release(out: Path, *, force: bool = False) -> Path:
    """Write the class repository to ``out`` (replacing it with ``force``); returns its path."""
    if paths.is_release():
        raise ReleaseError(f"{paths.REPO} is itself a class release (it has no solutions/): "
                           "release from the instructor's repository")
    out = _fresh_folder(Path(out).resolve(), force)
    for name in _shipped_files():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(paths.REPO / name, out / name)
    _write_labs(out)
    _drop_extras_not_shipped(out)
    shutil.copy2(TEMPLATES / "README.md", out / "README.md")
    shutil.copy2(TEMPLATES / "Makefile", out / "Makefile")
    (out / ".gitignore").write_text((TEMPLATES / "gitignore").read_text()
                                    + "# written from your own answers when a lab that uses them starts\n"
                                    + "".join(f"/{r.path}\n" for r in REFERENCES if r.used_by))
    classroom.write_workflows(out)
    return out


def _fresh_folder(out: Path, force: bool) -> Path:
    if paths.REPO.is_relative_to(out) or any(out.is_relative_to(paths.REPO / p) for p in SHIPPED):
        raise ReleaseError(f"{out} holds (or is inside) what the release copies: choose a folder outside "
                           f"{paths.REPO} (or in it, outside labkit/ and environments/)")
    if out.exists() and not (out.is_dir() and not any(out.iterdir())):
        if not (force and out.is_dir()):
            raise ReleaseError(f"{out} exists and is not an empty folder: choose another, or pass --force to "
                               "replace a folder")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _shipped_files() -> list[str]:
    """The repository's files a class gets as they are: those git has or would add (so no caches,
    scratch folders or virtual environments), less the answers and the templates."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *SHIPPED],
                                cwd=paths.REPO, capture_output=True, text=True, check=True).stdout.split("\0")
    except (OSError, subprocess.CalledProcessError) as exc:
        raise ReleaseError(f"{paths.REPO} is not a git clone that git can read (the release copies the files git "
                           f"tracks, so no caches or scratch folders get in): {exc}") from None
    return sorted(name for name in listed if name and (paths.REPO / name).is_file()
                  and not any(name == left or left.endswith("/") and name.startswith(left) for left in LEFT_OUT))


def _write_labs(out: Path) -> None:
    """labs/ built afresh from solutions/, and the read-only pristine copies that stand in for them."""
    pristine = out / paths.PRISTINE.relative_to(paths.REPO)
    for folder in (out / "labs", pristine):
        folder.mkdir(parents=True, exist_ok=True)
    for path in paths.lab_notebooks(paths.SOLUTIONS):
        solution = nbformat.read(path, as_version=4)
        lab = student_notebook(solution)
        (out / "labs" / path.name).write_text(nbformat.writes(lab) + "\n")
        for built, original in zip(lab.cells, solution.cells):
            if cells.is_answer(original):
                built.metadata.setdefault("labkit", {})["answer"] = True
        (pristine / path.name).write_text(nbformat.writes(lab) + "\n")
        os.chmod(pristine / path.name, 0o444)


def _drop_extras_not_shipped(out: Path) -> None:
    """Leave out of pyproject.toml (and environment.yml) the optional dependencies whose
    requirement files the release does not have (the test tools')."""
    import tomllib  # Python 3.11+: only the instructor's machine writes releases

    pyproject = (out / "pyproject.toml").read_text()
    extras = tomllib.loads(pyproject)["tool"]["setuptools"]["dynamic"]["optional-dependencies"]
    dropped = [name for name, spec in extras.items() if not all((out / f).is_file() for f in spec["file"])]
    for name in dropped:
        pyproject = re.sub(rf"(?m)^{re.escape(name)} = \{{ file = .*\n", "", pyproject)
        environment = re.sub(rf"(?<=[\[,]){re.escape(name)},|,{re.escape(name)}(?=\])",
                             "", (out / "environment.yml").read_text())
        (out / "environment.yml").write_text(environment)
    left = tomllib.loads(pyproject)["tool"]["setuptools"]["dynamic"]["optional-dependencies"]
    if set(left) != set(extras) - set(dropped):
        raise ReleaseError(f"could not leave the extras {dropped} out of pyproject.toml: edit its "
                           "[tool.setuptools.dynamic.optional-dependencies] to one line per extra")
    (out / "pyproject.toml").write_text(pyproject)
