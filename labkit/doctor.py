"""The environment doctor: what the labs need, what is here, and how to fix what is not.

`collect()` gives the rows as data (lab 00 checks them); `run_doctor()` prints them and
returns a non-zero exit code when something required is missing. It never changes
anything on the machine: fixes are only printed.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

from rich.console import Console
from rich.text import Text

from labkit import probes

OK, WARN, MISSING, OPTIONAL = "OK", "WARN", "MISSING", "optional"
LOW_DISK_BYTES = 10 * 10**9
PRUNE_HINT = ("free space: `docker image prune -a`, `docker container prune`, `docker system prune -a` "
              "(see the FAQ's \"no space left on device\"; they delete unused images and stopped containers)")

_STYLES = {OK: "green", WARN: "yellow", MISSING: "bold red", OPTIONAL: "cyan"}


@dataclass(frozen=True)
class Item:
    name: str
    status: str          # OK, WARN, MISSING or optional
    found: str           # what is there (versions), or "not found"
    fix: str = ""        # how to fix it; empty when OK
    required: bool = False


def _item(name: str, finding: probes.Finding, *, required: bool = False, absent: str = OPTIONAL) -> Item:
    if finding.reason is None:
        return Item(name, OK, finding.found or "", required=required)
    return Item(name, MISSING if required else absent, finding.found or "not found", finding.reason, required)


def _disk() -> Item:
    name = "Disk free for Docker"
    disk = probes.docker_disk_free()
    if disk is None:
        why = "engine not reachable" if probes.docker_reason() else "Docker's data root is not on this machine"
        return Item(name, WARN, f"unknown ({why})", "check free space where the engine keeps images")
    found = f"{disk.free_bytes / 10**9:.1f} GB free under {disk.where}"
    if disk.free_bytes < LOW_DISK_BYTES:
        return Item(name, WARN, found, f"the labs build several images; keep 10 GB free — {PRUNE_HINT}")
    return Item(name, OK, found)


def _base_images() -> list[Item]:
    """The base images' row; no row while the engine is down (its own row says so)."""
    from labkit.images import missing_base_images

    if probes.docker_reason():
        return []
    name = "Base images"
    try:
        missing = missing_base_images()
    except Exception as exc:  # noqa: BLE001 - the doctor reports, it does not crash
        return [Item(name, WARN, f"could not check ({exc})", "run `make images`")]
    if missing:
        return [Item(name, OPTIONAL, "missing: " + ", ".join(map(str, missing)), "run `make images`")]
    return [Item(name, OK, "all present")]


def collect() -> list[Item]:
    """Probe everything afresh and return one Item per thing the labs use."""
    probes.refresh()
    return [
        _item("Docker engine", probes.docker_engine(), required=True),
        _item("BuildKit", probes.buildkit(), absent=WARN),
        _item("Compose", probes.compose(), required=True),
        _item("kind", probes.kind()),
        _item("kubectl", probes.kubectl()),
        _disk(),
        _item("NVIDIA GPU", probes.gpu()),
        _item("NVIDIA Container Toolkit", probes.nvidia_toolkit()),
        _item("AWS credentials", probes.aws_credentials()),
        _item("GCP credentials", probes.gcp_credentials()),
        _item("Cloud SDKs (lab 06)", probes.cloud_sdks()),
        *_base_images(),
    ]


def run_doctor(console: Console | None = None) -> int:
    """Print one line per item (and its fix when not OK); 0 when every required item is there, else 1."""
    console = console or Console()
    items = collect()
    width = max(len(item.name) for item in items) + 2
    console.print(Text("labkit doctor: what the labs use (Docker engine and Compose are required)", style="bold"))
    for item in items:
        # Text, not markup: found/fix strings may hold brackets. soft_wrap keeps URLs whole.
        console.print(Text.assemble((f"{item.status:<10}", _STYLES[item.status]), f"{item.name:<{width}}", item.found),
                      soft_wrap=True)
        if item.fix:
            console.print(Text.assemble(" " * (10 + width), ("fix: ", "bold"), item.fix), soft_wrap=True)
    missing = [item.name for item in items if item.required and item.status == MISSING]
    if missing:
        console.print(Text(f"Required and missing: {', '.join(missing)}. Fix, then run the doctor again.",
                           style="bold red"), soft_wrap=True)
        return 1
    console.print(Text("Everything required is here. A missing optional item only skips the lab steps that need it.",
                       style="green"), soft_wrap=True)
    return 0


if __name__ == "__main__":
    sys.exit(run_doctor())
