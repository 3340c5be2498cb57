"""What every part of dockerlab shares: the engine's client, the labels and this run's id, the
errors. Tests patch :func:`client` and :data:`RUN_ID` here; the other modules read them from
here at call time, so a patch reaches them all."""

from __future__ import annotations

import functools
import os
import uuid

import docker

from ...core import engine as core_engine
from ...core import labels as core_labels
from ...core.errors import LabkitError

LABEL = core_labels.LAB
BUILT_BY = core_labels.BUILT_BY
#: The id of this Python process (the grader's ``LABKIT_RUN_ID``, shared by its two kernels):
#: the value of :data:`BUILT_BY` on the images it builds.
RUN_ID = os.environ.get(core_labels.RUN_ID_ENV) or uuid.uuid4().hex[:12]
IMAGE_PREFIX = "labkit/"


class DockerLabError(LabkitError, RuntimeError):
    """A Docker step failed; the message says what happened and what to do."""


class BuildError(DockerLabError):
    """A build failed: ``step`` is the Dockerfile step it stopped at ('' before the first), ``error``
    the engine's message, ``log`` the whole build log."""

    def __init__(self, message: str, log: list[str], *, step: str = "", error: str = ""):
        super().__init__(message)
        self.log, self.step, self.error = log, step, error or message


@functools.lru_cache(maxsize=1)
def client() -> docker.DockerClient:
    """One client for the whole process, with the time-out a build needs."""
    try:
        c = core_engine.docker_client(core_engine.DEFAULT_TIMEOUT_S)
        c.ping()
        return c
    except Exception as exc:  # DockerException, connection errors, missing socket
        raise DockerLabError(
            f"no Docker engine answers ({exc.__class__.__name__}). Start Docker Desktop or "
            "`sudo systemctl start docker` (Linux), then rerun this cell; `make doctor` "
            "checks the whole set-up.") from None


def labels(lab: str) -> dict[str, str]:
    return {LABEL: lab}


def filters(lab: str | None) -> dict:
    """The filter for what ``lab`` made (what any lab made when ``lab`` is None)."""
    return {"label": f"{LABEL}={lab}" if lab else LABEL}


def human(size: float) -> str:
    """A size the way Docker prints it (decimal units): "812 B", "94.3 MB", "1.2 GB"."""
    for unit in ("B", "kB", "MB"):
        if abs(size) < 1000:
            return f"{size:.0f} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"
