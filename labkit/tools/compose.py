"""Docker Compose for the labs, with either ``docker compose`` (v2) or ``docker-compose`` (v1).

A lab's compose project is named ``labkit-<NN>-<name>``; :func:`down` removes its
containers, networks and volumes, and ``dockerlab.cleanup(NN)`` finds what a project
left behind through the ``labkit.lab`` label its compose file puts on every service,
network and volume.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import yaml

from ..machine import probes
from . import commands, dockerlab


class ComposeError(commands.CommandError):
    pass


def command() -> list[str]:
    found = probes.compose_command()
    if not found:
        raise ComposeError(probes.compose_reason() or "Docker Compose is not installed")
    return found


def project_name(lab: str, name: str) -> str:
    return f"labkit-{lab}-{name}"


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
        raise AssertionError(f"project {project} has no {service} container: run the `compose up` cell")
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
    many containers. Returns {service: [container names]}; raises AssertionError with the states
    seen and the last log lines of a failing container at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        found = containers(project)
        by_service: dict[str, list] = {}
        for c in found:
            by_service.setdefault(c.labels.get("com.docker.compose.service", "?"), []).append(c)
        wanted = services or tuple(by_service) or tuple(count or ())
        states = {c.name: dockerlab.health(c) for s in wanted for c in by_service.get(s, [])}
        missing = [s for s in wanted if not by_service.get(s)]
        short = {s: n for s, n in (count or {}).items() if len(by_service.get(s, [])) != n}
        if found and not missing and not short and all(v in ("healthy", "none") for v in states.values()):
            if show:
                print("healthy: " + ", ".join(sorted(states)))
            return {s: sorted(c.name for c in by_service[s]) for s in wanted}
        if time.monotonic() > deadline or (not found and time.monotonic() > deadline - timeout + 5):
            # (a project with no container at all after 5 s was never started: say so at once)
            bad = [c for s in wanted for c in by_service.get(s, []) if states.get(c.name) not in ("healthy", "none")]
            logs = ""
            if bad:
                logs = f"\nlast log lines of {bad[0].name}:\n" + bad[0].logs(tail=10).decode(errors="replace")
            problem = (f"no containers in project {project}" if not found else
                       f"no container of service(s) {missing}" if missing else
                       f"replica counts {({s: len(by_service.get(s, [])) for s in short})}, wanted {short}"
                       if short else f"states {states}")
            waited = timeout if found else 5
            raise AssertionError(f"project {project} not healthy after {waited:.0f}s: {problem}{logs}")
        time.sleep(0.5)


def published_port(project: str, service: str, port: int, *, timeout: float = 10) -> int:
    """The host port a service's container publishes for ``port`` (its first running replica); a
    container the restart policy is bringing back gets its port again within ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        found = [c for c in containers(project, service) if c.status == "running"]
        try:
            if not found:
                raise AssertionError(f"service {service} of project {project} has no running container")
            return dockerlab.host_port(found[0], port)
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.5)


def config(project_dir: str | Path, project: str, *, files: tuple[str, ...] = ()) -> dict:
    """The project's resolved configuration (``compose config``), as a dict."""

    done = run(project_dir, project, "config", files=files, show=False, timeout=60)
    return yaml.safe_load(done.stdout) or {}
