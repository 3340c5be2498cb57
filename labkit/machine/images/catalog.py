"""The base images the labs build FROM, and the hashes of their stand-ins' recipes.

The hashes name what is cached and label what is built: a stand-in (or a cached root
filesystem) is reused exactly as long as its hash is unchanged, so they depend on the recipe
files and the settings below only, never on the host, mirror or architecture.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from ...core import paths
from ...core.errors import LabkitError

#: Where the stand-in recipes live (Dockerfiles, package lists, rootfs-setup.sh).
RECIPES_DIR = paths.ENVIRONMENTS / "base-images"

#: Bump when the Python side of the rootfs build changes in a way that changes content.
_ROOTFS_FORMAT = 1
SETUP_SCRIPT = "rootfs-setup.sh"


class ImagesError(LabkitError, RuntimeError):
    """A base image is missing and could be neither pulled nor built."""


@dataclasses.dataclass(frozen=True)
class BaseImage:
    """One base image the labs use, and the recipe of its offline stand-in.

    ``packages`` and ``dockerfile`` name files in :data:`RECIPES_DIR`; together with
    ``rootfs-setup.sh`` and the fields below they are "the recipe" that is hashed.
    """

    name: str  #: the official reference, e.g. ``python:3.11-slim``
    packages: str  #: Debian package list installed into the stand-in's rootfs
    dockerfile: str  #: finalises the imported rootfs (config, CA bundle, labels)
    suite: str = "bookworm"  #: Debian release the official image is built on
    slim: bool = False  #: apply debian:*-slim's dpkg excludes (no docs/man/locales)
    drop_bytecode: bool = False  #: delete __pycache__ like the official python:*-slim
    official_size: int | None = None  #: bytes on disk of the official amd64 image
    smoke: tuple[str, ...] = ()  #: command run once in a freshly built stand-in


#: The one registry of base images. To add one (e.g. nginx): write its package list and
#: Dockerfile in environments/base-images/ and add an entry here.
BASE_IMAGES: dict[str, BaseImage] = {
    image.name: image
    for image in (
        BaseImage(
            name="python:3.11-slim",
            packages="python-3.11-slim.packages",
            dockerfile="python.Dockerfile",
            slim=True,
            drop_bytecode=True,
            official_size=130_010_000,  # python:3.11.16-slim-bookworm, amd64 (repo-info)
            smoke=("python", "-c", "import ssl, sqlite3, venv, pip; print('ok')"),
        ),
        BaseImage(
            name="python:3.11",
            packages="python-3.11.packages",
            dockerfile="python.Dockerfile",
            official_size=1_010_000_000,  # python:3.11.16-bookworm, amd64 (repo-info)
            smoke=("sh", "-c", "gcc --version >/dev/null && git --version >/dev/null"
                   " && python -c 'import sysconfig, ssl; print(sysconfig.get_paths()[\"include\"])'"),
        ),
        BaseImage(
            name="nginx:1.27",
            packages="nginx.packages",
            dockerfile="nginx.Dockerfile",
            slim=True,  # the official image is FROM debian:bookworm-slim
            official_size=None,  # not measured offline; nginx:1.22.1 (bullseye) is 141.7 MB per repo-info
            smoke=("sh", "-c", "nginx -t && curl --version >/dev/null && envsubst --version >/dev/null"),
        ),
    )
}


def lookup(name: str) -> BaseImage:
    """The base image called ``name``; an unknown name says which ones labkit knows."""
    try:
        return BASE_IMAGES[name]
    except KeyError:
        raise ImagesError(
            f"unknown base image {name!r}; labkit knows {', '.join(sorted(BASE_IMAGES))}"
        ) from None


def _recipe_bytes(image: BaseImage, recipes_dir: Path) -> dict[str, bytes]:
    files = {}
    for name in (image.packages, image.dockerfile, SETUP_SCRIPT):
        path = recipes_dir / name
        try:
            files[name] = path.read_bytes()
        except OSError as exc:
            raise ImagesError(f"stand-in recipe for {image.name}: cannot read {path}: {exc}") from exc
    return files


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def file_digest(data: bytes) -> str:
    """The sha256 of ``data`` in hex: how every file in a key is fingerprinted."""
    return hashlib.sha256(data).hexdigest()


def debootstrap_key(suite: str) -> str:
    """Cache key of the plain ``debootstrap --variant=minbase SUITE`` tree."""
    return _digest({"format": _ROOTFS_FORMAT, "suite": suite, "variant": "minbase"})[:16]


def rootfs_key(image: BaseImage, recipes_dir: Path = RECIPES_DIR) -> str:
    """Cache key of a stand-in's finished root filesystem (everything before docker)."""
    files = _recipe_bytes(image, recipes_dir)
    return _digest({
        "format": _ROOTFS_FORMAT,
        "base": debootstrap_key(image.suite),
        "suite": image.suite,
        "slim": image.slim,
        "drop_bytecode": image.drop_bytecode,
        "packages": file_digest(files[image.packages]),
        "setup": file_digest(files[SETUP_SCRIPT]),
    })[:16]


def recipe_hash(image: BaseImage | str, recipes_dir: Path = RECIPES_DIR) -> str:
    """Hash of a stand-in's whole recipe: the value of its ``labkit.standin.recipe`` label.

    It changes when the package list, rootfs-setup.sh, the Dockerfile or the settings in
    :data:`BASE_IMAGES` change, and only then (not with the host, mirror or architecture).
    """
    image = lookup(image) if isinstance(image, str) else image
    files = _recipe_bytes(image, recipes_dir)
    return _digest({
        "name": image.name,
        "rootfs": rootfs_key(image, recipes_dir),
        "dockerfile": file_digest(files[image.dockerfile]),
    })[:16]
