"""Base images the labs build FROM, and faithful offline stand-ins for them.

Every lab Dockerfile starts ``FROM`` one of :data:`BASE_IMAGES`. :func:`ensure_base_images`
makes sure each exists in the local Docker engine:

1. already there (a pulled official image, or a stand-in built from the current recipe):
   nothing to do;
2. else ``docker pull`` it once, with a short timeout;
3. else build an offline *stand-in*: Debian (``debootstrap --variant=minbase``) plus the
   packages the official image has, finalised by a small Dockerfile. The recipes live in
   ``environments/base-images/`` (see its README.md for what the stand-ins are and how
   their sizes compare with the official images).

Stand-ins are labelled ``labkit.standin=true``, ``labkit.standin.of=<official name>`` and
``labkit.standin.recipe=<hash of the recipe files>``; a stand-in whose recipe (or the
host's CA bundle, which it carries) changed is rebuilt. Root filesystems are cached under
``~/.cache/labkit/base-images/`` keyed by the recipe hash, so a rebuild after
``docker rmi`` takes seconds.

Environment:
  LABKIT_DEBIAN_MIRROR           Debian archive URL (default: the host's apt sources for
                                 the suite, else debootstrap's default)
  LABKIT_DEBIAN_SECURITY_MIRROR  debian-security URL (default: host's apt sources, else
                                 derived from the archive URL)
  LABKIT_NO_PULL=1               do not try ``docker pull``; build stand-ins directly
  LABKIT_PULL_TIMEOUT            seconds without progress before a pull is given up (20)
  LABKIT_CA_BUNDLE               CA bundle to copy into stand-ins (default: the host's)
  LABKIT_CACHE_DIR               cache root (default: $XDG_CACHE_HOME/labkit or ~/.cache/labkit)
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Callable

__all__ = [
    "BASE_IMAGES",
    "BaseImage",
    "ImageResult",
    "ImagesError",
    "RECIPES_DIR",
    "cache_dir",
    "ensure_base_images",
    "image_state",
    "missing_base_images",
    "recipe_hash",
]

#: Where the stand-in recipes live (Dockerfiles, package lists, rootfs-setup.sh).
RECIPES_DIR = Path(__file__).resolve().parents[2] / "environments" / "base-images"

#: Bump when the Python side of the rootfs build changes in a way that changes content.
_ROOTFS_FORMAT = 1
_SETUP_SCRIPT = "rootfs-setup.sh"
_STANDIN_LABEL = "labkit.standin"
_OF_LABEL = "labkit.standin.of"
_RECIPE_LABEL = "labkit.standin.recipe"
_CA_LABEL = "labkit.standin.ca"
_CA_PATH_IN_IMAGE = "/etc/ssl/certs/ca-certificates.crt"
_HOST_CA_CANDIDATES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Alpine
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL
    "/etc/ssl/cert.pem",  # Arch, macOS-style
)


@dataclasses.dataclass(frozen=True)
class BaseImage:
    """One base image the labs use, and the recipe of its offline stand-in.

    ``packages`` and ``dockerfile`` name files in :data:`RECIPES_DIR`; together with
    ``rootfs-setup.sh`` and the fields below they are "the recipe" that is hashed.
    """

    name: str  #: the official reference, e.g. ``python:3.11-slim``
    packages: str  #: Debian package list installed into the stand-in's rootfs
    dockerfile: str  #: finalises the imported rootfs (config, CA bundle, labels)
    suite: str = "bookworm"  #: Debian release the official image is built on
    slim: bool = False  #: apply debian:*-slim's dpkg excludes (no docs/man/locales)
    drop_bytecode: bool = False  #: delete __pycache__ like the official python:*-slim
    official_size: int | None = None  #: bytes on disk of the official amd64 image
    smoke: tuple[str, ...] = ()  #: command run once in a freshly built stand-in


#: The one registry of base images. To add one (e.g. nginx): write its package list and
#: Dockerfile in environments/base-images/ and add an entry here.
BASE_IMAGES: dict[str, BaseImage] = {
    image.name: image
    for image in (
        BaseImage(
            name="python:3.11-slim",
            packages="python-3.11-slim.packages",
            dockerfile="python.Dockerfile",
            slim=True,
            drop_bytecode=True,
            official_size=130_010_000,  # python:3.11.16-slim-bookworm, amd64 (repo-info)
            smoke=("python", "-c", "import ssl, sqlite3, venv, pip; print('ok')"),
        ),
        BaseImage(
            name="python:3.11",
            packages="python-3.11.packages",
            dockerfile="python.Dockerfile",
            official_size=1_010_000_000,  # python:3.11.16-bookworm, amd64 (repo-info)
            smoke=("sh", "-c", "gcc --version >/dev/null && git --version >/dev/null"
                   " && python -c 'import sysconfig, ssl; print(sysconfig.get_paths()[\"include\"])'"),
        ),
        BaseImage(
            name="nginx:1.27",
            packages="nginx.packages",
            dockerfile="nginx.Dockerfile",
            slim=True,  # the official image is FROM debian:bookworm-slim
            official_size=None,  # not measured offline; nginx:1.22.1 (bullseye) is 141.7 MB per repo-info
            smoke=("sh", "-c", "nginx -t && curl --version >/dev/null && envsubst --version >/dev/null"),
        ),
    )
}


class ImagesError(RuntimeError):
    """A base image is missing and could be neither pulled nor built."""


@dataclasses.dataclass(frozen=True)
class ImageResult:
    """What :func:`ensure_base_images` did for one image."""

    name: str
    how: str  #: "present", "pulled" or "built stand-in"
    size: int  #: bytes, as ``docker image inspect`` reports
    standin: bool  #: True when the image is a labkit stand-in, not the official one
    image_id: str = ""
    seconds: float = 0.0

    def __str__(self) -> str:
        kind = "stand-in" if self.standin else "official"
        return f"{self.name}: {self.how} ({kind}, {_mb(self.size)})"


# --------------------------------------------------------------------------- recipes


def _recipe_bytes(image: BaseImage, recipes_dir: Path) -> dict[str, bytes]:
    files = {}
    for name in (image.packages, image.dockerfile, _SETUP_SCRIPT):
        path = recipes_dir / name
        try:
            files[name] = path.read_bytes()
        except OSError as exc:
            raise ImagesError(f"stand-in recipe for {image.name}: cannot read {path}: {exc}") from exc
    return files


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def _file_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def debootstrap_key(suite: str) -> str:
    """Cache key of the plain ``debootstrap --variant=minbase SUITE`` tree."""
    return _digest({"format": _ROOTFS_FORMAT, "suite": suite, "variant": "minbase"})[:16]


def rootfs_key(image: BaseImage, recipes_dir: Path = RECIPES_DIR) -> str:
    """Cache key of a stand-in's finished root filesystem (everything before docker)."""
    files = _recipe_bytes(image, recipes_dir)
    return _digest({
        "format": _ROOTFS_FORMAT,
        "base": debootstrap_key(image.suite),
        "suite": image.suite,
        "slim": image.slim,
        "drop_bytecode": image.drop_bytecode,
        "packages": _file_digest(files[image.packages]),
        "setup": _file_digest(files[_SETUP_SCRIPT]),
    })[:16]


def recipe_hash(image: BaseImage | str, recipes_dir: Path = RECIPES_DIR) -> str:
    """Hash of a stand-in's whole recipe: the value of its ``labkit.standin.recipe`` label.

    It changes when the package list, rootfs-setup.sh, the Dockerfile or the settings in
    :data:`BASE_IMAGES` change, and only then (not with the host, mirror or architecture).
    """
    image = _lookup(image) if isinstance(image, str) else image
    files = _recipe_bytes(image, recipes_dir)
    return _digest({
        "name": image.name,
        "rootfs": rootfs_key(image, recipes_dir),
        "dockerfile": _file_digest(files[image.dockerfile]),
    })[:16]


def _lookup(name: str) -> BaseImage:
    try:
        return BASE_IMAGES[name]
    except KeyError:
        raise ImagesError(
            f"unknown base image {name!r}; labkit knows {', '.join(sorted(BASE_IMAGES))}"
        ) from None


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", name).strip("-")


# --------------------------------------------------------------------------- host facts


def cache_dir() -> Path:
    """Root of labkit's cache (``$LABKIT_CACHE_DIR`` or ``~/.cache/labkit``)."""
    if os.environ.get("LABKIT_CACHE_DIR"):
        return Path(os.environ["LABKIT_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "labkit"


def host_ca_bundle() -> Path | None:
    """The CA bundle stand-ins carry: ``$LABKIT_CA_BUNDLE`` or the host's system bundle."""
    if os.environ.get("LABKIT_CA_BUNDLE"):
        path = Path(os.environ["LABKIT_CA_BUNDLE"])
        if not path.is_file():
            raise ImagesError(f"LABKIT_CA_BUNDLE={path} is not a file")
        return path
    for candidate in _HOST_CA_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    return None


def ca_digest(bundle: Path | None = None) -> str:
    """Value of the ``labkit.standin.ca`` label for the CA bundle stand-ins carry now."""
    bundle = host_ca_bundle() if bundle is None else bundle
    if bundle is None:
        return "none"
    return _file_digest(bundle.read_bytes())[:16]


_PEM_RE = re.compile(
    rb"-----BEGIN CERTIFICATE-----\s*(.+?)\s*-----END CERTIFICATE-----", re.DOTALL
)


def pem_certificates(data: bytes) -> dict[str, bytes]:
    """The certificates in a PEM bundle, keyed by their (whitespace-free) base64 body."""
    certs = {}
    for match in _PEM_RE.finditer(data):
        body = re.sub(rb"\s+", b"", match.group(1))
        certs[body.decode("ascii", "replace")] = match.group(0) + b"\n"
    return certs


def extra_certificates(host_bundle: bytes, debian_bundle: bytes) -> list[bytes]:
    """Certificates the host trusts that Debian's bundle lacks (e.g. a proxy's CA)."""
    debian = pem_certificates(debian_bundle)
    return [pem for body, pem in pem_certificates(host_bundle).items() if body not in debian]


def parse_apt_sources(texts: Iterable[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """(URI, suites) of every enabled ``deb`` source in one-line or deb822 files.

    ``texts`` yields (file name, content); deb822 files end in ``.sources``.
    """
    sources: list[tuple[str, list[str]]] = []
    for fname, text in texts:
        if fname.endswith(".sources"):
            for stanza in re.split(r"\n\s*\n", text):
                fields: dict[str, str] = {}
                key = None
                for line in stanza.splitlines():
                    if not line.strip() or line.lstrip().startswith("#"):
                        continue
                    if line[0] in " \t" and key:
                        fields[key] += " " + line.strip()
                        continue
                    key, _, value = line.partition(":")
                    key = key.strip().lower()
                    fields[key] = value.strip()
                if "deb" not in fields.get("types", "").split():
                    continue
                if fields.get("enabled", "yes").lower() == "no":
                    continue
                for uri in fields.get("uris", "").split():
                    sources.append((uri, fields.get("suites", "").split()))
        else:
            for line in text.splitlines():
                line = line.split("#", 1)[0].strip()
                parts = line.split()
                if len(parts) < 3 or parts[0] != "deb":
                    continue
                rest = parts[1:]
                if rest[0].startswith("["):  # options: deb [arch=amd64 signed-by=...] URI ...
                    while rest and not rest[0].endswith("]"):
                        rest = rest[1:]
                    rest = rest[1:]
                if len(rest) >= 2:
                    sources.append((rest[0], [rest[1]]))
    return [(uri, suites) for uri, suites in sources if uri.startswith(("http://", "https://"))]


def _host_apt_sources() -> list[tuple[str, list[str]]]:
    texts = []
    main = Path("/etc/apt/sources.list")
    files = [main] if main.is_file() else []
    d = Path("/etc/apt/sources.list.d")
    if d.is_dir():
        files += sorted(p for p in d.iterdir() if p.suffix in (".list", ".sources"))
    for path in files:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            texts.append((path.name, path.read_text()))
    return parse_apt_sources(texts)


def debian_mirrors(suite: str, sources: list[tuple[str, list[str]]] | None = None
                   ) -> tuple[str | None, str | None]:
    """(archive, security) URLs to build SUITE from; None means "debootstrap's default".

    ``$LABKIT_DEBIAN_MIRROR`` / ``$LABKIT_DEBIAN_SECURITY_MIRROR`` win; else the host's
    apt sources that serve the suite; else None (rootfs-setup.sh then derives the
    security URL from the archive URL debootstrap used).
    """
    sources = _host_apt_sources() if sources is None else sources
    archive = os.environ.get("LABKIT_DEBIAN_MIRROR") or next(
        (uri for uri, suites in sources if suite in suites), None)
    security = os.environ.get("LABKIT_DEBIAN_SECURITY_MIRROR") or next(
        (uri for uri, suites in sources if f"{suite}-security" in suites), None)
    return archive, security


def _host_arch() -> str:
    try:
        return subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return os.uname().machine


# --------------------------------------------------------------------------- progress


def _mb(size: int | None) -> str:
    return "?" if size is None else f"{size / 1e6:,.0f} MB"


class _Progress:
    """Progress for a terminal (a live status line) or a log / Jupyter cell (plain lines)."""

    HEARTBEAT = 30.0  # seconds between "still working" lines when not live

    def __init__(self, console: Any = None) -> None:
        if console is None:
            from rich.console import Console

            console = Console()
        self.console = console
        self.live = bool(console.is_terminal and not console.is_jupyter
                         and not console.is_dumb_terminal)
        self._status: Any = None
        self._title = ""
        self._last_print = time.monotonic()

    def print(self, text: str) -> None:
        self.console.print(text, highlight=False, soft_wrap=True)
        self._last_print = time.monotonic()

    @contextlib.contextmanager
    def step(self, title: str, fail_mark: str = "[red]✗[/]") -> Iterator[None]:
        """A timed step: "✓ title (12 s)" when it ends, "✗ title: error" when it raises."""
        start = time.monotonic()
        self._title = title
        try:
            if self.live:
                with self.console.status(f"{_escape(title)} ...") as status:
                    self._status = status
                    try:
                        yield
                    finally:
                        self._status = None
            else:
                self.print(f"  {_escape(title)} ...")
                yield
        except BaseException as exc:
            reason = getattr(exc, "explanation", None) or str(exc) or type(exc).__name__
            reason = _one_line(str(reason), 200)
            self.print(f"  {fail_mark} {_escape(title)}: {_escape(reason)}")
            raise
        self.print(f"  [green]✓[/] {_escape(title)} [dim]({time.monotonic() - start:.0f} s)[/]")

    def detail(self, text: str, milestone: bool = False) -> None:
        """A sub-step: shown on the live line; printed when a milestone or as a heartbeat."""
        text = text.strip()
        if not text:
            return
        if self.live and self._status is not None:
            self._status.update(f"{_escape(self._title)}: [dim]{_escape(text[:100])}[/]")
        elif milestone:
            self.print(f"    {_escape(text)}")
        elif time.monotonic() - self._last_print > self.HEARTBEAT:
            self.print(f"    [dim]… {_escape(text[:120])}[/]")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


# --------------------------------------------------------------------------- docker


def _docker_client(timeout: int = 60):
    import docker

    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except Exception as exc:  # docker raises a variety of errors here
        raise ImagesError(
            f"the Docker engine is not reachable ({exc}). Start Docker (Docker Desktop, or "
            "`sudo systemctl start docker` / `sudo dockerd &`) and run `labkit doctor`."
        ) from exc
    return client


def _inspect(client, name: str) -> dict | None:
    import docker

    try:
        return client.api.inspect_image(name)
    except docker.errors.ImageNotFound:
        return None
    except docker.errors.APIError as exc:
        raise ImagesError(f"cannot inspect image {name}: {exc}") from exc


def _labels(attrs: dict | None) -> dict[str, str]:
    return ((attrs or {}).get("Config") or {}).get("Labels") or {}


def image_state(name: str, attrs: dict | None, *, recipe: str | None = None,
                ca: str | None = None) -> str:
    """Classify an image by its ``docker image inspect`` data.

    Returns "missing", "official" (present, not a labkit stand-in), "current" (a stand-in
    built from ``recipe`` carrying CA bundle ``ca``) or "stale" (an older stand-in).
    """
    if attrs is None:
        return "missing"
    labels = _labels(attrs)
    if labels.get(_STANDIN_LABEL) != "true":
        return "official"
    image = BASE_IMAGES.get(name)
    if recipe is None:
        recipe = recipe_hash(image) if image else ""
    if ca is None:
        ca = ca_digest()
    if labels.get(_OF_LABEL) == name and labels.get(_RECIPE_LABEL) == recipe \
            and labels.get(_CA_LABEL) == ca:
        return "current"
    return "stale"


def missing_base_images(names: Iterable[str] | None = None) -> list[str]:
    """The base images that do not exist at all (an out-of-date stand-in still works)."""
    client = _docker_client(timeout=10)
    return [name for name in (names or BASE_IMAGES) if _inspect(client, name) is None]


def _split_ref(name: str) -> tuple[str, str]:
    repo, _, tag = name.rpartition(":")
    if not repo or "/" in tag:
        return name, "latest"
    return repo, tag


def _try_pull(name: str, progress: _Progress) -> str | None:
    """Pull once; None on success, else why it failed. Never waits long for a dead registry."""
    if os.environ.get("LABKIT_NO_PULL", "").strip() not in ("", "0"):
        return "docker pull skipped: LABKIT_NO_PULL is set"
    import docker
    import requests
    import urllib3

    timeout = int(float(os.environ.get("LABKIT_PULL_TIMEOUT", "20")))
    repo, tag = _split_ref(name)
    try:
        api = docker.from_env(timeout=timeout).api
        with progress.step(f"docker pull {name}", fail_mark="[yellow]✗[/]"):
            for event in api.pull(repo, tag=tag, stream=True, decode=True):
                if "error" in event:
                    raise _PullFailed(str(event["error"]))
                status = event.get("status", "")
                if status and event.get("id"):
                    status = f"{event['id']}: {status} {event.get('progress', '')}"
                progress.detail(status, milestone=status.startswith(("Digest", "Status")))
    except (requests.exceptions.Timeout, urllib3.exceptions.ReadTimeoutError):
        return f"no answer from the registry within {timeout} s"
    except Exception as exc:  # any failure means "not pulled": the stand-in is the fallback
        reason = getattr(exc, "explanation", None) or str(exc)  # the daemon's own words
        return _one_line(str(reason)) or type(exc).__name__
    return None


class _PullFailed(Exception):
    pass


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


# --------------------------------------------------------------------------- commands


def _run_logged(cmd: Sequence[str], log: Path, progress: _Progress, *, what: str,
                env: dict[str, str] | None = None,
                milestone: Callable[[str], bool] = lambda line: False) -> None:
    """Run a command, appending its output to ``log`` and feeding lines to ``progress``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as fh:
        fh.write(f"\n$ {' '.join(cmd)}\n")
        fh.flush()
        try:
            proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, text=True, errors="replace",
                                    env=env)
        except OSError as exc:
            raise ImagesError(f"{what}: cannot run {cmd[0]}: {exc}") from exc
        assert proc.stdout is not None
        for line in proc.stdout:
            fh.write(line)
            progress.detail(line, milestone=milestone(line))
        rc = proc.wait()
    if rc != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise ImagesError(
            f"{what} failed (exit {rc}). Last lines of {log}:\n    " + "\n    ".join(tail)
        )


def _child_env(**extra: str) -> dict[str, str]:
    """A clean environment for debootstrap/chroot: PATH, locale, proxies, our settings."""
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}
    for key in ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"):
        if os.environ.get(key):
            env[key] = os.environ[key]
    env.update(extra)
    return env


def _check_builder_prerequisites() -> None:
    problems = []
    if os.name != "posix" or not hasattr(os, "geteuid"):
        raise ImagesError("offline stand-ins can only be built on Linux")
    if os.geteuid() != 0:
        problems.append("building a stand-in needs root (debootstrap, chroot): run "
                        "`labkit images` as root, e.g. `sudo .venv/bin/labkit images`")
    for tool, package in (("debootstrap", "debootstrap"), ("unshare", "util-linux"),
                          ("chroot", "coreutils"), ("tar", "tar")):
        if shutil.which(tool) is None:
            problems.append(f"`{tool}` is missing (apt-get install {package})")
    if not Path("/usr/share/keyrings/debian-archive-keyring.gpg").is_file():
        problems.append("Debian's archive keyring is missing (apt-get install debian-archive-keyring)")
    if problems:
        raise ImagesError("; ".join(problems))


def _tar_create(root: Path, dest: Path, log: Path, progress: _Progress, *,
                keep_dev: bool = False) -> None:
    """Tar a root filesystem. Device nodes are kept only for trees chroot-ed into later;
    an image gets an empty /dev, as the container runtime provides one."""
    tmp = dest.with_name(dest.name + ".part")
    excludes = ["--exclude=./proc/*", "--exclude=./sys/*", "--exclude=./labkit",
                "--exclude=./debootstrap"] + ([] if keep_dev else ["--exclude=./dev/*"])
    _run_logged(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=security.capability",
                 "--sort=name", "-C", str(root), *excludes, "-cf", str(tmp), "."],
                log, progress, what=f"tar of {root}")
    tmp.rename(dest)


def _tar_extract(src: Path, root: Path, log: Path, progress: _Progress) -> None:
    root.mkdir(parents=True, exist_ok=True)
    _run_logged(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", str(root),
                 "-xpf", str(src)], log, progress, what=f"unpacking {src}")


def _mounted_under(path: Path) -> list[str]:
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    prefix = str(path.resolve()).rstrip("/") + "/"
    mounts = [line.split()[4] for line in lines if len(line.split()) > 4]
    return [m for m in mounts if (m + "/").startswith(prefix)]


def _remove_tree(path: Path) -> None:
    if not path.exists():
        return
    busy = _mounted_under(path)
    if busy:  # never rm -rf through a mount (e.g. a /proc left by a killed debootstrap)
        raise ImagesError(f"{path} still has mounts ({', '.join(busy)}); unmount them "
                          f"(`umount -R {busy[0]}`) and retry")
    shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- stand-in build


class _Builder:
    def __init__(self, client, progress: _Progress, *, force: bool,
                 recipes_dir: Path = RECIPES_DIR) -> None:
        self.client = client
        self.progress = progress
        self.force = force
        self.recipes_dir = recipes_dir
        self.root = cache_dir() / "base-images"
        self.arch = _host_arch()
        self.logs = self.root / "logs"
        self.made: set[Path] = set()  # cache files written by this run (valid even if forced)

    def cached(self, *paths: Path) -> bool:
        return all(p.is_file() for p in paths) and (
            not self.force or all(p in self.made for p in paths))

    # -- rootfs ---------------------------------------------------------------------
    def debootstrap_tar(self, suite: str, log: Path) -> Path:
        tar = self.root / "debootstrap" / f"{suite}-minbase-{self.arch}-{debootstrap_key(suite)}.tar"
        if self.cached(tar):
            self.progress.print(f"  [dim]using cached debootstrap {suite} ({tar})[/]")
            return tar
        tar.parent.mkdir(parents=True, exist_ok=True)
        work = self.root / "work" / f"debootstrap-{suite}-{os.getpid()}"
        _remove_tree(work)
        archive, _ = debian_mirrors(suite)
        cmd = ["unshare", "--mount", "--propagation", "private", "--",
               "debootstrap", "--variant=minbase", suite, str(work)]
        if archive:
            cmd.append(archive)
        try:
            with self.progress.step(f"debootstrap --variant=minbase {suite} "
                                    f"({archive or 'debootstrap default mirror'}, {self.arch})"):
                seen: set[str] = set()

                def stage(line: str) -> bool:  # print each debootstrap stage once
                    words = line.split()
                    if len(words) < 2 or words[0] not in ("I:", "W:", "E:"):
                        return False
                    key = words[0] + words[1]
                    if words[0] != "I:" or key not in seen:
                        seen.add(key)
                        return True
                    return False

                _run_logged(cmd, log, self.progress, what="debootstrap", env=_child_env(),
                            milestone=stage)
                _tar_create(work, tar, log, self.progress, keep_dev=True)
        finally:
            _remove_tree(work)
        self.made.add(tar)
        return tar

    def rootfs_files(self, image: BaseImage, key: str) -> tuple[Path, Path, Path]:
        """(rootfs tar, its metadata, Debian's CA bundle in it) in the cache."""
        stem = f"{_slug(image.name)}-{self.arch}-{key}"
        d = self.root / "rootfs"
        return d / f"{stem}.tar", d / f"{stem}.json", d / f"{stem}.ca.pem"

    def rootfs(self, image: BaseImage, log: Path) -> tuple[Path, dict]:
        key = rootfs_key(image, self.recipes_dir)
        tar, meta_path, ca_path = self.rootfs_files(image, key)
        if self.cached(tar, meta_path):
            self.progress.print(f"  [dim]using cached root filesystem ({tar})[/]")
            return tar, json.loads(meta_path.read_text())
        _check_builder_prerequisites()
        base = self.debootstrap_tar(image.suite, log)
        tar.parent.mkdir(parents=True, exist_ok=True)
        work = self.root / "work" / f"{_slug(image.name)}-{os.getpid()}"
        _remove_tree(work)
        start = time.monotonic()
        archive, security = debian_mirrors(image.suite)
        try:
            with self.progress.step(f"install {image.packages} into the root filesystem"):
                _tar_extract(base, work, log, self.progress)
                (work / "labkit").mkdir()
                shutil.copy(self.recipes_dir / _SETUP_SCRIPT, work / "labkit" / "setup.sh")
                shutil.copy(self.recipes_dir / image.packages, work / "labkit" / "packages")
                resolv = work / "etc" / "resolv.conf"
                if resolv.is_symlink() or resolv.exists():
                    resolv.unlink()
                with contextlib.suppress(OSError):
                    shutil.copyfile("/etc/resolv.conf", resolv)  # follows the host's symlink
                env = _child_env(
                    LABKIT_SUITE=image.suite,
                    LABKIT_MIRROR=archive or "",
                    LABKIT_SECURITY_MIRROR=security or "",
                    LABKIT_SLIM="1" if image.slim else "0",
                    LABKIT_DROP_BYTECODE="1" if image.drop_bytecode else "0",
                )
                # a private mount namespace: /proc goes away with the process, whatever happens
                cmd = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                       'mount -t proc proc "$1/proc" && exec chroot "$1" /bin/sh /labkit/setup.sh',
                       "sh", str(work)]
                _run_logged(cmd, log, self.progress, what=f"rootfs-setup.sh for {image.name}",
                            env=env, milestone=lambda line: line.startswith("labkit-rootfs:"))
                facts = {}
                facts_file = work / "labkit" / "facts"
                if facts_file.is_file():
                    for line in facts_file.read_text().splitlines():
                        k, sep, v = line.partition("=")
                        if sep and k.strip():
                            facts[k.strip()] = v.strip()
                debian_ca = work / _CA_PATH_IN_IMAGE.lstrip("/")
                if debian_ca.is_file():
                    shutil.copyfile(debian_ca, ca_path)
                _tar_create(work, tar, log, self.progress)
        finally:
            _remove_tree(work)
        meta = {
            "name": image.name,
            "rootfs_key": key,
            "arch": self.arch,
            "suite": image.suite,
            "mirror": archive,
            "facts": facts,
            "seconds": round(time.monotonic() - start, 1),
            "tar_bytes": tar.stat().st_size,
            "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        meta_path.write_text(json.dumps(meta, indent=2) + "\n")
        self.made.update((tar, meta_path))
        # root filesystems of older recipes of this image are of no further use
        for old in tar.parent.glob(f"{_slug(image.name)}-{self.arch}-*"):
            if not old.name.startswith(f"{_slug(image.name)}-{self.arch}-{key}."):
                with contextlib.suppress(OSError):
                    old.unlink()
        return tar, meta

    # -- image ----------------------------------------------------------------------
    def build(self, image: BaseImage, previous: dict | None) -> dict:
        start = time.monotonic()
        log = self.logs / f"{_slug(image.name)}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"labkit stand-in build of {image.name}, {time.ctime()}\n")
        tar, meta = self.rootfs(image, log)
        recipe = recipe_hash(image, self.recipes_dir)
        bundle = host_ca_bundle()
        ca = ca_digest(bundle)
        api = self.client.api
        with tempfile.TemporaryDirectory(prefix="labkit-standin-") as ctx_name:
            ctx = Path(ctx_name)
            shutil.copy(self.recipes_dir / image.dockerfile, ctx / "Dockerfile")
            debian_ca_file = self.rootfs_files(image, meta["rootfs_key"])[2]
            debian_ca = debian_ca_file.read_bytes() if debian_ca_file.is_file() else b""
            if bundle is None:
                self.progress.print("  [yellow]no host CA bundle found: the stand-in keeps "
                                    "Debian's own[/]")
                (ctx / "ca-certificates.crt").write_bytes(debian_ca)
                extras: list[bytes] = []
            else:
                host = bundle.read_bytes()
                (ctx / "ca-certificates.crt").write_bytes(host)
                extras = extra_certificates(host, debian_ca) if debian_ca else []
            (ctx / "host-ca").mkdir()
            for i, pem in enumerate(extras, 1):
                (ctx / "host-ca" / f"host-{i:02d}.crt").write_bytes(pem)
            with self.progress.step(f"docker import {_mb(tar.stat().st_size)} root filesystem"):
                out = api.import_image_from_file(str(tar))
                match = re.search(r"sha256:[0-9a-f]{64}", str(out))
                if not match:
                    raise ImagesError(f"docker import of {tar} gave no image id: {out!r}")
                base_id = match.group(0)
            buildargs = dict(meta.get("facts") or {})
            buildargs.update(BASE=base_id, OFFICIAL=image.name, RECIPE=recipe, CA_DIGEST=ca)
            try:
                with self.progress.step(f"docker build {image.name} from {image.dockerfile}"
                                        + (f" (+{len(extras)} host CA)" if extras else "")):
                    with log.open("a") as fh:
                        for event in api.build(path=str(ctx), tag=image.name, buildargs=buildargs,
                                               rm=True, forcerm=True, pull=False, decode=True):
                            if "error" in event:
                                fh.write(f"ERROR: {event['error']}\n")
                                raise ImagesError(f"docker build of the {image.name} stand-in "
                                                  f"failed: {event['error'].strip()} (log: {log})")
                            text = event.get("stream", "")
                            fh.write(text)
                            self.progress.detail(text, milestone=text.startswith("Step "))
            finally:
                # the imported layer now lives on as the stand-in's parent; drop the id
                with contextlib.suppress(Exception):
                    api.remove_image(base_id, noprune=False)
        attrs = _inspect(self.client, image.name)
        if attrs is None or image_state(image.name, attrs, recipe=recipe, ca=ca) != "current":
            raise ImagesError(f"the {image.name} stand-in was built but is not tagged as "
                              f"expected (log: {log})")
        if image.smoke:
            with self.progress.step(f"smoke test: {' '.join(image.smoke)[:60]}"):
                try:
                    self.client.containers.run(image.name, list(image.smoke), remove=True)
                except Exception as exc:
                    with contextlib.suppress(Exception):  # never leave a broken image tagged
                        api.remove_image(image.name)
                    raise ImagesError(f"the new {image.name} stand-in fails its smoke test "
                                      f"({_one_line(str(exc))}); log: {log}") from exc
        if previous is not None and previous.get("Id") != attrs.get("Id"):
            # the replaced stand-in is untagged now: free its space unless something uses it
            with contextlib.suppress(Exception):
                api.remove_image(previous["Id"])
        with log.open("a") as fh:
            fh.write(f"built {image.name} {attrs['Id']} size={attrs.get('Size')} "
                     f"in {time.monotonic() - start:.0f} s\n")
        return attrs


# --------------------------------------------------------------------------- public API


def ensure_base_images(names: Iterable[str] | None = None, *, force: bool = False,
                       console: Any = None) -> list[ImageResult]:
    """Make sure every base image in ``names`` (default: all of :data:`BASE_IMAGES`) exists.

    For each image: if it is present (an official image, or a stand-in built from the
    current recipe and carrying the host's current CA bundle) nothing happens. Otherwise
    it is pulled once (a short timeout; ``LABKIT_NO_PULL=1`` skips this) and, if that
    fails, an offline stand-in is built (needs root, ``debootstrap`` and a Debian mirror).

    ``force=True`` rebuilds every stand-in from scratch, ignoring the cache in
    ``~/.cache/labkit`` (official images are re-pulled; they are kept if that fails).
    ``console`` is a ``rich.console.Console`` for progress (default: a new one; pass
    ``Console(quiet=True)`` for silence).

    Returns one :class:`ImageResult` per image; raises :class:`ImagesError` with what
    failed and what to do about it.
    """
    images = [_lookup(n) for n in (list(BASE_IMAGES) if names is None else list(names))]
    progress = _Progress(console)
    client = _docker_client()
    builder = _Builder(client, progress, force=force)  # shares caches made in this call
    return [_ensure_one(client, image, progress, builder, force=force) for image in images]


def _ensure_one(client, image: BaseImage, progress: _Progress, builder: _Builder, *,
                force: bool) -> ImageResult:
    start = time.monotonic()
    attrs = _inspect(client, image.name)
    state = image_state(image.name, attrs)
    if state == "official" and not force or state == "current" and not force:
        result = _result(image.name, "present", attrs, start)
        progress.print(f"[green]✓[/] {result}")
        return result

    progress.print(f"[bold]{image.name}[/]: "
                   + {"missing": "not in the Docker engine",
                      "stale": "stand-in built from an older recipe or CA bundle",
                      "official": "forced: updating the official image",
                      "current": "forced: rebuilding the stand-in"}[state])
    why_not_pulled = _try_pull(image.name, progress) if state != "current" else "forced rebuild"
    if why_not_pulled is None:
        if state == "stale":  # the official image replaced an old stand-in: drop it
            with contextlib.suppress(Exception):
                client.api.remove_image(attrs["Id"])
        result = _result(image.name, "pulled", _inspect(client, image.name), start)
        progress.print(f"[green]✓[/] {result}")
        return result
    if state == "official":  # forced, the pull failed: keep the official image we have
        progress.print(f"  [yellow]pull failed ({why_not_pulled}); keeping the image present[/]")
        return _result(image.name, "present", attrs, start)
    if why_not_pulled.startswith("docker pull skipped"):
        progress.print(f"  [dim]{_escape(why_not_pulled)}[/]")
    progress.print(f"  building an offline stand-in for {image.name} "
                   f"(environments/base-images/{image.packages})")

    try:
        with _lock(builder.root / "lock"):
            if not force:  # someone else may have built it while we waited for the lock
                attrs = _inspect(client, image.name)
                if image_state(image.name, attrs) in ("current", "official"):
                    return _result(image.name, "present", attrs, start)
            new_attrs = builder.build(image, attrs if state == "stale" or force else None)
    except ImagesError as exc:
        still = _inspect(client, image.name) if state == "stale" and not force else None
        if still is not None:  # an older stand-in still works: keep it, loudly
            progress.print(f"  [yellow]could not rebuild the stand-in ({_escape(str(exc))}); "
                           f"keeping the older one[/]")
            return _result(image.name, "present", still, start)
        pulled = (why_not_pulled if why_not_pulled.startswith("docker pull skipped")
                  or why_not_pulled == "forced rebuild"
                  else f"`docker pull` failed: {why_not_pulled}")
        raise ImagesError(
            f"{image.name} is not available ({pulled}) and its offline stand-in could not be "
            f"built: {exc}\n"
            f"Fix the cause above and run `labkit images` again, or load the official image "
            f"yourself (`docker pull {image.name}`, or `docker load` / a registry mirror)."
        ) from exc
    result = _result(image.name, "built stand-in", new_attrs, start)
    progress.print(f"[green]✓[/] {result} in {result.seconds:.0f} s "
                   f"[dim](official: {_mb(image.official_size)})[/]")
    return result


def _result(name: str, how: str, attrs: dict | None, start: float) -> ImageResult:
    attrs = attrs or {}
    return ImageResult(
        name=name, how=how, size=int(attrs.get("Size") or 0),
        standin=_labels(attrs).get(_STANDIN_LABEL) == "true",
        image_id=attrs.get("Id", ""), seconds=round(time.monotonic() - start, 1),
    )
