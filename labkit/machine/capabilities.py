"""The one table of what the labs can use, each with the probe that finds it.

A capability is present when its probe finds it (``reason(name)`` is None) and absent with
the probe's reason otherwise. Everything that asks "is X here?" asks this table:
``labkit.start`` and the grader (a lab's hard requirements, :data:`labkit.syllabus.LABS`),
``labkit.check(..., needs=...)`` (a check whose capability is absent is skipped with the
reason), the doctor (one row per capability) and the tests (which skips are honest here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..core.errors import LabkitError
from . import gpu, probes


@dataclass(frozen=True)
class Capability:
    name: str                           # what labs and checks call it: "kubectl"
    title: str                          # the doctor's row name: "kubectl"
    probe: Callable[[], probes.Finding]
    required: bool = False              # every lab needs it: the doctor says MISSING, not optional
    warn: bool = False                  # the doctor says WARN when absent (a lab step degrades)


def _base_images() -> probes.Finding:
    """The base images the Dockerfiles start FROM (pulled, or the offline stand-ins)."""
    if reason := probes.docker_reason():
        return probes.Finding(reason=f"cannot look for base images: {reason}")
    from .images import missing_base_images

    try:
        missing = missing_base_images()
    except Exception as exc:  # noqa: BLE001 - a probe reports, it never raises
        return probes.Finding(reason=f"could not look for the base images ({exc}) — run `make images`")
    if missing:
        return probes.Finding(reason=f"base images missing: {', '.join(map(str, missing))} — run `make images` "
                                     "in a terminal (or `labkit images`), then rerun the cell")
    return probes.Finding("all present")


TABLE: dict[str, Capability] = {c.name: c for c in (
    Capability("docker", "Docker engine", probes.docker_engine, required=True),
    Capability("buildkit", "BuildKit", probes.buildkit, warn=True),
    Capability("compose", "Compose", probes.compose, required=True),
    Capability("kind", "kind", probes.kind),
    Capability("kubectl", "kubectl", probes.kubectl),
    Capability("gpu", "NVIDIA GPU", probes.gpu),
    Capability("nvidia-toolkit", "NVIDIA Container Toolkit", gpu.toolkit),
    Capability("aws-credentials", "AWS credentials", probes.aws_credentials),
    Capability("gcp-credentials", "GCP credentials", probes.gcp_credentials),
    Capability("cloud-sdks", "Cloud SDKs (labs 06 and 09)", probes.cloud_sdks),
    Capability("vault", "Vault server", probes.vault),
    Capability("base-images", "Base images", _base_images),
)}


class UnknownCapability(LabkitError, KeyError):
    """A name the table does not have (a KeyError, as a missing key of the table is)."""


def get(name: str) -> Capability:
    try:
        return TABLE[name]
    except KeyError:
        raise UnknownCapability(f"no capability {name!r}: the table has {', '.join(TABLE)}") from None


def reason(name: str) -> str | None:
    """None when ``name`` is here, else the probe's reason (what is missing and how to get it)."""
    return get(name).probe().reason


def missing(*names: str) -> str | None:
    """The reason of the first absent capability among ``names``, None when all are here."""
    for name in names:
        if why := reason(name):
            return why
    return None


def absent() -> dict[str, str]:
    """Every capability absent here, with its reason."""
    return {name: why for name in TABLE if (why := reason(name))}
