"""A lab's names, set-up and teardown, shared by every notebook.

``Lab("01")`` only names things: the scratch folder ``work/01`` next to the notebook, the
image tags, the files the lab ships. It creates nothing, so the checks can use the same
names (the grader runs the cell that makes it in the checks' kernel too). ``lab.start()``
(or ``labkit.start("01")``) checks what the lab needs (with a message that says what to do),
makes the scratch folder, removes what an earlier run left and registers the cleanup to run
when the kernel exits, so an interrupted lab leaves nothing behind.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from ..core import paths
from ..machine import capabilities
from ..tools import dockerlab
from . import syllabus

#: What ``copy_app`` leaves out of the sample app: caches, and the answers of lab 01.
APP_IGNORE = ("__pycache__", ".pytest_cache", "*.pyc", ".dockerignore", "Dockerfile*")


class LabSetupError(RuntimeError):
    pass


@dataclass
class Lab:
    number: str
    workspace: Path = field(default=None)  # type: ignore[assignment]  # default: work/<number> here

    def __post_init__(self) -> None:
        self.workspace = Path(self.workspace or Path.cwd() / "work" / self.number).resolve()

    def tag(self, name: str, version: str = "v1") -> str:
        """A pinned image tag for this lab, e.g. ``labkit/01-final:v1``."""
        return f"{dockerlab.IMAGE_PREFIX}{self.number}-{name}:{version}"

    def start(self) -> Lab:
        """Check what the lab needs, make its scratch folder, clear what an earlier run left."""
        problems = [why for need in syllabus.needs(self.number).requires if (why := capabilities.reason(need))]
        if problems:
            raise LabSetupError("this lab cannot start yet:\n- " + "\n- ".join(dict.fromkeys(problems)))
        self.workspace.mkdir(parents=True, exist_ok=True)
        dockerlab.cleanup(self.number, show=False)
        dockerlab.prune_stale_images(self.number)
        atexit.register(dockerlab.cleanup, self.number, show=False)
        print(f"lab {self.number} ready; scratch folder: {self.workspace}")
        return self

    def copy_app(self, name: str = "app") -> Path:
        """A fresh copy of the sample app in the workspace, as a git repository, the way
        a project folder looks on a developer's machine (.git, tests, data)."""
        target = self.workspace / name
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(paths.APP, target, ignore=shutil.ignore_patterns(*APP_IGNORE))
        git = ["git", "-c", "user.name=student", "-c", "user.email=student@example.com",
               "-c", "init.defaultBranch=main"]
        subprocess.run([*git, "init", "-q"], cwd=target, check=True)
        subprocess.run([*git, "add", "-A"], cwd=target, check=True)
        subprocess.run([*git, "commit", "-q", "-m", "sample app"], cwd=target, check=True)
        return target

    def shipped_file(self, cell_id: str) -> str:
        """The file a ``%%writefile`` cell of this lab writes, as the lab ships it (from the
        solution notebook, not from the student's copy): what a check builds a reference from."""
        from .build import written_text

        return written_text(solution_notebook(self.number), cell_id)

    def reference_image(self, cell_id: str, name: str, *, app: bool = False):
        """The image the lab's own Dockerfile (``%%writefile`` cell ``cell_id``, as shipped) builds,
        tagged ``labkit/<lab>-<name>:v1``; with ``app``, in a fresh copy of the sample app. Checks
        compare a student's image with it, so no edit of a notebook cell can move the reference."""
        return dockerlab.canonical_build(self.shipped_file(cell_id), self.tag(name), lab=self.number,
                                         context_from=paths.APP if app else None, ignore=APP_IGNORE)

    def cleanup(self) -> None:
        dockerlab.cleanup(self.number)


@functools.cache
def solution_notebook(number: str) -> nbformat.NotebookNode:
    """The lab's solution, read once per process (the grader reads it in the checks' kernel
    before any student code runs, so a later change on disk does not reach the checks)."""
    return nbformat.read(paths.solution_for(number), as_version=4)


def start(number: str, *, workspace: str | Path | None = None) -> Lab:
    """``Lab(number).start()``: what lab notebooks call first."""
    return Lab(number, workspace).start()
