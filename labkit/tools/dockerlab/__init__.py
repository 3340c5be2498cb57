"""Docker operations the labs and their checks use, on the Docker SDK for Python.

Everything a lab creates carries the label ``labkit.lab=<NN>`` (:data:`LABEL`), so that a lab's
cleanup, ``labkit grade`` and ``make clean`` can find and remove it, also after a failure or an
interrupted kernel. Images built here also carry ``labkit.built-by`` (:data:`BUILT_BY`), the id of
this Python process: a check only accepts a ``labkit/…`` image built by the same run of the
notebook, never one left by an earlier run (a solution graded before, say).

One module per job: :mod:`.building`, :mod:`.inspecting`, :mod:`.containers`, :mod:`.cleaning`; what
they share (the client, labels, :data:`RUN_ID`, errors) is in :mod:`.engine`, which is where tests
patch ``client`` and ``RUN_ID``.
"""

from __future__ import annotations

import docker.errors  # noqa: F401 - callers catch ``dockerlab.docker.errors.NotFound``

from . import engine
from .building import (build, build_with_buildkit, canonical_build, checked_build, context_bytes,
                       context_files)
from .cleaning import cleanup, prune_stale_images, remove_images
from .engine import BUILT_BY, IMAGE_PREFIX, LABEL, BuildError, DockerLabError, human, labels
from .inspecting import (Layer, base_image, config, existing_paths, image, image_healthcheck, image_size,
                         layers, list_folder, path_exists)
from .containers import (child_of_init, created_at, health, health_notices_a_hang, host_port, log_lines,
                         memory_used_mb, remove_container, restart_count, run, run_output, running,
                         service_task_logs, wait_healthy, watch)


def client() -> docker.DockerClient:
    """The process's Docker client (:func:`.engine.client`), looked up at each call so that a
    client patched there serves every caller."""
    return engine.client()


def __getattr__(name: str):
    if name == "RUN_ID":  # read where it lives (and where tests patch it)
        return engine.RUN_ID
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BUILT_BY", "BuildError", "DockerLabError", "IMAGE_PREFIX", "LABEL", "Layer", "RUN_ID",
    "base_image", "build", "build_with_buildkit", "canonical_build", "checked_build", "child_of_init", "cleanup",
    "client", "config", "context_bytes", "context_files", "created_at", "existing_paths", "health",
    "health_notices_a_hang", "host_port", "human", "image", "image_healthcheck", "image_size", "labels", "layers",
    "list_folder", "log_lines", "path_exists", "prune_stale_images", "remove_container", "remove_images",
    "restart_count", "run", "run_output", "running", "service_task_logs", "wait_healthy", "watch",
]
