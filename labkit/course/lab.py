"""A lab's names, set-up and teardown, shared by every notebook.

``Lab("01")`` only names things: the scratch folder ``work/01`` next to the notebook, the
image tags, the files the lab ships, where it runs (its ``TARGET``, one of :data:`TARGETS`).
It creates nothing, so the checks can use the same names (the grader runs the cell that makes
it in the checks' kernel too). ``lab.start()`` (or ``labkit.start("01")``) checks what the lab
needs (with a message that says what to do), makes the scratch folder, removes what an earlier
run left and registers the cleanup to run when the kernel exits, so an interrupted lab leaves
nothing behind. ``lab.build``, ``lab.checked_build``, ``lab.run``, ``lab.running`` and
``lab.run_output`` are :mod:`labkit.dockerlab`'s, with what they make labelled as this lab's.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from ..core import background, labels, paths
from ..core.errors import LabkitError
from ..machine import capabilities
from ..tools import dockerlab, masked
from . import cells, syllabus

#: What ``copy_app`` leaves out of the sample app: caches, and the answers of lab 01.
APP_IGNORE = ("__pycache__", ".pytest_cache", "*.pyc", ".dockerignore", "Dockerfile*")


#: Where a lab runs: every lab's ``TARGET`` parameter is one of these.
TARGETS = {
    "local": "this machine only, $0: Docker, the tools `labkit doctor` finds, local emulators where the lab uses one",
    "emulator": "the cloud platform the lab deploys to, played on this machine by a stand-in of its API "
                "(moto, the Vertex stand-in), $0",
    "aws": "your AWS account: costs money; needs credentials and CONFIRM_SPEND = True",
    "gcp": "your Google Cloud project: costs money; needs credentials and CONFIRM_SPEND = True",
}


class LabSetupError(LabkitError, RuntimeError):
    """The lab cannot start here as it is (a missing tool, a TARGET it does not take); the message says why."""


@dataclass
class Lab:
    number: str
    workspace: Path = field(default=None)  # type: ignore[assignment]  # default: work/<number> here
    target: str = "local"
    targets: tuple[str, ...] = ("local",)  # the TARGET values this lab takes

    def __post_init__(self) -> None:
        self.workspace = Path(self.workspace or Path.cwd() / "work" / self.number).resolve()
        unknown = [t for t in self.targets if t not in TARGETS]
        if unknown:
            raise LabSetupError(f"unknown targets {unknown}: a target is one of {sorted(TARGETS)}")
        if self.target not in self.targets:
            choices = "\n".join(f"- {t!r}: {TARGETS[t]}" for t in self.targets)
            raise LabSetupError(f"TARGET = {self.target!r}, but lab {self.number} runs only on:\n{choices}")

    def tag(self, name: str, version: str = "v1") -> str:
        """A pinned image tag for this lab, e.g. ``labkit/01-final:v1``."""
        return f"{dockerlab.IMAGE_PREFIX}{self.number}-{name}:{version}"

    def start(self) -> Lab:
        """Check what the lab needs, make its scratch folder, clear what an earlier run left.
        In a class release, first write the reference files it uses from the student's answers."""
        from .references import provide

        for written in provide(self.number):
            print(f"wrote {written.relative_to(paths.REPO)} from your answer in labs/")
        problems = [why for need in syllabus.needs(self.number).requires if (why := capabilities.reason(need))]
        if problems:
            raise LabSetupError("this lab cannot start yet:\n- " + "\n- ".join(dict.fromkeys(problems)))
        self.workspace.mkdir(parents=True, exist_ok=True)
        dockerlab.cleanup(self.number, show=False)
        dockerlab.prune_stale_images(self.number)
        atexit.register(dockerlab.cleanup, self.number, show=False)
        atexit.register(background.stop_all)  # runs first (last in, first out): no loop scales up again
        print(f"lab {self.number} ready; scratch folder: {self.workspace}")
        return self

    def build(self, context: str | Path, tag: str, *, dockerfile: str | Path = "Dockerfile",
              buildkit: bool = False, **options):
        """``dockerlab.build`` (with ``buildkit``, ``dockerlab.build_with_buildkit``) for this lab."""
        make = dockerlab.build_with_buildkit if buildkit else dockerlab.build
        return make(context, tag, lab=self.number, dockerfile=dockerfile, **options)

    def checked_build(self, context: str | Path, tag: str, *, dockerfile: str | Path = "Dockerfile",
                      target: str | None = None):
        """``dockerlab.checked_build`` for this lab: the image the Dockerfile makes now, built by a check."""
        return dockerlab.checked_build(context, tag, lab=self.number, dockerfile=dockerfile, target=target)

    def run(self, ref: str, **options):
        """``dockerlab.run`` for this lab: a detached container its cleanup removes."""
        return dockerlab.run(ref, lab=self.number, **options)

    def running(self, ref: str, **options) -> contextlib.AbstractContextManager:
        """``dockerlab.running`` for this lab: a container removed when the ``with`` block ends."""
        return dockerlab.running(ref, lab=self.number, **options)

    def run_output(self, ref: str, command: list[str] | None = None, **options) -> tuple[int, str]:
        """``dockerlab.run_output`` for this lab: (exit code, output) of a container run to completion."""
        return dockerlab.run_output(ref, command, lab=self.number, **options)

    def join_swarm(self) -> dict:
        """Make this engine a single-node swarm unless it is in one, and label the node with this lab
        so that its cleanup leaves the swarm only if the lab made it; returns the engine's swarm info."""
        swarm = dockerlab.client().info().get("Swarm") or {}
        if swarm.get("LocalNodeState") == "active":
            print("this engine is already in a swarm: the lab uses it and will not leave it")
            return swarm
        masked.show("docker", "swarm", "init", "--advertise-addr", "127.0.0.1")  # its join tokens are masked
        swarm = dockerlab.client().info().get("Swarm") or {}
        masked.show("docker", "node", "update", "--label-add", f"{labels.LAB}={self.number}", swarm["NodeID"])
        return swarm

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

    def shipped_file(self, cell_id: str, *, of: str | None = None) -> str:
        """The file a ``%%writefile`` cell of this lab (or of lab ``of``) writes, as the lab ships
        it (from the solution notebook, not from the student's copy): what a check builds a
        reference from. In a class release an answer cell ships only its stub: there it is the
        student's own answer, as the reference files are (:mod:`labkit.course.references`)."""
        from .build import written_text

        lab = of or self.number
        shipped = solution_notebook(lab)
        if paths.is_release() and cells.is_answer(next(c for c in shipped.cells if c.get("id") == cell_id)):
            from .references import answer  # reads the student's notebook, with nbformat

            return answer(lab, cell_id, needed_by=self.number)
        return written_text(shipped, cell_id)

    def reference_image(self, cell_id: str, name: str, *, app: bool = False, of: str | None = None):
        """The image the lab's own Dockerfile (``%%writefile`` cell ``cell_id``, as shipped; of lab
        ``of`` when given, such as lab 01's final image for a later lab) builds, tagged
        ``labkit/<lab>-<name>:v1``; with ``app``, in a fresh copy of the sample app. Checks compare
        a student's image with it, so no edit of a notebook cell can move the reference."""
        return dockerlab.canonical_build(self.shipped_file(cell_id, of=of), self.tag(name), lab=self.number,
                                         context_from=paths.APP if app else None, ignore=APP_IGNORE)

    def cleanup(self) -> None:
        """Stop every background task first (lab 07's control loop and load: a loop still running
        would scale the containers up again), then remove what the lab made."""
        background.stop_all()
        dockerlab.cleanup(self.number)


class Notebook(dict):
    """A notebook file read as JSON, with nbformat's attribute access (``nb.cells``,
    ``cell.source`` as one string): all that the checks read of a solution. Reading it without
    nbformat spares the checks' kernel nbformat's import, a second and a half of every graded run
    (its jsonschema compiles an IRI grammar)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    @classmethod
    def read(cls, path: Path) -> Notebook:
        def node(value):
            if isinstance(value, dict):
                return cls({key: node(item) for key, item in value.items()})
            return [node(item) for item in value] if isinstance(value, list) else value

        nb = node(json.loads(Path(path).read_text()))
        for cell in nb.cells:
            if isinstance(cell.get("source"), list):
                cell["source"] = "".join(cell["source"])
        return nb


@functools.cache
def solution_notebook(number: str) -> Notebook:
    """The lab's solution, read once per process (the grader reads it in the checks' kernel
    before any student code runs, so a later change on disk does not reach the checks)."""
    return Notebook.read(paths.solution_for(number))


def start(number: str, *, workspace: str | Path | None = None) -> Lab:
    """``Lab(number).start()``: what lab notebooks call first."""
    return Lab(number, workspace).start()
