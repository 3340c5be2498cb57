"""What the Docker engine holds of each base image: absent, official, or a stand-in that is
current or stale (built from an older recipe or CA bundle), read from the image's labels."""

from __future__ import annotations

from collections.abc import Iterable

from ...core import labels as label_keys
from ...core.engine import docker_client
from .catalog import BASE_IMAGES, ImagesError, recipe_hash
from .host import ca_digest


def connect(timeout: int = 60):
    """A Docker client whose engine answered; else an :class:`ImagesError` saying how to start it."""
    try:
        client = docker_client(timeout)
        client.ping()
    except Exception as exc:  # docker raises a variety of errors here
        raise ImagesError(
            f"the Docker engine is not reachable ({exc}). Start Docker (Docker Desktop, or "
            "`sudo systemctl start docker` / `sudo dockerd &`) and run `labkit doctor`."
        ) from exc
    return client


def inspect(client, name: str) -> dict | None:
    """``docker image inspect`` of ``name``, or None when the engine has no such image."""
    import docker

    try:
        return client.api.inspect_image(name)
    except docker.errors.ImageNotFound:
        return None
    except docker.errors.APIError as exc:
        raise ImagesError(f"cannot inspect image {name}: {exc}") from exc


def labels(attrs: dict | None) -> dict[str, str]:
    """The labels in an image's inspect data (none for a missing image)."""
    return ((attrs or {}).get("Config") or {}).get("Labels") or {}


def image_state(name: str, attrs: dict | None, *, recipe: str | None = None,
                ca: str | None = None) -> str:
    """Classify an image by its ``docker image inspect`` data.

    Returns "missing", "official" (present, not a labkit stand-in), "current" (a stand-in
    built from ``recipe`` carrying CA bundle ``ca``) or "stale" (an older stand-in).
    """
    if attrs is None:
        return "missing"
    found = labels(attrs)
    if found.get(label_keys.STANDIN) != "true":
        return "official"
    image = BASE_IMAGES.get(name)
    if recipe is None:
        recipe = recipe_hash(image) if image else ""
    if ca is None:
        ca = ca_digest()
    if found.get(label_keys.STANDIN_OF) == name and found.get(label_keys.STANDIN_RECIPE) == recipe \
            and found.get(label_keys.STANDIN_CA) == ca:
        return "current"
    return "stale"


def missing_base_images(names: Iterable[str] | None = None) -> list[str]:
    """The base images that do not exist at all (an out-of-date stand-in still works)."""
    client = connect(timeout=10)
    return [name for name in (names or BASE_IMAGES) if inspect(client, name) is None]
