"""The ensure policy: keep an image that is present and current, else pull it once, else build
its offline stand-in; and say what was done, or what failed and what to do about it."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Iterable
from typing import Any

from ...core import labels as label_keys
from ...core.engine import docker_client
from ...core.errors import LabkitError
from ...core.names import split_image_ref
from .builder import Builder
from .catalog import BASE_IMAGES, BaseImage, ImagesError, lookup
from .host_commands import lock
from .progress import Progress, escape, mb, one_line
from .state import connect, image_state, inspect, labels


@dataclasses.dataclass(frozen=True)
class ImageResult:
    """What :func:`ensure_base_images` did for one image."""

    name: str
    how: str  #: "present", "pulled" or "built stand-in"
    size: int  #: bytes, as ``docker image inspect`` reports
    standin: bool  #: True when the image is a labkit stand-in, not the official one
    image_id: str = ""
    seconds: float = 0.0

    def __str__(self) -> str:
        kind = "stand-in" if self.standin else "official"
        return f"{self.name}: {self.how} ({kind}, {mb(self.size)})"


class _PullFailed(LabkitError):
    """The registry's own error, sent in the middle of a pull's progress stream."""


def try_pull(name: str, progress: Progress) -> str | None:
    """Pull once; None on success, else why it failed. Never waits long for a dead registry."""
    if os.environ.get("LABKIT_NO_PULL", "").strip() not in ("", "0"):
        return "docker pull skipped: LABKIT_NO_PULL is set"
    import requests
    import urllib3

    timeout = int(float(os.environ.get("LABKIT_PULL_TIMEOUT", "20")))
    repo, tag = split_image_ref(name)
    try:
        api = docker_client(timeout).api
        with progress.step(f"docker pull {name}", fail_mark="[yellow]✗[/]"):
            for event in api.pull(repo, tag=tag, stream=True, decode=True):
                if "error" in event:
                    raise _PullFailed(str(event["error"]))
                status = event.get("status", "")
                if status and event.get("id"):
                    status = f"{event['id']}: {status} {event.get('progress', '')}"
                progress.detail(status, milestone=status.startswith(("Digest", "Status")))
    except (requests.exceptions.Timeout, urllib3.exceptions.ReadTimeoutError):
        return f"no answer from the registry within {timeout} s"
    except Exception as exc:  # any failure means "not pulled": the stand-in is the fallback
        reason = getattr(exc, "explanation", None) or str(exc)  # the daemon's own words
        return one_line(str(reason)) or type(exc).__name__
    return None


def ensure_base_images(names: Iterable[str] | None = None, *, force: bool = False,
                       console: Any = None) -> list[ImageResult]:
    """Make sure every base image in ``names`` (default: all of :data:`BASE_IMAGES`) exists.

    For each image: if it is present (an official image, or a stand-in built from the
    current recipe and carrying the host's current CA bundle) nothing happens. Otherwise
    it is pulled once (a short timeout; ``LABKIT_NO_PULL=1`` skips this) and, if that
    fails, an offline stand-in is built (needs root, ``debootstrap`` and a Debian mirror).

    ``force=True`` rebuilds every stand-in from scratch, ignoring the cache in
    ``~/.cache/labkit`` (official images are re-pulled; they are kept if that fails).
    ``console`` is a ``rich.console.Console`` for progress (default: a new one; pass
    ``Console(quiet=True)`` for silence).

    Returns one :class:`ImageResult` per image; raises :class:`ImagesError` with what
    failed and what to do about it.
    """
    images = [lookup(n) for n in (list(BASE_IMAGES) if names is None else list(names))]
    progress = Progress(console)
    client = connect()
    builder = Builder(client, progress, force=force)  # shares caches made in this call
    return [ensure_one(client, image, progress, builder, force=force) for image in images]


def ensure_one(client, image: BaseImage, progress: Progress, builder: Builder, *,
               force: bool) -> ImageResult:
    """Make one image exist (see :func:`ensure_base_images`), building with ``builder``."""
    start = time.monotonic()
    attrs = inspect(client, image.name)
    state = image_state(image.name, attrs)
    if state == "official" and not force or state == "current" and not force:
        result = _result(image.name, "present", attrs, start)
        progress.print(f"[green]✓[/] {result}")
        return result

    progress.print(f"[bold]{image.name}[/]: "
                   + {"missing": "not in the Docker engine",
                      "stale": "stand-in built from an older recipe or CA bundle",
                      "official": "forced: updating the official image",
                      "current": "forced: rebuilding the stand-in"}[state])
    why_not_pulled = try_pull(image.name, progress) if state != "current" else "forced rebuild"
    if why_not_pulled is None:
        if state == "stale":  # the official image replaced an old stand-in: drop it
            with contextlib.suppress(Exception):
                client.api.remove_image(attrs["Id"])
        result = _result(image.name, "pulled", inspect(client, image.name), start)
        progress.print(f"[green]✓[/] {result}")
        return result
    if state == "official":  # forced, the pull failed: keep the official image we have
        progress.print(f"  [yellow]pull failed ({why_not_pulled}); keeping the image present[/]")
        return _result(image.name, "present", attrs, start)
    if why_not_pulled.startswith("docker pull skipped"):
        progress.print(f"  [dim]{escape(why_not_pulled)}[/]")
    progress.print(f"  building an offline stand-in for {image.name} "
                   f"(environments/base-images/{image.packages})")

    try:
        with lock(builder.root / "lock"):
            if not force:  # someone else may have built it while we waited for the lock
                attrs = inspect(client, image.name)
                if image_state(image.name, attrs) in ("current", "official"):
                    return _result(image.name, "present", attrs, start)
            new_attrs = builder.build(image, attrs if state == "stale" or force else None)
    except ImagesError as exc:
        still = inspect(client, image.name) if state == "stale" and not force else None
        if still is not None:  # an older stand-in still works: keep it, loudly
            progress.print(f"  [yellow]could not rebuild the stand-in ({escape(str(exc))}); "
                           f"keeping the older one[/]")
            return _result(image.name, "present", still, start)
        pulled = (why_not_pulled if why_not_pulled.startswith("docker pull skipped")
                  or why_not_pulled == "forced rebuild"
                  else f"`docker pull` failed: {why_not_pulled}")
        raise ImagesError(
            f"{image.name} is not available ({pulled}) and its offline stand-in could not be "
            f"built: {exc}\n"
            f"Fix the cause above and run `labkit images` again, or load the official image "
            f"yourself (`docker pull {image.name}`, or `docker load` / a registry mirror)."
        ) from exc
    result = _result(image.name, "built stand-in", new_attrs, start)
    progress.print(f"[green]✓[/] {result} in {result.seconds:.0f} s "
                   f"[dim](official: {mb(image.official_size)})[/]")
    return result


def _result(name: str, how: str, attrs: dict | None, start: float) -> ImageResult:
    attrs = attrs or {}
    return ImageResult(
        name=name, how=how, size=int(attrs.get("Size") or 0),
        standin=labels(attrs).get(label_keys.STANDIN) == "true",
        image_id=attrs.get("Id", ""), seconds=round(time.monotonic() - start, 1),
    )
