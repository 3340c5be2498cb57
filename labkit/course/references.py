"""The reference files: one lab's answers that later labs, the kind scripts and the benchmark use.

In the instructor's repository each is a file in environments/ equal to the solution's answer
(tests/test_reference_files.py holds them so). A class release (``labkit release``) ships none
of them: when a lab that uses one starts, the file is written from the student's own answer in
labs/, with a header saying so, and while that answer is still the stub the lab stops and says
which exercise to finish first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nbformat

from ..core import paths
from .build import FILE_STUB, written_text
from .lab import LabSetupError


@dataclass(frozen=True)
class Reference:
    lab: str                        # the lab whose answer it is
    cell: str                       # the %%writefile cell of that lab that writes it
    path: str                       # where it lives, from the repository's root
    used_by: tuple[str, ...] = ()   # the later labs that need it at run time


REFERENCES = (
    Reference("01", "final-dockerfile", "environments/app/Dockerfile", ("02", "04", "07", "08", "09")),
    Reference("01", "ignore-file", "environments/app/.dockerignore", ("07", "08", "09")),  # the kind scripts' builds
    Reference("02", "compose-file", "environments/compose/compose.yaml", ("07", "09")),
    Reference("02", "k8s-deployment", "environments/k8s/app/base/deployment.yaml", ("07", "08", "09")),
    Reference("02", "overlay-dev", "environments/k8s/app/overlays/dev/kustomization.yaml"),
    Reference("02", "overlay-prod", "environments/k8s/app/overlays/prod/kustomization.yaml"),
    Reference("04", "dockerfile", "environments/gpu/Dockerfile"),
    Reference("04", "compose-file", "environments/gpu/compose.yaml"),
    Reference("04", "k8s-file", "environments/gpu/k8s/deployment.yaml"),
)
#: Answers kept in environments/ for the tests and the kind scripts' defaults that no other lab
#: uses (their own labs copy the folder without them): a release leaves them out too.
WITHHELD = ("environments/k8s/hpa/hpa.yaml", "environments/k8s/bluegreen/services.yaml")


def answer(lab: str, cell_id: str, *, needed_by: str) -> str:
    """The file that the student's own ``%%writefile`` cell ``cell_id`` of lab ``lab`` (in labs/)
    writes; a :class:`LabSetupError` while it is missing or still the stub."""
    try:
        text = written_text(nbformat.read(paths.lab_notebook(lab), as_version=4), cell_id)
    except (paths.LabNotFound, StopIteration):  # no such notebook, or the cell was deleted
        text = ""
    if not text.strip() or FILE_STUB.strip() in text:  # a stub, or a skeleton with a blank left
        raise LabSetupError(f"lab {needed_by} starts from your answer to lab {lab}: its `%%writefile` cell {cell_id!r} "
                            f"in labs/{lab}_….ipynb is not written yet (it still holds `{FILE_STUB.strip()}`). "
                            f"Finish that exercise of lab {lab} first (in a skeleton, replace each "
                            f"`{FILE_STUB.strip()}` line with your lines), then start lab {needed_by} again")
    return text


def provide(number: str) -> list[Path]:
    """In a class release, write each reference file lab ``number`` uses from the student's own
    answer (afresh: the answer may have changed); the files written. Elsewhere, nothing."""
    if not paths.is_release():
        return []
    written = []
    for ref in (r for r in REFERENCES if number in r.used_by):
        text = answer(ref.lab, ref.cell, needed_by=number)
        target = paths.REPO / ref.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f"# Written from your answer in labs/{paths.lab_notebook(ref.lab).name} (cell {ref.cell}) "
                          f"when lab {number} started.\n" + text)
        written.append(target)
    return written
