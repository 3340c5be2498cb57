"""Building images: with the SDK (:func:`build`), with BuildKit (:func:`build_with_buildkit`), and
the builds a check makes itself (:func:`checked_build`, :func:`canonical_build`)."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import docker.errors
from docker.utils.build import exclude_paths

from ...core.errors import RequirementNotMet
from ...machine import probes
from . import engine
from .engine import BuildError, DockerLabError, human

# The last failed build of each tag in this process, so that "no such image" can say why.
_FAILED: dict[str, BuildError] = {}


def last_failure(tag: str) -> BuildError | None:
    """How the last build of ``tag`` in this process failed (None when it did not)."""
    return _FAILED.get(tag)


def build(context: str | Path, tag: str, *, lab: str, dockerfile: str | Path = "Dockerfile",
          buildargs: dict[str, str] | None = None, target: str | None = None, show: bool = True):
    """Build an image the way ``docker build -t TAG -f DOCKERFILE [--target STAGE] CONTEXT`` does.

    Prints the equivalent command, then one line per build step with the time it
    took, and returns the image. A failed step raises :class:`BuildError` naming the
    step, with the end of the log.
    """
    context, dockerfile_path = _context_and_dockerfile(context, dockerfile)
    if show:
        print(f"$ docker build -t {tag} -f {dockerfile_path}{f' --target {target}' if target else ''} {context}")
    log: list[str] = []
    step, started = "", time.monotonic()
    heartbeat = started
    try:
        stream = engine.client().api.build(
            path=str(context), dockerfile=str(dockerfile_path.resolve()), tag=tag,
            labels=_build_labels(lab), buildargs=buildargs or {}, target=target, rm=True, forcerm=True,
            decode=True)
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
    image = engine.client().images.get(tag)
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
    image = engine.client().images.get(tag)
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
    """Every image a lab builds says which lab and which run built it (see ``engine.RUN_ID``)."""
    return {**engine.labels(lab), engine.BUILT_BY: engine.RUN_ID}


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


def checked_build(context: str | Path, tag: str, *, lab: str, dockerfile: str | Path = "Dockerfile",
                  target: str | None = None):
    """The image that a student's Dockerfile builds *now*, built by the check itself (quietly, and
    from the build cache when nothing changed): a check inspects what the Dockerfile makes, not
    whatever ``tag`` happens to name. A Dockerfile that does not build fails the check with the
    step it stopped at. Within one process the result is reused until the Dockerfile or the
    build context changes."""
    context, path = _context_and_dockerfile(context, dockerfile, missing=RequirementNotMet)
    key = ("student", tag, str(path.resolve()), path.read_bytes(), target, _context_state(context))
    return _build_once(key, lambda: build(context, tag, lab=lab, dockerfile=dockerfile, target=target, show=False),
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
        if isinstance(found, RequirementNotMet):
            raise found
        return found
    try:
        found = make()
    except BuildError as exc:
        found = RequirementNotMet(f"{failure}: it stopped at {exc.step or 'the start'}: {exc.error}")
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
