"""Docker Compose for the labs, with either ``docker compose`` (v2) or ``docker-compose`` (v1).

A lab's compose project is named ``labkit-<NN>-<name>``; :func:`down` removes its
containers, networks and volumes, and ``dockerlab.cleanup(NN)`` finds what a project left
behind through the :data:`labkit.core.labels.LAB` label its compose file puts on every
service, network and volume. Offline, :func:`schema_problems` checks a compose file against the
Compose Specification's schema and :func:`gpu_reservation_problems` whether a service asks for GPUs
in the form Compose honours.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..core.errors import RequirementNotMet
from ..core.names import slug
from ..core.waiting import wait_until
from ..machine import probes
from . import commands, dockerlab


class ComposeError(commands.CommandError):
    """A compose command is missing, timed out or failed."""


def command() -> list[str]:
    found = probes.compose_command()
    if not found:
        raise ComposeError(probes.compose_reason() or "Docker Compose is not installed")
    return found


def project_name(lab: str, name: str) -> str:
    """``labkit-<lab>-<name>``, made a valid project name (lower case, digits, ``-`` and ``_``)."""
    return slug(f"labkit-{lab}-{name}", keep="_")


def run(project_dir: str | Path, project: str, *args: str, files: tuple[str, ...] = (),
        env: dict[str, str] | None = None, timeout: float = 600, show: bool = True,
        check: bool = True) -> subprocess.CompletedProcess:
    """Run ``compose -p PROJECT [-f FILE]... ARGS`` in ``project_dir``; prints the command
    and, when it fails, raises with the end of its output."""
    argv = [*command(), "-p", project, *(a for f in files for a in ("-f", f)), *args]
    return commands.run(argv, cwd=project_dir, env=env, timeout=timeout, show=show, check=check,
                        error=ComposeError)


def containers(project: str, service: str | None = None) -> list:
    """The project's containers (running or not), optionally of one service."""
    labels = [f"com.docker.compose.project={project}"]
    if service:
        labels.append(f"com.docker.compose.service={service}")
    return dockerlab.client().containers.list(all=True, filters={"label": labels})


def container(project: str, service: str):
    """The first replica of a service (by name), for a lab's cells and checks to act on."""
    found = sorted(containers(project, service), key=lambda c: c.name)
    if not found:
        raise RequirementNotMet(f"project {project} has no {service} container: run the `compose up` cell")
    return found[0]


def down(project_dir: str | Path, project: str, *, files: tuple[str, ...] = (), show: bool = True) -> None:
    """Stop and remove the project's containers, networks and volumes; safe to repeat."""
    if not probes.compose_command():
        return
    run(project_dir, project, "down", "--volumes", "--remove-orphans", "--timeout", "5",
        files=files, show=show, check=False)


def up(project_dir: str | Path, project: str, *services: str, files: tuple[str, ...] = (),
       scale: dict[str, int] | None = None, env: dict[str, str] | None = None,
       timeout: float = 300, show: bool = True) -> float:
    """``compose up -d [--scale SERVICE=N]... [SERVICE]...``; returns the seconds it took.

    ``up -d`` returns once the containers are started and, for a ``depends_on`` with
    ``condition: service_healthy``, once the dependency is healthy. Existing containers
    are kept (``--no-recreate``), so scaling up never restarts the replicas already there.
    """
    args = ["up", "-d", "--no-recreate"]
    for service, n in (scale or {}).items():
        args += ["--scale", f"{service}={n}"]
    started = time.monotonic()
    run(project_dir, project, *args, *services, files=files, env=env, timeout=timeout, show=show)
    return time.monotonic() - started


def wait_healthy(project: str, services: tuple[str, ...] | None = None, *, count: dict[str, int] | None = None,
                 timeout: float = 90, show: bool = True) -> dict[str, list[str]]:
    """Wait until every container of the project (or of ``services``) is running and healthy
    (or running, for a service without a healthcheck), and each service in ``count`` has that
    many containers. Returns {service: [container names]}; raises RequirementNotMet with the
    states seen and the last log lines of a failing container at the deadline, or after 5 s
    when the project has no container at all (it was never started)."""
    started, what, look = time.monotonic(), f"project {project} to be healthy", None

    def healthy() -> dict[str, list[str]] | None:
        nonlocal look
        look = _Look.at(project, services, count)
        if look.problem() is None:
            return {s: sorted(c.name for c in look.by_service[s]) for s in look.wanted}
        if not look.by_service and time.monotonic() - started > 5:
            raise RequirementNotMet(f"{what}: {look.problem()} after 5s")
        return None

    ready = wait_until(healthy, timeout=timeout, every=0.5, what=what, error=RequirementNotMet,
                       explain=lambda: look.problem() + look.last_logs())
    if show:
        print("healthy: " + ", ".join(sorted(look.states)))
    return ready


@dataclass
class _Look:
    """One look at a project's containers, against what :func:`wait_healthy` waits for."""
    project: str
    by_service: dict[str, list]
    wanted: tuple[str, ...]
    states: dict[str, str]
    count: dict[str, int]

    @classmethod
    def at(cls, project: str, services: tuple[str, ...] | None, count: dict[str, int] | None) -> _Look:
        by_service: dict[str, list] = {}
        for c in containers(project):
            by_service.setdefault(c.labels.get("com.docker.compose.service", "?"), []).append(c)
        wanted = services or tuple(by_service) or tuple(count or ())
        states = {c.name: dockerlab.health(c) for s in wanted for c in by_service.get(s, [])}
        return cls(project, by_service, wanted, states, count or {})

    def problem(self) -> str | None:
        """What is not as wanted yet; None when all is."""
        missing = [s for s in self.wanted if not self.by_service.get(s)]
        short = {s: n for s, n in self.count.items() if len(self.by_service.get(s, [])) != n}
        if not self.by_service:
            return f"no containers in project {self.project}"
        if missing:
            return f"no container of service(s) {missing}"
        if short:
            return f"replica counts {({s: len(self.by_service.get(s, [])) for s in short})}, wanted {short}"
        if any(v not in ("healthy", "none") for v in self.states.values()):
            return f"states {self.states}"
        return None

    def last_logs(self) -> str:
        """The last log lines of the first container that is not healthy, if any."""
        bad = [c for s in self.wanted for c in self.by_service.get(s, [])
               if self.states[c.name] not in ("healthy", "none")]
        if not bad:
            return ""
        return f"; last log lines of {bad[0].name}:\n" + bad[0].logs(tail=10).decode(errors="replace")


def published_port(project: str, service: str, port: int, *, timeout: float = 10) -> int:
    """The host port a service's container publishes for ``port`` (its first running replica); a
    container the restart policy is bringing back gets its port again within ``timeout``."""
    why = ""

    def host_port() -> int | None:
        nonlocal why
        found = [c for c in containers(project, service) if c.status == "running"]
        if not found:
            why = f"service {service} of project {project} has no running container"
            return None
        try:
            return dockerlab.host_port(found[0], port)
        except RequirementNotMet as exc:  # dockerlab's "publishes no port (it is …)"
            why = str(exc)
            return None

    return wait_until(host_port, timeout=timeout, every=0.5, error=RequirementNotMet, explain=lambda: why,
                      what=f"service {service} of project {project} to publish port {port}")


def config(project_dir: str | Path, project: str, *, files: tuple[str, ...] = ()) -> dict:
    """The project's resolved configuration (``compose config``), as a dict."""

    done = run(project_dir, project, "config", files=files, show=False, timeout=60)
    return yaml.safe_load(done.stdout) or {}


# ---------------------------------------------------------------- checking files offline

def schema_problems(path: str | Path) -> list[str]:
    """What the Compose Specification's JSON schema finds wrong in a compose file (a misspelt or
    misplaced key, a wrong type), without an engine or Compose installed: the schema is the one
    ``check-jsonschema --builtin-schema vendor.compose-spec`` vendors. Empty list: valid."""
    from check_jsonschema.builtin_schemas import get_builtin_schema
    from jsonschema.exceptions import best_match
    from jsonschema.validators import validator_for

    try:
        doc = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as exc:
        return [f"{path} is not valid YAML: {exc}"]
    if not isinstance(doc, dict):
        return [f"{path} is not a mapping of keys (services:, networks:, …)"]
    schema = get_builtin_schema("vendor.compose-spec")
    # best_match: the most specific reason inside an anyOf/oneOf
    errors = sorted((best_match([e]) for e in validator_for(schema)(schema).iter_errors(doc)),
                    key=lambda e: list(map(str, e.absolute_path)))
    problems = []
    for error in errors:
        said = _in_words(error, schema)
        if said:
            problems.append(f"{'.'.join(map(str, error.absolute_path)) or '(top level)'}: {said}")
    return problems


def _in_words(error, root: dict) -> str | None:
    """A schema error as a student reads it: unknown keys named (with the keys allowed there, when
    they are few). None when no key is unknown: the schema then calls known keys "unevaluated" only
    because a value is wrong, which has an error of its own."""
    if error.validator not in ("additionalProperties", "unevaluatedProperties") \
            or not isinstance(error.instance, dict):
        return error.message
    known = _keys(error.schema, root)
    patterns = error.schema.get("patternProperties") or {}
    unknown = [k for k in error.instance if k not in known and not any(re.search(p, k) for p in patterns)]
    if not unknown:
        return None
    allowed = f"; the keys allowed here are {', '.join(sorted(known))}" if len(known) <= 12 else ""
    return f"unknown key(s) {', '.join(map(repr, unknown))}: check the spelling and the indentation{allowed}"


def _keys(schema: dict, root: dict) -> set[str]:
    """The property names a schema defines, with those of the schemas it includes by ``allOf``."""
    keys = set(schema.get("properties") or {})
    for part in schema.get("allOf") or []:
        if "$ref" in part:  # a local reference, such as "#/$defs/container_spec"
            path, part = part["$ref"].removeprefix("#/").split("/"), root
            for step in path:
                part = part[step]
        keys |= _keys(part, root)
    return keys


def gpu_reservation_problems(doc: dict, service: str) -> list[str]:
    """Why ``service`` of a compose document (a dict, as loaded from YAML) would not get an NVIDIA
    GPU: Compose hands a container GPUs only for an entry under
    ``deploy.resources.reservations.devices`` with driver nvidia, ``gpu`` among its capabilities,
    and how many (``count``) or which (``device_ids``), which this lab wants written down (left
    out, Compose takes every GPU). Empty list: it asks for GPUs correctly."""
    spec = ((doc.get("services") or {}).get(service))
    if not isinstance(spec, dict):
        return [f"there is no service {service!r} under services:"]
    resources = (spec.get("deploy") or {}).get("resources") or {}
    devices = (resources.get("reservations") or {}).get("devices")
    if not devices:
        where = f"service {service} asks for no GPU: add deploy.resources.reservations.devices"
        if "runtime" in spec:
            return [f"{where}; `runtime: {spec['runtime']}` only picks a container runtime (nvidia: the legacy "
                    "one, which must be registered in the engine) and reserves no GPU"]
        if "gpus" in spec:
            return [f"{where}; `gpus:` is read only by recent Compose releases (older ones refuse the file), "
                    "the devices form by every Compose since 1.28"]
        if (resources.get("limits") or {}).get("devices"):
            return [f"{where}; devices go under reservations, not limits"]
        if "devices" in spec:
            return [f"{where}; the service's own `devices:` maps device files, without the driver's libraries"]
        return [where]
    problems = []
    for n, device in enumerate(devices):
        where = f"service {service} deploy.resources.reservations.devices[{n}]"
        if not isinstance(device, dict):
            problems.append(f"{where} is not a mapping (driver:, count:, capabilities:)")
            continue
        if device.get("driver") != "nvidia":
            said = f"driver is {device['driver']!r}" if device.get("driver") else "no driver"
            problems.append(f"{where}: {said}: set driver: nvidia")
        if "gpu" not in (device.get("capabilities") or []):
            problems.append(f"{where}: capabilities {device.get('capabilities')} lack gpu: set capabilities: [gpu] "
                            "(without it Compose reserves no GPU)")
        if "count" in device and "device_ids" in device:
            problems.append(f"{where}: count and device_ids together: Compose accepts one of them")
        elif "device_ids" not in device and not (device.get("count") == "all"
                                                 or type(device.get("count")) is int and device["count"] > 0):
            problems.append(f"{where}: say how many GPUs: count: 1 (a positive number, or all) or which: "
                            "device_ids: [\"0\"] (left out, Compose takes every GPU of the host)")
    return problems
