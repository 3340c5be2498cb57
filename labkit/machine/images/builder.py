"""The offline stand-in of a base image, built in three cached steps: a plain debootstrap tree
per suite, the image's root filesystem (its packages installed by rootfs-setup.sh in a chroot),
and the image (``docker import`` of that rootfs, finalised by the recipe's Dockerfile)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from ...core.names import slug
from .catalog import (RECIPES_DIR, SETUP_SCRIPT, BaseImage, ImagesError, debootstrap_key, recipe_hash,
                      rootfs_key)
from .host_commands import (check_builder_prerequisites, child_env, remove_tree, run_logged, tar_create,
                       tar_extract)
from .host import ca_digest, cache_dir, debian_mirrors, extra_certificates, host_arch, host_ca_bundle
from .progress import Progress, mb, one_line
from .state import image_state, inspect

_CA_PATH_IN_IMAGE = "/etc/ssl/certs/ca-certificates.crt"


def file_name(image: BaseImage) -> str:
    """An image's name as its cached files and log are named ("python-3.11-slim"): a cached
    root filesystem is found by it, so it must never change for a name in BASE_IMAGES."""
    return slug(image.name, keep=".")


class Builder:
    """Builds stand-ins for one :func:`ensure_base_images` call, sharing the caches it makes."""

    def __init__(self, client, progress: Progress, *, force: bool,
                 recipes_dir: Path = RECIPES_DIR) -> None:
        self.client = client
        self.progress = progress
        self.force = force
        self.recipes_dir = recipes_dir
        self.root = cache_dir() / "base-images"
        self.arch = host_arch()
        self.logs = self.root / "logs"
        self.made: set[Path] = set()  # cache files written by this run (valid even if forced)

    def cached(self, *paths: Path) -> bool:
        """Whether the cache files exist and may be used (when forced: only those made now)."""
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
        remove_tree(work)
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

                run_logged(cmd, log, self.progress, what="debootstrap", env=child_env(),
                            milestone=stage)
                tar_create(work, tar, log, self.progress, keep_dev=True)
        finally:
            remove_tree(work)
        self.made.add(tar)
        return tar

    def rootfs_files(self, image: BaseImage, key: str) -> tuple[Path, Path, Path]:
        """(rootfs tar, its metadata, Debian's CA bundle in it) in the cache."""
        stem = f"{file_name(image)}-{self.arch}-{key}"
        d = self.root / "rootfs"
        return d / f"{stem}.tar", d / f"{stem}.json", d / f"{stem}.ca.pem"

    def rootfs(self, image: BaseImage, log: Path) -> tuple[Path, dict]:
        key = rootfs_key(image, self.recipes_dir)
        tar, meta_path, ca_path = self.rootfs_files(image, key)
        if self.cached(tar, meta_path):
            self.progress.print(f"  [dim]using cached root filesystem ({tar})[/]")
            return tar, json.loads(meta_path.read_text())
        check_builder_prerequisites()
        base = self.debootstrap_tar(image.suite, log)
        tar.parent.mkdir(parents=True, exist_ok=True)
        work = self.root / "work" / f"{file_name(image)}-{os.getpid()}"
        remove_tree(work)
        start = time.monotonic()
        archive, security = debian_mirrors(image.suite)
        try:
            with self.progress.step(f"install {image.packages} into the root filesystem"):
                tar_extract(base, work, log, self.progress)
                (work / "labkit").mkdir()
                shutil.copy(self.recipes_dir / SETUP_SCRIPT, work / "labkit" / "setup.sh")
                shutil.copy(self.recipes_dir / image.packages, work / "labkit" / "packages")
                resolv = work / "etc" / "resolv.conf"
                if resolv.is_symlink() or resolv.exists():
                    resolv.unlink()
                with contextlib.suppress(OSError):
                    shutil.copyfile("/etc/resolv.conf", resolv)  # follows the host's symlink
                env = child_env(
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
                run_logged(cmd, log, self.progress, what=f"rootfs-setup.sh for {image.name}",
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
                tar_create(work, tar, log, self.progress)
        finally:
            remove_tree(work)
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
        for old in tar.parent.glob(f"{file_name(image)}-{self.arch}-*"):
            if not old.name.startswith(f"{file_name(image)}-{self.arch}-{key}."):
                with contextlib.suppress(OSError):
                    old.unlink()
        return tar, meta

    # -- image ----------------------------------------------------------------------
    def build(self, image: BaseImage, previous: dict | None) -> dict:
        start = time.monotonic()
        log = self.logs / f"{file_name(image)}.log"
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
            with self.progress.step(f"docker import {mb(tar.stat().st_size)} root filesystem"):
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
        attrs = inspect(self.client, image.name)
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
                                      f"({one_line(str(exc))}); log: {log}") from exc
        if previous is not None and previous.get("Id") != attrs.get("Id"):
            # the replaced stand-in is untagged now: free its space unless something uses it
            with contextlib.suppress(Exception):
                api.remove_image(previous["Id"])
        with log.open("a") as fh:
            fh.write(f"built {image.name} {attrs['Id']} size={attrs.get('Size')} "
                     f"in {time.monotonic() - start:.0f} s\n")
        return attrs
