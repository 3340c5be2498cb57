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

from . import capabilities, probes

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


def collect() -> list[Item]:
    """Probe everything afresh and return one Item per capability of labkit.capabilities (and
    the free disk space, which only the doctor reports)."""
    probes.refresh()
    items = []
    for cap in capabilities.TABLE.values():
        if cap.name == "base-images" and probes.docker_reason():
            continue  # the engine's own row says why
        items.append(_item(cap.title, cap.probe(), required=cap.required, absent=WARN if cap.warn else OPTIONAL))
        if cap.name == "kubectl":
            items.append(_disk())
    return items


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
