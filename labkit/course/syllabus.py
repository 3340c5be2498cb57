"""What each lab needs: the capabilities without which it cannot start (from
:mod:`labkit.capabilities`), and the local services the grader runs for it.

Only the hard requirements are here; a capability that unlocks part of a lab (kind, a GPU,
credentials) is named by the checks that need it (``labkit.check(..., needs=...)``), which
are skipped with the probe's reason when it is absent.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Local services a lab talks to. When grading, the grader starts them before the notebook
#: and stops them after, so that what the checks read is out of the student's reach; a lab
#: run by hand starts its own (``labkit.emulators.start_moto``, ``labkit.vertex.target``).
SERVICES = ("moto", "vertex-standin")


@dataclass(frozen=True)
class LabNeeds:
    requires: tuple[str, ...]
    services: tuple[str, ...] = ()
    #: The lab joins and leaves a Docker Swarm. Leaving drops, on Docker 20.10, the networks of
    #: containers that Compose started or scaled meanwhile (measured: a proxy kept running with no
    #: network and no published port), so such a lab must not run beside a lab that uses Compose.
    swarm: bool = False


LABS: dict[str, LabNeeds] = {
    "00": LabNeeds(("docker", "base-images")),
    "01": LabNeeds(("docker", "base-images")),
    "02": LabNeeds(("docker", "base-images", "compose")),
    "03": LabNeeds(("docker", "base-images", "compose"), services=("moto",), swarm=True),
    "04": LabNeeds(("docker", "base-images")),
    "05": LabNeeds(("docker", "base-images"), services=("moto",)),
    "06": LabNeeds(("docker", "base-images", "cloud-sdks"), services=("vertex-standin",)),
    "07": LabNeeds(("docker", "base-images", "compose"), services=("moto",)),
    "08": LabNeeds(("docker", "base-images", "compose"), services=("moto",)),
    "09": LabNeeds(("docker", "base-images", "compose"), services=("moto",)),
}


def needs(lab: str) -> LabNeeds:
    """What lab ``lab`` needs; a lab the table does not know needs Docker and the base images."""
    return LABS.get(lab, LabNeeds(("docker", "base-images")))


def can_run_together(a: str, b: str) -> bool:
    """Whether two different labs may run at once on one Docker engine (see :attr:`LabNeeds.swarm`)."""
    one, other = needs(a), needs(b)
    return a != b and not (one.swarm and "compose" in other.requires or other.swarm and "compose" in one.requires)
