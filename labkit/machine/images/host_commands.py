"""The host commands a stand-in build runs (logged, in a clean environment), the tarring of
root filesystems, and the guards around them: prerequisites, mounts left behind, one build at
a time."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from .catalog import ImagesError
from .progress import Progress


def run_logged(cmd: Sequence[str], log: Path, progress: Progress, *, what: str,
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
        for line in proc.stdout or ():  # always a pipe: stdout=PIPE above
            fh.write(line)
            progress.detail(line, milestone=milestone(line))
        rc = proc.wait()
    if rc != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise ImagesError(
            f"{what} failed (exit {rc}). Last lines of {log}:\n    " + "\n    ".join(tail)
        )


def child_env(**extra: str) -> dict[str, str]:
    """A clean environment for debootstrap/chroot: PATH, locale, proxies, our settings."""
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}
    for key in ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"):
        if os.environ.get(key):
            env[key] = os.environ[key]
    env.update(extra)
    return env


def check_builder_prerequisites() -> None:
    """Raise :class:`ImagesError` naming everything a rootfs build lacks (root, tools, keyring)."""
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


def tar_create(root: Path, dest: Path, log: Path, progress: Progress, *,
               keep_dev: bool = False) -> None:
    """Tar a root filesystem. Device nodes are kept only for trees chroot-ed into later;
    an image gets an empty /dev, as the container runtime provides one."""
    tmp = dest.with_name(dest.name + ".part")
    excludes = ["--exclude=./proc/*", "--exclude=./sys/*", "--exclude=./labkit",
                "--exclude=./debootstrap"] + ([] if keep_dev else ["--exclude=./dev/*"])
    run_logged(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=security.capability",
                "--sort=name", "-C", str(root), *excludes, "-cf", str(tmp), "."],
               log, progress, what=f"tar of {root}")
    tmp.rename(dest)


def tar_extract(src: Path, root: Path, log: Path, progress: Progress) -> None:
    """Unpack a root filesystem tar into ``root``, keeping owners, modes and capabilities."""
    root.mkdir(parents=True, exist_ok=True)
    run_logged(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", str(root),
                "-xpf", str(src)], log, progress, what=f"unpacking {src}")


def _mounted_under(path: Path) -> list[str]:
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    prefix = str(path.resolve()).rstrip("/") + "/"
    mounts = [line.split()[4] for line in lines if len(line.split()) > 4]
    return [m for m in mounts if (m + "/").startswith(prefix)]


def remove_tree(path: Path) -> None:
    """Delete a work tree, refusing (with the ``umount`` to run) while something is mounted in it."""
    if not path.exists():
        return
    busy = _mounted_under(path)
    if busy:  # never rm -rf through a mount (e.g. a /proc left by a killed debootstrap)
        raise ImagesError(f"{path} still has mounts ({', '.join(busy)}); unmount them "
                          f"(`umount -R {busy[0]}`) and retry")
    shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` for the block: one stand-in build at a time per cache."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
