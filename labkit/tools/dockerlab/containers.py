"""Running containers and watching them: start, publish, wait for health, freeze, restart counts,
logs."""

from __future__ import annotations

import contextlib
import datetime
import os
import signal
import time
from pathlib import Path

import docker.errors

from ...core.errors import RequirementNotMet
from ...core.waiting import wait_until
from . import engine
from .inspecting import image


def run(ref: str, *, lab: str, name: str | None = None, ports: dict | None = None,
        environment: dict | None = None, command=None, **kwargs):
    """Start a detached, labelled container; ``ports`` maps container port → host port
    (``None`` for a free one on 127.0.0.1)."""
    if name:
        remove_container(name)
    published = {p: ("127.0.0.1", h) for p, h in (ports or {}).items()}
    return engine.client().containers.run(
        image(ref).id, command=command,
        name=name, detach=True, labels=engine.labels(lab), ports=published,
        environment=environment or {}, **kwargs)


def run_output(ref: str, command: list[str] | None = None, *, lab: str, entrypoint=None,
               timeout: float = 60, volumes: dict | None = None, **kwargs) -> tuple[int, str]:
    """Run ``command`` in a fresh container to completion: (exit code, output). ``kwargs`` go to
    the SDK's ``containers.create`` (``device_requests``, say)."""
    container = engine.client().containers.create(image(ref).id, command=command, entrypoint=entrypoint,
                                                  labels=engine.labels(lab), volumes=volumes, **kwargs)
    try:
        container.start()
        try:
            status = container.wait(timeout=timeout)["StatusCode"]
        except Exception:
            raise RequirementNotMet(f"the container did not finish within {timeout:.0f}s") from None
        return status, container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)


@contextlib.contextmanager
def running(ref: str, *, lab: str, name: str | None = None, **kwargs):
    """:func:`run` as a ``with`` block: the container is removed when the block ends, however it ends."""
    container = run(ref, lab=lab, name=name, **kwargs)
    try:
        yield container
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)


def remove_container(name: str) -> None:
    with contextlib.suppress(docker.errors.NotFound):
        engine.client().containers.get(name).remove(force=True)


def memory_used_mb(container) -> float | None:
    """The container's memory in use, in MiB, as `docker stats` counts it (the cgroup's usage
    less the page cache the kernel can drop: cgroup v1's total_inactive_file, v2's inactive_file)."""
    stats = container.stats(stream=False, one_shot=True).get("memory_stats") or {}
    if "usage" not in stats:
        return None
    details = stats.get("stats") or {}
    cache = details.get("total_inactive_file", details.get("inactive_file", 0))
    return (stats["usage"] - cache) / 2**20


def host_port(container, port: int | str) -> int:
    container.reload()
    key = f"{port}/tcp" if "/" not in str(port) else str(port)
    bindings = (container.attrs["NetworkSettings"].get("Ports") or {}).get(key)
    if not bindings:
        state = container.attrs["State"]
        raise RequirementNotMet(
            f"container {container.name} publishes no port {port} (it is {state.get('Status')}, "
            f"restarted {container.attrs.get('RestartCount')} times, started {state.get('StartedAt')})")
    return int(bindings[0]["HostPort"])


def wait_healthy(container, timeout: float = 90, show: bool = True) -> str:
    """Wait until the container's HEALTHCHECK reports healthy; returns the status seen.

    Prints each new status with the seconds it took (unless ``show`` is false). Fails with the
    container's last log lines when it exits, turns unhealthy, has no healthcheck or is still
    starting at the deadline.
    """
    started, last = time.monotonic(), None

    def healthy() -> str | None:
        nonlocal last
        container.reload()
        state = container.attrs["State"]
        health = (state.get("Health") or {}).get("Status")
        if show and health != last:
            print(f"  {container.name}: {health or state['Status']} after {time.monotonic() - started:4.1f}s")
        last = health
        if health == "healthy":
            return health
        problem = ("has no HEALTHCHECK" if health is None
                   else f"exited with code {state['ExitCode']}" if not state["Running"]
                   else "is unhealthy" if health == "unhealthy" else None)
        if problem:
            raise RequirementNotMet(f"container {container.name} {problem}. {_last_log_lines(container)}")
        return None

    return wait_until(healthy, timeout=timeout, every=0.5, error=RequirementNotMet,
                      what=f"container {container.name} to turn healthy",
                      explain=lambda: f"it is still '{last}'. {_last_log_lines(container)}")


def _last_log_lines(container) -> str:
    return "Last log lines:\n" + container.logs(tail=15).decode(errors="replace").rstrip()


def health_notices_a_hang(container, *, slack: float = 10) -> float:
    """Freeze every process of the container (SIGSTOP: the server keeps its socket but answers
    nothing) and wait for the container's health check to fail once; returns the seconds that
    took, after thawing them (SIGCONT). A health check that does not ask the server
    (``CMD ["true"]``, a test of a file) never fails: RequirementNotMet."""
    container.reload()
    spec = container.attrs["Config"].get("Healthcheck") or {}
    interval, timeout = (spec.get(k) or 30 * 10**9 for k in ("Interval", "Timeout"))
    limit = (interval + timeout) / 1e9 + slack

    def failed_once() -> bool:
        container.reload()
        return ((container.attrs["State"].get("Health") or {}).get("FailingStreak") or 0) >= 1

    _signal_all(container, "STOP")
    started = time.monotonic()
    try:
        wait_until(failed_once, timeout=limit, every=0.5, error=RequirementNotMet,
                   what="a failed health check while the server was frozen",
                   explain=lambda: "the health check still passed: it does not ask the server anything, and a "
                                   "health check must fail when the server cannot answer")
        return time.monotonic() - started
    finally:
        _signal_all(container, "CONT")


def _signal_all(container, name: str) -> None:
    """Send SIG``name`` to every process in the container; health checks are new processes, so
    they still run and find the server frozen. A shell inside reaches all but the main process
    (inside its PID namespace, PID 1 ignores signals it has no handler for, SIGSTOP included).
    The main process gets it from the engine, unless the container has a restart policy:
    ``docker kill`` marks a container as stopped by hand (Docker 20.10), which would turn that
    policy off, so then it gets it from this machine when the process is visible here."""
    script = f'for d in /proc/[0-9]*; do p="${{d#/proc/}}"; [ "$p" = 1 ] || [ "$p" = "$$" ] || kill -{name} "$p"; done'
    with contextlib.suppress(docker.errors.APIError):  # no shell in the image: only PID 1 can be reached
        container.exec_run(["sh", "-c", script + " 2>/dev/null; true"])
    container.reload()
    if ((container.attrs["HostConfig"].get("RestartPolicy") or {}).get("Name") or "no") != "no":
        pid = container.attrs["State"].get("Pid")
        with contextlib.suppress(OSError):  # another machine (Docker Desktop's VM), or not ours to signal
            if container.id in Path(f"/proc/{pid}/cgroup").read_text():
                os.kill(pid, getattr(signal, f"SIG{name}"))
        return
    container.kill(signal=f"SIG{name}")


def health(container) -> str:
    """``healthy``/``unhealthy``/``starting``, ``none`` without a healthcheck, or the container's
    state (``exited``, ``restarting``…) when it is not running."""
    container.reload()
    state = container.attrs["State"]
    if state.get("Status") != "running":
        return state.get("Status", "?")
    return (state.get("Health") or {}).get("Status", "none")


def restart_count(container) -> int:
    container.reload()
    return container.attrs["RestartCount"]


def watch(container, until, *, timeout: float = 60, every: float = 1.0) -> float:
    """Print the container's (status, health, restarts) whenever it changes, until
    ``until(state)`` holds; returns the seconds that took."""
    started, last = time.monotonic(), None

    def reached():
        nonlocal last
        now = health(container)  # reloads the container's attributes
        state = (container.attrs["State"]["Status"], now, container.attrs["RestartCount"])
        if state != last:
            print(f"{time.monotonic() - started:5.1f}s  status={state[0]:<10} health={state[1]:<10} "
                  f"restarts={state[2]}")
            last = state
        return until(state)

    wait_until(reached, timeout=timeout, every=every, error=RequirementNotMet,
               what=f"{container.name} to reach the state awaited", explain=lambda: f"still {last}")
    return time.monotonic() - started


def child_of_init(container) -> int:
    """PID, inside the container, of the main program when it runs under an init process
    (``init: true`` / ``docker run --init``): the child of PID 1."""
    code, out = container.exec_run(
        ["python", "-c", "import os\n"
         "for p in filter(str.isdigit, os.listdir('/proc')):\n"
         "    if open(f'/proc/{p}/stat').read().rsplit(')', 1)[1].split()[1] == '1': print(p)"])
    pids = out.decode().split()
    if code != 0 or not pids:
        raise RequirementNotMet(f"no child of PID 1 in {container.name}: does the program run "
                                f"under an init process (`init: true`)? {out.decode()[-200:]}")
    return int(pids[0])


def created_at(container) -> float:
    """When the container was created, as a Unix time."""
    stamp = container.attrs["Created"]  # RFC 3339 with nanoseconds: 2026-12-03T16:31:02.123456789Z
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    when = datetime.datetime.fromisoformat(whole).replace(tzinfo=datetime.timezone.utc).timestamp()
    return when + float(f"0.{fraction or 0}")


def log_lines(lab: str, contains: str) -> list[tuple[object, str]]:
    """(container, line) for every log line holding ``contains``, of every container of ``lab``."""
    found = []
    for container in engine.client().containers.list(all=True, filters=engine.filters(lab)):
        found += [(container, line) for line in container.logs().decode(errors="replace").splitlines()
                  if contains in line]
    return found


def service_task_logs(service: str, *, contains: str, timeout: float = 40):
    """(task container, its logs) of a swarm service's running task, once its log holds ``contains``."""
    c = engine.client()
    if not [s for s in c.services.list() if s.name == service]:
        raise RequirementNotMet(f"there is no service named {service}")

    def logged():
        for task in c.containers.list(filters={"label": f"com.docker.swarm.service.name={service}"}):
            logs = task.logs().decode(errors="replace")
            if contains in logs:
                return task, logs
        return None

    return wait_until(logged, timeout=timeout, every=0.5, error=RequirementNotMet,
                      what=f"a running task of service {service} to log {contains!r}")
