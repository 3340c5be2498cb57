"""Docker operations the labs and their checks use, on the Docker SDK for Python.

Everything a lab creates carries the label ``labkit.lab=<NN>``, so that a lab's
cleanup, ``labkit grade`` and ``make clean`` can find and remove it, also after a
failure or an interrupted kernel. Images built here also carry ``labkit.run``, the id
of this Python process: a check only accepts a ``labkit/…`` image built by the same run
of the notebook, never one left by an earlier run (a solution graded before, say).
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import os
import re
import shlex
import shutil
import signal
import subprocess
import tarfile
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import docker
import docker.errors
from docker.utils.build import exclude_paths

from ..machine import probes

LABEL = "labkit.lab"
RUN_LABEL = "labkit.run"
RUN_ID = os.environ.get("LABKIT_RUN_ID") or uuid.uuid4().hex[:12]
IMAGE_PREFIX = "labkit/"


class DockerLabError(RuntimeError):
    """A Docker step failed; the message says what happened and what to do."""


class BuildError(DockerLabError):
    """A build failed: ``step`` is the Dockerfile step it stopped at ('' before the first), ``error``
    the engine's message, ``log`` the whole build log."""

    def __init__(self, message: str, log: list[str], *, step: str = "", error: str = ""):
        super().__init__(message)
        self.log, self.step, self.error = log, step, error or message


# The last failed build of each tag in this process, so that "no such image" can say why.
_FAILED: dict[str, BuildError] = {}


@functools.lru_cache(maxsize=1)
def client() -> docker.DockerClient:
    try:
        c = docker.from_env(timeout=300)
        c.ping()
        return c
    except Exception as exc:  # DockerException, connection errors, missing socket
        raise DockerLabError(
            f"no Docker engine answers ({exc.__class__.__name__}). Start Docker Desktop or "
            "`sudo systemctl start docker` (Linux), then rerun this cell; `make doctor` "
            "checks the whole set-up.") from None


def labels(lab: str) -> dict[str, str]:
    return {LABEL: lab}


# ---------------------------------------------------------------- building

def build(context: str | Path, tag: str, *, lab: str, dockerfile: str | Path = "Dockerfile",
          buildargs: dict[str, str] | None = None, show: bool = True):
    """Build an image the way ``docker build -t TAG -f DOCKERFILE CONTEXT`` does.

    Prints the equivalent command, then one line per build step with the time it
    took, and returns the image. A failed step raises :class:`BuildError` naming the
    step, with the end of the log.
    """
    context, dockerfile_path = _context_and_dockerfile(context, dockerfile)
    if show:
        print(f"$ docker build -t {tag} -f {dockerfile_path} {context}")
    log: list[str] = []
    step, started = "", time.monotonic()
    heartbeat = started
    try:
        stream = client().api.build(
            path=str(context), dockerfile=str(dockerfile_path.resolve()), tag=tag,
            labels=_build_labels(lab), buildargs=buildargs or {}, rm=True, forcerm=True, decode=True)
        for chunk in stream:
            if "error" in chunk:
                tail = "\n".join(log[-25:])
                raise BuildError(
                    f"docker build failed at {step or 'the start'}:\n{chunk['error'].strip()}\n"
                    f"--- last lines of the build log ---\n{tail}", log, step=step, error=chunk["error"].strip())
            for line in chunk.get("stream", "").splitlines():
                log.append(line)
                if line.startswith("Step "):
                    if show and step:
                        print(f"  done in {time.monotonic() - started:5.1f}s")
                    step, started = line, time.monotonic()
                    heartbeat = started
                    if show:
                        print(line[:110])
                elif show and time.monotonic() - heartbeat > 15:  # a long step: show it is alive
                    heartbeat = time.monotonic()
                    print(f"  … still running ({heartbeat - started:.0f}s): {line.strip()[:80]}")
    except docker.errors.APIError as exc:  # the engine refused the Dockerfile before any step
        raise BuildError(f"docker build failed: {exc.explanation or exc}", log,
                         error=str(exc.explanation or exc)) from None
    except BuildError as exc:
        _FAILED[tag] = exc
        raise
    _FAILED.pop(tag, None)
    if show:
        print(f"  done in {time.monotonic() - started:5.1f}s")
    image = client().images.get(tag)
    if show:
        print(f"built {tag}: {human(image.attrs['Size'])}")
    return image


def build_with_buildkit(context: str | Path, tag: str, *, lab: str, dockerfile: str | Path = "Dockerfile",
                        secrets: dict[str, str | Path] | None = None, buildargs: dict[str, str] | None = None,
                        no_cache: bool = False, show: bool = True, timeout: float = 600):
    """Build with BuildKit, which the Docker SDK cannot drive (``RUN --mount=type=secret``...).

    Runs the client that ``probes.buildkit_command()`` found (``docker buildx build``, or a
    pre-23 ``docker build`` with ``DOCKER_BUILDKIT=1``) with ``--secret id=ID,src=FILE`` per
    entry of ``secrets``, labels the image like :func:`build`, prints the command and each
    step, and returns the image. BuildKit leaves secrets out of its cache keys: a step cached
    with an old secret is reused after the secret changes, unless ``no_cache``. A failed
    build raises :class:`BuildError` with the log's end.
    """
    found = probes.buildkit_command()
    if found is None:
        raise DockerLabError(f"no BuildKit here: {probes.buildkit_reason()}")
    context, dockerfile_path = _context_and_dockerfile(context, dockerfile)
    for key, src in (secrets or {}).items():
        if not Path(src).is_file():
            raise DockerLabError(f"secret {key!r}: file {src} does not exist")
    argv = [*found.argv, "--progress=plain", "-t", tag, "-f", str(dockerfile_path),
            *(a for k, v in _build_labels(lab).items() for a in ("--label", f"{k}={v}")),
            *(["--no-cache"] if no_cache else [])]
    for key, src in (secrets or {}).items():
        argv += ["--secret", f"id={key},src={Path(src).resolve()}"]
    for key, value in (buildargs or {}).items():
        argv += ["--build-arg", f"{key}={value}"]
    argv.append(str(context))
    if show:
        env_prefix = " ".join(f"{k}={v}" for k, v in found.env.items())
        print("$ " + (env_prefix + " " if env_prefix else "") + " ".join(
            shlex.quote(a) if not a.startswith(tuple(f"{k}=" for k in (buildargs or {}))) else "<build-arg>"
            for a in argv))
    log: list[str] = []
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **found.env})
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        for line in proc.stdout:
            line = line.rstrip()
            log.append(line)
            step = re.match(r"#\d+ (\[.*|DONE .*|CACHED|ERROR.*)$", line)
            if show and step and not line.split(" ", 1)[1].startswith("[internal]"):
                print("  " + line[:110])
        code = proc.wait()
    finally:
        timer.cancel()
    if code != 0:
        why = "timed out" if time.monotonic() - started >= timeout else f"exit {code}"
        tail = "\n".join(log[-25:])
        raise BuildError(f"BuildKit build of {tag} failed ({why}):\n--- last lines of the build log ---\n{tail}", log)
    image = client().images.get(tag)
    if show:
        print(f"built {tag} with BuildKit in {time.monotonic() - started:.1f}s: {human(image.attrs['Size'])}")
    return image


def _context_and_dockerfile(context: str | Path, dockerfile: str | Path,
                            missing: type[Exception] = DockerLabError) -> tuple[Path, Path]:
    context, dockerfile = Path(context), Path(dockerfile)
    path = dockerfile if dockerfile.is_absolute() else context / dockerfile
    if not path.exists():
        raise missing(f"{path} does not exist: write it first (see the cell above)")
    return context, path


def _build_labels(lab: str) -> dict[str, str]:
    """Every image a lab builds says which lab and which run (see :data:`RUN_ID`)."""
    return {**labels(lab), RUN_LABEL: RUN_ID}


def context_files(context: str | Path, dockerfile: str = "Dockerfile") -> list[str]:
    """Files and folders a build would send, after the context's ``.dockerignore``.

    Uses the same matcher as the SDK's own build, so it shows exactly what
    :func:`build` sends to the engine.
    """
    context = Path(context)
    ignore = context / ".dockerignore"
    patterns = []
    if ignore.exists():
        patterns = [line.strip() for line in ignore.read_text().splitlines()
                    if line.strip() and not line.strip().startswith("#")]
    return sorted(exclude_paths(str(context), patterns, dockerfile=dockerfile))


def context_bytes(context: str | Path) -> int:
    context = Path(context)
    return sum((context / f).stat().st_size for f in context_files(context)
               if (context / f).is_file())


_BUILT_FOR_CHECKS: dict[tuple, object] = {}


def checked_build(context: str | Path, tag: str, *, lab: str, dockerfile: str | Path = "Dockerfile"):
    """The image that a student's Dockerfile builds *now*, built by the check itself (quietly, and
    from the build cache when nothing changed): a check inspects what the Dockerfile makes, not
    whatever ``tag`` happens to name. A Dockerfile that does not build fails the check with the
    step it stopped at. Within one process the result is reused until the Dockerfile or the
    build context changes."""
    context, path = _context_and_dockerfile(context, dockerfile, missing=AssertionError)
    key = ("student", tag, str(path.resolve()), path.read_bytes(), _context_state(context))
    return _build_once(key, lambda: build(context, tag, lab=lab, dockerfile=dockerfile, show=False),
                       f"{path.name} does not build")


def canonical_build(dockerfile_text: str, tag: str, *, lab: str, context_from: str | Path | None = None,
                    ignore: tuple[str, ...] = ()):
    """An image built from a Dockerfile the lab ships (its text, not a file a student can edit) in
    a fresh copy of ``context_from`` (an empty folder by default): the reference a check compares
    with. The copy has the same content each time, so the build cache serves repeated builds."""
    source = Path(context_from) if context_from else None
    key = ("canonical", tag, dockerfile_text, _context_state(source) if source else ())

    def make():
        with tempfile.TemporaryDirectory(prefix=f"labkit-{lab}-reference-") as folder:
            if source:
                shutil.copytree(source, folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*ignore))
            (Path(folder) / "Dockerfile.reference").write_text(dockerfile_text)
            return build(folder, tag, lab=lab, dockerfile="Dockerfile.reference", show=False)

    return _build_once(key, make, "the lab's reference image does not build")


def _build_once(key: tuple, make, failure: str):
    if key in _BUILT_FOR_CHECKS:
        found = _BUILT_FOR_CHECKS[key]
        if isinstance(found, AssertionError):
            raise found
        return found
    try:
        found = make()
    except BuildError as exc:
        found = AssertionError(f"{failure}: it stopped at {exc.step or 'the start'}: {exc.error}")
        _BUILT_FOR_CHECKS[key] = found
        raise found from None
    _BUILT_FOR_CHECKS[key] = found
    return found


def _context_state(context: Path) -> tuple:
    """What a build would send, as (path, size, mtime) of each file: a cheap change detector."""
    state = []
    for name in context_files(context):
        with contextlib.suppress(OSError):
            stat = (context / name).stat()
            state.append((name, stat.st_size, stat.st_mtime_ns))
    return tuple(state)


# ---------------------------------------------------------------- inspecting

@dataclass
class Layer:
    size: int
    created_by: str

    @property
    def instruction(self) -> str:
        """The Dockerfile instruction, without the shell prefix Docker adds."""
        text = self.created_by.replace("/bin/sh -c #(nop) ", "").replace("/bin/sh -c ", "RUN ")
        text = re.sub(r"(dir|file):[0-9a-f]{64}", " ", text)  # COPY's content hash, not a path
        return " ".join(text.split()) or "(imported file system)"


def image(ref: str):
    """The image ``ref``; for a lab's own ``labkit/…`` image, only if this run built it."""
    failed = _FAILED.get(ref)
    try:
        found = client().images.get(ref)
    except docker.errors.ImageNotFound:
        if failed:
            raise AssertionError(f"image {ref} does not exist: its build failed at {failed.step or 'the start'}: "
                                 f"{failed.error}") from None
        raise AssertionError(f"image {ref} does not exist: build it first") from None
    if failed:
        raise AssertionError(f"the last build of {ref} failed at {failed.step or 'the start'}: {failed.error} "
                             "(fix the Dockerfile and run its build cell again)")
    if ref.startswith(IMAGE_PREFIX) and found.labels.get(RUN_LABEL) != RUN_ID:
        raise AssertionError(f"image {ref} was not built by this run of the notebook (it is left "
                             "from an earlier one): run the cell that builds it again")
    return found


def image_size(ref: str) -> int:
    return image(ref).attrs["Size"]


def layers(ref: str, *, with_empty: bool = False) -> list[Layer]:
    """The image's layers, oldest first, with sizes and the instruction that made each."""
    history = reversed(image(ref).history())
    found = [Layer(h["Size"], h.get("CreatedBy", "")) for h in history]
    return found if with_empty else [layer for layer in found if layer.size > 0]


def base_image(ref: str, candidates) -> str | None:
    """Which of ``candidates`` the image was built FROM (its layers start with theirs)."""
    layers = image(ref).attrs["RootFS"]["Layers"]
    for name in candidates:
        try:
            base = client().images.get(name).attrs["RootFS"]["Layers"]
        except docker.errors.ImageNotFound:
            continue
        if layers[:len(base)] == base:
            return name
    return None


def config(ref: str) -> dict:
    """The image config: User, Healthcheck, Env, ExposedPorts, Entrypoint, Cmd, Labels."""
    return image(ref).attrs["Config"]


def path_exists(ref: str, path: str) -> bool:
    """Whether ``path`` exists in the image, read from its filesystem without running it."""
    return existing_paths(ref, [path]) == {path}


def existing_paths(ref: str, candidates) -> set[str]:
    """Which of ``candidates`` exist in the image's filesystem (files, folders or links), found
    without running anything in it: the answer cannot depend on a shell or a tool inside."""
    container = client().containers.create(image(ref).id, command=["true"], labels=labels("probe"))
    found = set()
    try:
        url = client().api._url("/containers/{0}/archive", container.id)
        for path in candidates:
            answer = client().api.head(url, params={"path": path})  # a stat, without the archive
            if answer.status_code == 200:
                found.add(path)
            elif answer.status_code != 404:
                answer.raise_for_status()
    finally:
        container.remove(force=True)
    return found


def list_folder(ref: str, folder: str) -> list[str] | None:
    """The names in ``folder`` of the image's filesystem (None when it does not exist), read
    without running anything in the image."""
    container = client().containers.create(image(ref).id, command=["true"], labels=labels("probe"))
    try:
        chunks, _ = container.get_archive(folder)
        with tempfile.TemporaryFile() as buffer:
            for chunk in chunks:
                buffer.write(chunk)
            buffer.seek(0)
            with tarfile.open(fileobj=buffer) as archive:
                names = {PurePosixPath(m.name).parts[1] for m in archive.getmembers()
                         if len(PurePosixPath(m.name).parts) > 1}
        return sorted(names)
    except docker.errors.NotFound:
        return None
    finally:
        container.remove(force=True)


# ---------------------------------------------------------------- running

def run(ref: str, *, lab: str, name: str | None = None, ports: dict | None = None,
        environment: dict | None = None, command=None, **kwargs):
    """Start a detached, labelled container; ``ports`` maps container port → host port
    (``None`` for a free one on 127.0.0.1)."""
    if name:
        remove_container(name)
    published = {p: ("127.0.0.1", h) for p, h in (ports or {}).items()}
    return client().containers.run(
        image(ref).id, command=command,
        name=name, detach=True, labels=labels(lab), ports=published,
        environment=environment or {}, **kwargs)


def run_output(ref: str, command: list[str] | None = None, *, lab: str, entrypoint=None,
               timeout: float = 60, volumes: dict | None = None) -> tuple[int, str]:
    """Run ``command`` in a fresh container to completion: (exit code, output)."""
    container = client().containers.create(image(ref).id, command=command, entrypoint=entrypoint,
                                           labels=labels(lab), volumes=volumes)
    try:
        container.start()
        try:
            status = container.wait(timeout=timeout)["StatusCode"]
        except Exception:
            raise AssertionError(f"the container did not finish within {timeout:.0f}s") from None
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


def host_port(container, port: int | str) -> int:
    container.reload()
    key = f"{port}/tcp" if "/" not in str(port) else str(port)
    bindings = (container.attrs["NetworkSettings"].get("Ports") or {}).get(key)
    if not bindings:
        state = container.attrs["State"]
        raise AssertionError(f"container {container.name} publishes no port {port} (it is {state.get('Status')}, "
                             f"restarted {container.attrs.get('RestartCount')} times, started {state.get('StartedAt')})")
    return int(bindings[0]["HostPort"])


def wait_healthy(container, timeout: float = 90, show: bool = True) -> str:
    """Wait until the container's HEALTHCHECK reports healthy; returns the status seen.

    Raises with the container's last log lines when it exits, turns unhealthy, has no
    healthcheck or is still starting at the deadline.
    """
    deadline, last = time.monotonic() + timeout, None
    while True:
        container.reload()
        state = container.attrs["State"]
        health = (state.get("Health") or {}).get("Status")
        if show and health != last:
            print(f"  {container.name}: {health or state['Status']} after "
                  f"{timeout - (deadline - time.monotonic()):4.1f}s")
            last = health
        if health == "healthy":
            return health
        problem = None
        if health is None:
            problem = "has no HEALTHCHECK"
        elif not state["Running"]:
            problem = f"exited with code {state['ExitCode']}"
        elif health == "unhealthy":
            problem = "is unhealthy"
        elif time.monotonic() > deadline:
            problem = f"is still '{health}' after {timeout:.0f}s"
        if problem:
            logs = container.logs(tail=15).decode(errors="replace")
            raise AssertionError(f"container {container.name} {problem}. Last log lines:\n{logs}")
        time.sleep(0.5)


def health_notices_a_hang(container, *, slack: float = 10) -> float:
    """Freeze every process of the container (SIGSTOP: the server keeps its socket but answers
    nothing) and wait for the container's health check to fail once; returns the seconds that
    took, after thawing them (SIGCONT). A health check that does not ask the server
    (``CMD ["true"]``, a test of a file) never fails: AssertionError."""
    container.reload()
    spec = container.attrs["Config"].get("Healthcheck") or {}
    interval, timeout = (spec.get(k) or 30 * 10**9 for k in ("Interval", "Timeout"))
    limit = (interval + timeout) / 1e9 + slack
    _signal_all(container, "STOP")
    started = time.monotonic()
    try:
        while time.monotonic() - started < limit:
            container.reload()
            if ((container.attrs["State"].get("Health") or {}).get("FailingStreak") or 0) >= 1:
                return time.monotonic() - started
            time.sleep(0.5)
    finally:
        _signal_all(container, "CONT")
    raise AssertionError(f"the server was frozen for {limit:.0f}s and the health check still passed: it does not "
                         "ask the server anything (a health check must fail when the server cannot answer)")


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


def image_healthcheck(ref: str) -> dict:
    """The HEALTHCHECK an image declares ({} when none, or when it is disabled with NONE)."""
    spec = client().images.get(ref).attrs["Config"].get("Healthcheck") or {}
    return {} if spec.get("Test") in (None, [], ["NONE"]) else spec


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
    while time.monotonic() - started < timeout:
        now = health(container)  # reloads the container's attributes
        state = (container.attrs["State"]["Status"], now, container.attrs["RestartCount"])
        if state != last:
            print(f"{time.monotonic() - started:5.1f}s  status={state[0]:<10} health={state[1]:<10} "
                  f"restarts={state[2]}")
            last = state
        if until(state):
            return time.monotonic() - started
        time.sleep(every)
    raise AssertionError(f"{container.name}: still {last} after {timeout:.0f}s")


def child_of_init(container) -> int:
    """PID, inside the container, of the main program when it runs under an init process
    (``init: true`` / ``docker run --init``): the child of PID 1."""
    code, out = container.exec_run(
        ["python", "-c", "import os\n"
         "for p in filter(str.isdigit, os.listdir('/proc')):\n"
         "    if open(f'/proc/{p}/stat').read().rsplit(')', 1)[1].split()[1] == '1': print(p)"])
    pids = out.decode().split()
    assert code == 0 and pids, (f"no child of PID 1 in {container.name}: does the program run "
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
    for container in client().containers.list(all=True, filters=_filters(lab)):
        found += [(container, line) for line in container.logs().decode(errors="replace").splitlines()
                  if contains in line]
    return found


def service_task_logs(service: str, *, contains: str, timeout: float = 40):
    """(task container, its logs) of a swarm service's running task, once its log holds ``contains``."""
    c, deadline = client(), time.monotonic() + timeout
    if not [s for s in c.services.list() if s.name == service]:
        raise AssertionError(f"there is no service named {service}")
    while time.monotonic() < deadline:
        for task in c.containers.list(filters={"label": f"com.docker.swarm.service.name={service}"}):
            logs = task.logs().decode(errors="replace")
            if contains in logs:
                return task, logs
        time.sleep(0.5)
    raise AssertionError(f"no running task of service {service} logged {contains!r} within {timeout:.0f}s")


def remove_container(name: str) -> None:
    try:
        client().containers.get(name).remove(force=True)
    except docker.errors.NotFound:
        pass


# ---------------------------------------------------------------- cleaning up

def cleanup(lab: str | None = None, *, show: bool = True) -> dict[str, int]:
    """Remove the containers, networks, volumes and swarm services and secrets a lab made
    (every lab's when ``lab`` is None), and leave the swarm if the lab created it (its node
    carries the label). Images stay: they are the build cache. Safe to call any number of times."""
    try:
        c = client()
    except DockerLabError:
        return {}
    filters = _filters(lab)
    removed = {"services": 0, "secrets": 0, "containers": 0, "networks": 0, "volumes": 0}
    swarm = c.info().get("Swarm") or {}
    if swarm.get("LocalNodeState") == "active" and swarm.get("ControlAvailable"):
        _cleanup_swarm(c, lab, swarm["NodeID"], removed)
    named = re.compile("^labkit-" + (re.escape(lab) if lab else r"\d\d") + "-")  # made by a tool that labels nothing
    found = {x.id: x for x in c.containers.list(all=True, filters=filters)}
    found.update({x.id: x for x in c.containers.list(all=True) if named.match(x.name) and x.id not in found
                  and "com.docker.swarm.service.id" not in x.labels})
    for container in found.values():
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True, v=True)
            removed["containers"] += 1
    for network in c.networks.list(filters=filters):
        network.remove()
        removed["networks"] += 1
    for volume in c.volumes.list(filters=filters):
        volume.remove(force=True)
        removed["volumes"] += 1
    _report(removed, show)
    return removed


def _cleanup_swarm(c, lab: str | None, node_id: str, removed: dict[str, int]) -> None:
    def ours(obj) -> bool:  # labelled, or named the labs' way (a student may forget --label)
        owner = (obj.attrs["Spec"].get("Labels") or {}).get(LABEL)
        return (owner and (lab is None or owner == lab)) or obj.name.startswith(f"labkit-{lab or ''}")

    services = [s for s in c.services.list() if ours(s)]
    for service in services:
        service.remove()
        removed["services"] += 1
    ids, deadline = {s.id for s in services}, time.monotonic() + 30  # a secret goes once no task uses it
    while ids and time.monotonic() < deadline and any(
            task.labels.get("com.docker.swarm.service.id") in ids
            for task in c.containers.list(all=True, filters={"label": "com.docker.swarm.service.id"})):
        time.sleep(0.5)
    for secret in [s for s in c.secrets.list() if ours(s)]:
        try:
            secret.remove()
            removed["secrets"] += 1
        except docker.errors.APIError:
            pass  # still in use: it goes with the swarm below, or with the next cleanup
    owner = (c.nodes.get(node_id).attrs["Spec"].get("Labels") or {}).get(LABEL)
    if owner and (lab is None or owner == lab):
        c.swarm.leave(force=True)


def prune_stale_images(lab: str) -> None:
    """Delete the lab's images that newer builds of the same tag replaced; the layers they
    share with the current images stay as build cache."""
    _prune({"dangling": True, "label": f"{LABEL}={lab}"})


def _prune(filters: dict, *, patience: float = 60) -> None:
    """``docker image prune``; the engine runs one prune at a time, so wait for another to end."""
    deadline = time.monotonic() + patience
    while True:
        try:
            client().images.prune(filters=filters)
            return
        except docker.errors.APIError as exc:
            if exc.status_code != 409 or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def remove_images(lab: str | None = None, *, show: bool = True) -> int:
    """Delete the lab's images (every lab's when ``lab`` is None) and their build cache."""
    c = client()
    tags = _image_tags(c, lab)
    for tag in tags:
        c.images.remove(tag, force=True)
    _prune({"dangling": True, "label": f"{LABEL}={lab}" if lab else LABEL})
    _report({"images": len(tags)}, show)
    return len(tags)


def _filters(lab: str | None) -> dict:
    return {"label": f"{LABEL}={lab}" if lab else LABEL}


def _image_tags(c, lab: str | None) -> list[str]:
    """Tags of images a lab built: labelled with it, or named ``labkit/<lab>-…``."""
    found = []
    for img in c.images.list():
        owner = img.labels.get(LABEL)
        for tag in img.tags:
            named = tag.startswith(f"{IMAGE_PREFIX}{lab}-" if lab else IMAGE_PREFIX)
            if named or (owner and (lab is None or owner == lab)):
                found.append(tag)
    return found


def _report(removed: dict[str, int], show: bool) -> None:
    if show and any(removed.values()):
        print("removed " + ", ".join(f"{n} {kind}" for kind, n in removed.items() if n))


def human(size: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(size) < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"
