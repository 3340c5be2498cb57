"""What containers ask for and what they use, measured: the input of lab 09's cost split of a node
over its containers, the way OpenCost splits one (each container is charged max(request, usage)
per resource; what no container is charged is the node's idle cost). The split itself is the
student's; this module only measures.

- :func:`compose_usage`: the containers of a running Compose project. CPU used is the cores a
  container used over a window of ``seconds`` (its CPU time between two readings of the engine's
  stats, over the time between them); memory used is what ``docker stats`` shows (:func:`memory_used`).
  Limits and the memory request come from what the engine holds (``HostConfig``); the CPU request
  from the project's compose file, because no Compose keeps it in the engine (below).
- :func:`kubectl_usage`: the same from a cluster: ``kubectl top pod --containers``
  (metrics-server) and the pods' ``resources``.
- :func:`machine_size`: the cores and memory of the Docker engine's machine, the "node" to split.

Requests, without a cluster: Compose writes ``deploy.resources.reservations`` as requests. Measured
with docker-compose 1.29.2 and read in its source (``translate_resource_keys_to_container_config``):
``reservations.memory`` becomes ``HostConfig.MemoryReservation`` (a soft limit), and
``reservations.cpus`` is dropped with a warning ("The following deploy sub-keys are not supported
and have been ignored: resources.reservations.cpus"). Compose v2 does the same without swarm: its
``setReservations`` maps memory and devices only ("Cpu reservation is a swarm option"). A field is
None where the container sets nothing; unlike Kubernetes, Compose does not make a limit the request.

Memory is in GB of 2**30 bytes (:data:`BYTES_PER_GB`), as OpenCost prices it: its cost model divides
RAM byte-hours by 1024³ before applying the price per GB-hour.
"""

from __future__ import annotations

import datetime
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import docker.errors

from ..core.errors import RequirementNotMet
from . import compose, dockerlab, k8s
from .autoscale import cpu_limit

#: Bytes in one GB of memory, as OpenCost counts them (its RAM price is per 1024³ bytes-hour).
BYTES_PER_GB = 2 ** 30
#: Lab 09's requests for lab 02's stack (``autoscale.sample_stack(..., reservations=RESERVATIONS)``),
#: under the stack's limits (app: 0.5 CPU, 256M; proxy: 0.25 CPU, 64M).
RESERVATIONS = {"app": {"cpus": "0.25", "memory": "128M"}, "proxy": {"cpus": "0.10", "memory": "32M"}}
SERVICE_LABEL = "com.docker.compose.service"


@dataclass(frozen=True)
class ContainerUse:
    """One container's requests, limits and use: cores and GB (:data:`BYTES_PER_GB`); None where
    the container sets no such request or limit."""
    name: str
    service: str
    cpu_request: float | None
    cpu_limit: float | None
    memory_request_gb: float | None
    memory_limit_gb: float | None
    cpu_used: float
    memory_used_gb: float


# ---------------------------------------------------------------- the engine's stats

def memory_used(stats: dict) -> int:
    """Bytes of memory a container uses, in a stats document, as ``docker stats`` shows it: its
    usage less the page cache it could give back at once (docker CLI's
    ``calculateMemUsageUnixNoCache``): ``total_inactive_file`` on a cgroup v1 host,
    ``inactive_file`` on cgroup v2; the whole usage when neither is below it. (Docker 19.03 and
    older took off ``cache`` instead.)"""
    memory = stats.get("memory_stats") or {}
    usage, detail = memory.get("usage") or 0, memory.get("stats") or {}
    inactive = detail.get("total_inactive_file", detail.get("inactive_file"))
    return usage - inactive if inactive is not None and inactive < usage else usage


def read_time(stats: dict) -> float:
    """When the engine took a stats reading (its ``read``, RFC 3339 in UTC with nanoseconds), as a
    Unix time."""
    whole, _, fraction = stats["read"].rstrip("Z").partition(".")
    when = datetime.datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return when.timestamp() + float(f"0.{fraction or 0}")


def cpu_used(first: dict, second: dict) -> float:
    """Cores a container used between two stats readings: its CPU time between them (``cpu_stats``
    ``total_usage``, in ns) over the time between them (their ``read``). ``docker stats`` instead
    divides by the host's CPU time (``system_cpu_usage``) and multiplies by its CPUs: the same
    figure, to the host's clock tick."""
    seconds = read_time(second) - read_time(first)
    if seconds <= 0:
        raise ValueError(f"the second reading ({second['read']}) is not after the first ({first['read']})")
    used = (second["cpu_stats"]["cpu_usage"]["total_usage"] - first["cpu_stats"]["cpu_usage"]["total_usage"])
    return max(0, used) / 1e9 / seconds


def _reading(container) -> dict:
    try:
        return container.stats(stream=False, one_shot=True)  # now, without the engine's 1 s wait
    except docker.errors.APIError as exc:  # NotFound too
        raise RequirementNotMet(f"container {container.name} went away while being measured ({exc}): "
                                "measure again once the stack is up and steady") from None


def _readings(containers: list) -> list[dict]:
    """One reading of each container, all at once, so that every container's window is the same."""
    with ThreadPoolExecutor(max_workers=len(containers), thread_name_prefix="labkit-usage") as pool:
        return list(pool.map(_reading, containers))


# ---------------------------------------------------------------- a Compose project

def cpu_reservations(project: str, containers: list) -> dict[str, float]:
    """{service: CPU request in cores} from ``deploy.resources.reservations.cpus`` in the project's
    resolved compose file (``compose config``, in the folder and with the files its containers'
    labels name), since no Compose keeps that reservation in the engine."""
    labels = containers[0].labels
    folder = labels.get("com.docker.compose.project.working_dir")
    if not folder:
        return {}
    files = tuple(f for f in labels.get("com.docker.compose.project.config_files", "").split(",") if f)
    found = {}
    for service, spec in (compose.config(folder, project, files=files).get("services") or {}).items():
        cpus = ((((spec or {}).get("deploy") or {}).get("resources") or {}).get("reservations") or {}).get("cpus")
        if cpus is not None:
            found[service] = float(cpus)
    return found


def _gb(value: int | float | None) -> float | None:
    return value / BYTES_PER_GB if value else None


def compose_usage(project: str, *, seconds: float = 2.0) -> list[ContainerUse]:
    """Requests, limits and use of each running container of a Compose project, read over
    ``seconds`` (every container over the same window): one :class:`ContainerUse` each, by
    service and name. Put the load on before, and keep it on until this returns."""
    if seconds <= 0:
        raise ValueError(f"seconds must be positive, not {seconds!r}")
    running = sorted((c for c in compose.containers(project) if c.status == "running"),
                     key=lambda c: (c.labels.get(SERVICE_LABEL, ""), c.name))
    if not running:
        raise RequirementNotMet(f"project {project} has no running container: run the `compose up` cell")
    requests = cpu_reservations(project, running)
    first = _readings(running)
    time.sleep(seconds)  # each container's window is between its own two readings (their read times)
    second = _readings(running)
    found = []
    for container, before, after in zip(running, first, second):
        host = container.attrs.get("HostConfig") or {}
        service = container.labels.get(SERVICE_LABEL, "")
        found.append(ContainerUse(
            name=container.name, service=service, cpu_request=requests.get(service),
            cpu_limit=cpu_limit(container.attrs), memory_request_gb=_gb(host.get("MemoryReservation")),
            memory_limit_gb=_gb(host.get("Memory")), cpu_used=cpu_used(before, after),
            memory_used_gb=memory_used(after) / BYTES_PER_GB))
    return found


def machine_size() -> tuple[int, float]:
    """(cores, memory in GB) of the machine the Docker engine runs on (``docker info`` NCPU and
    MemTotal): the node lab 09 splits. With Docker Desktop it is Desktop's VM, not the laptop."""
    info = dockerlab.client().info()
    return int(info["NCPU"]), info["MemTotal"] / BYTES_PER_GB


# ---------------------------------------------------------------- a cluster

def top_lines(text: str) -> dict[tuple[str, str], tuple[float, float]]:
    """{(pod, container): (cores, bytes)} from ``kubectl top pod --containers --no-headers``, whose
    lines are ``POD NAME CPU MEMORY`` with CPU in millicores ("12m") and memory in whole Mi ("71Mi",
    rounded down)."""
    found = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 4:
            raise ValueError(f"not a `kubectl top pod --containers --no-headers` line: {line!r}")
        pod, container, cpu, memory = parts
        found[(pod, container)] = (k8s.quantity(cpu), k8s.quantity(memory))
    return found


def _resource(resources: dict, kind: str, name: str) -> float | None:
    value = (resources.get(kind) or {}).get(name)
    return None if value is None else k8s.quantity(value)


def kubectl_usage(namespace: str, *, context: str = k8s.CONTEXT) -> list[ContainerUse]:
    """Requests, limits and use of each container of the running pods of ``namespace``: use from
    metrics-server (``kubectl top pod --containers``: its own window, about 15 s), requests and
    limits from the pods' specs (a container with a limit and no request has a request equal to the
    limit: the API server sets it so). ``name`` is ``pod/container``; ``service`` the pod's
    ``app.kubernetes.io/name`` (or ``app``) label, else the pod's name."""
    try:
        top = top_lines(k8s.kubectl("-n", namespace, "top", "pod", "--containers", "--no-headers",
                                    context=context, show=False).stdout)
    except k8s.K8sError as exc:
        raise RequirementNotMet(f"{exc}\nkubectl top needs metrics-server (on kind: with "
                                "--kubelet-insecure-tls), and a minute after a pod starts") from None
    found = []
    for pod in k8s.kubectl_json("-n", namespace, "get", "pods", context=context)["items"]:
        if (pod.get("status") or {}).get("phase") != "Running":
            continue
        meta = pod["metadata"]
        labels = meta.get("labels") or {}
        service = labels.get("app.kubernetes.io/name") or labels.get("app") or meta["name"]
        for spec in pod["spec"]["containers"]:
            if (meta["name"], spec["name"]) not in top:
                raise RequirementNotMet(f"metrics-server has no figures for container {spec['name']} of pod "
                                        f"{meta['name']} yet: measure again in a minute")
            cores, memory = top[(meta["name"], spec["name"])]
            resources = spec.get("resources") or {}
            found.append(ContainerUse(
                name=f"{meta['name']}/{spec['name']}", service=service,
                cpu_request=_resource(resources, "requests", "cpu"), cpu_limit=_resource(resources, "limits", "cpu"),
                memory_request_gb=_gb(_resource(resources, "requests", "memory")),
                memory_limit_gb=_gb(_resource(resources, "limits", "memory")),
                cpu_used=cores, memory_used_gb=memory / BYTES_PER_GB))
    return sorted(found, key=lambda u: (u.service, u.name))


__all__ = ["BYTES_PER_GB", "ContainerUse", "RESERVATIONS", "compose_usage", "cpu_reservations", "cpu_used",
           "kubectl_usage", "machine_size", "memory_used", "read_time", "top_lines"]
