"""Removing what a lab made: containers, networks, volumes, swarm services and secrets (the
swarm itself when the lab created it), and its images."""

from __future__ import annotations

import contextlib
import re

import docker.errors

from ...core.errors import TimedOut
from ...core.waiting import wait_until
from . import engine
from .engine import DockerLabError


def cleanup(lab: str | None = None, *, show: bool = True) -> dict[str, int]:
    """Remove the containers, networks, volumes and swarm services and secrets a lab made
    (every lab's when ``lab`` is None), and leave the swarm if the lab created it (its node
    carries the label). Images stay: they are the build cache. Safe to call any number of times."""
    try:
        c = engine.client()
    except DockerLabError:
        return {}
    filters = engine.filters(lab)
    removed = {"services": 0, "secrets": 0, "containers": 0, "networks": 0, "volumes": 0}
    wait_until(lambda: _swarm_cleaned(c, lab, removed), timeout=SWARM_SETTLE_S, every=1, error=DockerLabError,
               what="the engine's swarm to settle so that the lab's swarm services and secrets can be removed "
                    "(`docker info` shows its state)")
    named = re.compile("^/?labkit-" + (re.escape(lab) if lab else r"\d\d") + "-")  # made by a tool that labels nothing
    # The engine's plain list (ids, names, labels), not the SDK's list, which inspects each container
    # afterwards and fails on one removed meanwhile by another lab's run (measured: a 404 that failed
    # a grading run while labs 07 and 08 scaled and recreated their Compose services).
    found = {x["Id"] for x in c.api.containers(all=True, filters=filters)}
    found |= {x["Id"] for x in c.api.containers(all=True) if any(named.match(n) for n in x.get("Names") or ())
              and "com.docker.swarm.service.id" not in (x.get("Labels") or {})}
    for container in found:
        try:
            c.api.remove_container(container, force=True, v=True)
        except docker.errors.NotFound:
            continue
        except docker.errors.APIError as exc:
            if exc.status_code == 409:  # its removal is already under way (Compose's, another cleanup's)
                continue
            raise
        removed["containers"] += 1
    for network in c.networks.list(filters=filters):
        network.remove()
        removed["networks"] += 1
    for volume in c.volumes.list(filters=filters):
        volume.remove(force=True)
        removed["volumes"] += 1
    _report(removed, show)
    return removed


#: How long a cleanup waits for a swarm that another lab's run is joining or leaving.
SWARM_SETTLE_S = 30


def _swarm_cleaned(c, lab: str | None, removed: dict[str, int]) -> bool:
    """Clean the lab's part of the engine's swarm, if the engine is in one; False (try again) while
    the swarm is changing under us: another lab's run (lab 03's) may be joining or leaving it, and
    meanwhile the engine says "active" but its swarm API answers 503."""
    swarm = c.info().get("Swarm") or {}
    if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
        return swarm.get("LocalNodeState") != "pending"  # no swarm, or none this node manages: nothing to do
    try:
        _cleanup_swarm(c, lab, swarm["NodeID"], removed)
    except docker.errors.APIError as exc:
        if exc.status_code != 503:
            raise
        return False
    return True


def _cleanup_swarm(c, lab: str | None, node_id: str, removed: dict[str, int]) -> None:
    def ours(obj) -> bool:  # labelled, or named the labs' way (a student may forget --label)
        owner = (obj.attrs["Spec"].get("Labels") or {}).get(engine.LABEL)
        return (owner and (lab is None or owner == lab)) or obj.name.startswith(f"labkit-{lab or ''}")

    def tasks_gone() -> bool:
        return not any(task.labels.get("com.docker.swarm.service.id") in ids
                       for task in c.containers.list(all=True, filters={"label": "com.docker.swarm.service.id"}))

    services = [s for s in c.services.list() if ours(s)]
    for service in services:
        service.remove()
        removed["services"] += 1
    ids = {s.id for s in services}
    if ids:  # a secret goes once no task uses it; one still used goes with the swarm or the next cleanup
        with contextlib.suppress(TimedOut):
            wait_until(tasks_gone, timeout=30, every=0.5, what="the removed services' tasks to end")
    for secret in [s for s in c.secrets.list() if ours(s)]:
        try:
            secret.remove()
            removed["secrets"] += 1
        except docker.errors.APIError:
            pass  # still in use: it goes with the swarm below, or with the next cleanup
    owner = (c.nodes.get(node_id).attrs["Spec"].get("Labels") or {}).get(engine.LABEL)
    if owner and (lab is None or owner == lab):
        c.swarm.leave(force=True)


def prune_stale_images(lab: str) -> None:
    """Delete the lab's images that newer builds of the same tag replaced; the layers they
    share with the current images stay as build cache."""
    _prune(engine.filters(lab) | {"dangling": True})


def _prune(filters: dict, *, patience: float = 60) -> None:
    """``docker image prune``; the engine runs one prune at a time, so wait for another to end."""
    def pruned() -> bool:
        try:
            engine.client().images.prune(filters=filters)
        except docker.errors.APIError as exc:
            if exc.status_code != 409:
                raise
            return False
        return True

    wait_until(pruned, timeout=patience, every=0.5, error=DockerLabError,
               what="docker image prune (the engine was still running another prune)")


def remove_images(lab: str | None = None, *, show: bool = True) -> int:
    """Delete the lab's images (every lab's when ``lab`` is None) and their build cache."""
    c = engine.client()
    tags = _image_tags(c, lab)
    for tag in tags:
        c.images.remove(tag, force=True)
    _prune(engine.filters(lab) | {"dangling": True})
    _report({"images": len(tags)}, show)
    return len(tags)


def _image_tags(c, lab: str | None) -> list[str]:
    """Tags of images a lab built: labelled with it, or named ``labkit/<lab>-…``."""
    found = []
    for img in c.images.list():
        owner = img.labels.get(engine.LABEL)
        for tag in img.tags:
            named = tag.startswith(f"{engine.IMAGE_PREFIX}{lab}-" if lab else engine.IMAGE_PREFIX)
            if named or (owner and (lab is None or owner == lab)):
                found.append(tag)
    return found


def _report(removed: dict[str, int], show: bool) -> None:
    if show and any(removed.values()):
        print("removed " + ", ".join(f"{n} {kind}" for kind, n in removed.items() if n))
