"""Docker Compose for the labs, with either ``docker compose`` (v2) or ``docker-compose`` (v1).

A lab's compose project is named ``labkit-<NN>-<name>``; :func:`down` removes its
containers, networks and volumes, and ``dockerlab.cleanup(NN)`` finds what a project
left behind through the ``labkit.lab`` label its compose file puts on every service,
network and volume.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

from . import probes


class ComposeError(RuntimeError):
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
    if show:
        print("$ " + " ".join(shlex.quote(a) for a in argv))
    try:
        done = subprocess.run(argv, cwd=project_dir, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired:
        raise ComposeError(f"`{' '.join(argv)}` did not finish within {timeout:.0f}s") from None
    if check and done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-20:]
        raise ComposeError(f"`{' '.join(argv)}` failed (exit {done.returncode}):\n" + "\n".join(tail))
    return done


def containers(project: str, service: str | None = None) -> list:
    """The project's containers (running or not), optionally of one service."""
    from . import dockerlab

    labels = [f"com.docker.compose.project={project}"]
    if service:
        labels.append(f"com.docker.compose.service={service}")
    return dockerlab.client().containers.list(all=True, filters={"label": labels})


def down(project_dir: str | Path, project: str, *, files: tuple[str, ...] = (), show: bool = True) -> None:
    """Stop and remove the project's containers, networks and volumes; safe to repeat."""
    if not probes.compose_command():
        return
    run(project_dir, project, "down", "--volumes", "--remove-orphans", "--timeout", "5",
        files=files, show=show, check=False)
