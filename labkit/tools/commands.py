"""Running the command-line tools the labs teach (docker compose, kubectl, kind): print the
command the way a student would type it, bound its time, and fail with the end of its output."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

from ..core.errors import LabkitError


class CommandError(LabkitError, RuntimeError):
    """A command is missing, timed out or failed; the message says which and shows its output."""


def run(argv: list[str], *, cwd: str | Path | None = None, env: dict[str, str] | None = None,
        timeout: float = 60, show: bool = True, check: bool = True,
        input: str | None = None, error: type[CommandError] = CommandError) -> subprocess.CompletedProcess:
    """Run ``argv``; with ``check``, a non-zero exit raises ``error`` with the last output lines."""
    command = shlex.join(argv)
    if show:
        print(f"$ {command}")
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, input=input,
                              env={**os.environ, **env} if env else None)
    except FileNotFoundError:
        raise error(f"{argv[0]} is not installed (see `make doctor`)") from None
    except subprocess.TimeoutExpired:
        raise error(f"`{command}` did not finish within {timeout:.0f}s") from None
    if check and done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
        raise error(f"`{command}` failed (exit {done.returncode}):\n{tail}")
    return done
