"""Looking into images without running them: the image a check may trust, its layers, config,
base image, health check and files."""

from __future__ import annotations

import contextlib
import re
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import PurePosixPath

import docker.errors

from ...core.errors import RequirementNotMet
from . import engine
from .building import last_failure


@dataclass
class Layer:
    size: int
    created_by: str

    @property
    def instruction(self) -> str:
        """The Dockerfile instruction, without the shell prefix Docker adds."""
        text = self.created_by.replace("/bin/sh -c #(nop) ", "").replace("/bin/sh -c ", "RUN ")
        text = re.sub(r"(dir|file):[0-9a-f]{64}", " ", text)  # COPY's content hash, not a path
        return " ".join(text.split()) or "(imported file system)"


def image(ref: str):
    """The image ``ref``; for a lab's own ``labkit/…`` image, only if this run built it."""
    failed = last_failure(ref)
    try:
        found = engine.client().images.get(ref)
    except docker.errors.ImageNotFound:
        if failed:
            raise RequirementNotMet(f"image {ref} does not exist: its build failed at {failed.step or 'the start'}: "
                                    f"{failed.error}") from None
        raise RequirementNotMet(f"image {ref} does not exist: build it first") from None
    if failed:
        raise RequirementNotMet(f"the last build of {ref} failed at {failed.step or 'the start'}: {failed.error} "
                                "(fix the Dockerfile and run its build cell again)")
    if ref.startswith(engine.IMAGE_PREFIX) and found.labels.get(engine.BUILT_BY) != engine.RUN_ID:
        raise RequirementNotMet(f"image {ref} was not built by this run of the notebook (it is left "
                                "from an earlier one): run the cell that builds it again")
    return found


def image_size(ref: str) -> int:
    return image(ref).attrs["Size"]


def layers(ref: str, *, with_empty: bool = False) -> list[Layer]:
    """The image's layers, oldest first, with sizes and the instruction that made each."""
    history = reversed(image(ref).history())
    found = [Layer(h["Size"], h.get("CreatedBy", "")) for h in history]
    return found if with_empty else [layer for layer in found if layer.size > 0]


def base_image(ref: str, candidates) -> str | None:
    """Which of ``candidates`` the image was built FROM (its layers start with theirs)."""
    layers = image(ref).attrs["RootFS"]["Layers"]
    for name in candidates:
        try:
            base = engine.client().images.get(name).attrs["RootFS"]["Layers"]
        except docker.errors.ImageNotFound:
            continue
        if layers[:len(base)] == base:
            return name
    return None


def config(ref: str) -> dict:
    """The image config: User, Healthcheck, Env, ExposedPorts, Entrypoint, Cmd, Labels."""
    return image(ref).attrs["Config"]


def image_healthcheck(ref: str) -> dict:
    """The HEALTHCHECK an image declares ({} when none, or when it is disabled with NONE)."""
    spec = engine.client().images.get(ref).attrs["Config"].get("Healthcheck") or {}
    return {} if spec.get("Test") in (None, [], ["NONE"]) else spec


def path_exists(ref: str, path: str) -> bool:
    """Whether ``path`` exists in the image, read from its filesystem without running it."""
    return existing_paths(ref, [path]) == {path}


def existing_paths(ref: str, candidates) -> set[str]:
    """Which of ``candidates`` exist in the image's filesystem (files, folders or links), found
    without running anything in it: the answer cannot depend on a shell or a tool inside."""
    found = set()
    with _never_started(ref) as container:
        url = engine.client().api._url("/containers/{0}/archive", container.id)
        for path in candidates:
            answer = engine.client().api.head(url, params={"path": path})  # a stat, without the archive
            if answer.status_code == 200:
                found.add(path)
            elif answer.status_code != 404:
                answer.raise_for_status()
    return found


def list_folder(ref: str, folder: str) -> list[str] | None:
    """The names in ``folder`` of the image's filesystem (None when it does not exist), read
    without running anything in the image."""
    with _never_started(ref) as container:
        try:
            chunks, _ = container.get_archive(folder)
            with tempfile.TemporaryFile() as buffer:
                for chunk in chunks:
                    buffer.write(chunk)
                buffer.seek(0)
                with tarfile.open(fileobj=buffer) as archive:
                    names = {PurePosixPath(m.name).parts[1] for m in archive.getmembers()
                             if len(PurePosixPath(m.name).parts) > 1}
            return sorted(names)
        except docker.errors.NotFound:
            return None


@contextlib.contextmanager
def _never_started(ref: str):
    """A container of the image that is never started: its filesystem, read through the engine."""
    container = engine.client().containers.create(image(ref).id, command=["true"], labels=engine.labels("probe"))
    try:
        yield container
    finally:
        container.remove(force=True)
