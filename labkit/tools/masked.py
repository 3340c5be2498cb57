"""A command run for a notebook to show, with every secret in its output masked: what a lab
prints is saved in the notebook, so it must be safe to share (lab 03 shows real leaks this way)."""

from __future__ import annotations

import re
import shlex

from ..core.errors import LabkitError
from . import commands, secretscan

#: Secrets a command prints by itself, whatever the lab handed it: (pattern, what is shown instead).
PRINTED_SECRETS = ((re.compile(r"SWMTKN-[\w-]+"), "<swarm join token: a secret too, not shown>"),)


class CommandFailed(LabkitError, RuntimeError):
    """A shown command exited non-zero (its masked output was printed above)."""


def show(*argv, hide=(), check: bool = True, timeout: float = 120) -> None:
    """Run a command, print ``$ command`` and its output with the values in ``hide`` (and their
    base64 forms) masked; with ``check``, a non-zero exit raises :class:`CommandFailed`.
    Returns nothing on purpose: a returned value would be displayed, secrets included."""
    argv = [str(a) for a in argv]
    print("$ " + _masked(shlex.join(argv), hide))
    done = commands.run(argv, timeout=timeout, show=False, check=False)
    print(_masked((done.stdout + done.stderr).rstrip(), hide))
    if check and done.returncode != 0:
        raise CommandFailed(f"exit code {done.returncode}")


def _masked(text: str, hide) -> str:
    text = secretscan.redact(text, *hide)
    for pattern, shown in PRINTED_SECRETS:
        text = pattern.sub(shown, text)
    return text
