"""Reading a Dockerfile's stages without building it, with Docker's own parser (the ``dockerfile``
package wraps its Go code), so a check reads a file exactly as the engine will.

A check asks what a build target is made of: the images under it (:func:`base_chain`), the
environment and user it runs with (:func:`stage_env`, :func:`stage_user`), both inherited
through ``FROM <earlier stage>`` as the builder does.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

import dockerfile

from ..core.errors import RequirementNotMet


@dataclass
class Stage:
    """One ``FROM`` and the instructions after it, up to the next ``FROM``."""
    name: str | None
    base: str  # as written: an image, or the name of an earlier stage
    instructions: list[dockerfile.Command]


def stages(path: str | Path) -> list[Stage]:
    """The file's stages in order; raises RequirementNotMet where the engine would refuse the file."""
    try:
        commands = dockerfile.parse_file(str(path))
    except dockerfile.GoIOError:
        raise RequirementNotMet(f"{path} does not exist") from None
    except dockerfile.GoParseError as exc:
        raise RequirementNotMet(f"{path} does not parse: {exc}") from None
    found: list[Stage] = []
    for c in commands:
        if c.cmd.lower() not in dockerfile.all_cmds():
            raise RequirementNotMet(f"{path} line {c.start_line}: unknown instruction {c.cmd!r} "
                                    f"(`{c.original[:60]}`): check its spelling")
        if c.cmd.upper() == "FROM":
            words = c.value  # image [AS name]; --platform is among the flags
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            found.append(Stage(name, words[0], []))
        elif found:
            found[-1].instructions.append(c)
        elif c.cmd.upper() != "ARG":
            raise RequirementNotMet(f"{path} line {c.start_line}: {c.cmd.upper()} before the first FROM "
                                    "(only ARG may come before it)")
    if not found:
        raise RequirementNotMet(f"{path} has no FROM: a Dockerfile starts from a base image")
    return found


def _chain(path: str | Path, target: str) -> list[Stage]:
    """The target stage and the stages it is built on, the target last."""
    all_stages = stages(path)
    by_name = {s.name.lower(): s for s in all_stages if s.name}
    if target.lower() not in by_name:
        raise RequirementNotMet(f"{path} has no stage named {target!r} (it has "
                                f"{sorted(by_name) or 'no named stage'}): name one with `FROM image AS {target}`")
    chain = [by_name[target.lower()]]
    while chain[0].base.lower() in by_name and by_name[chain[0].base.lower()] not in chain:
        chain.insert(0, by_name[chain[0].base.lower()])
    return chain


def base_chain(path: str | Path, target: str) -> list[str]:
    """The stages and image under ``target``, from ``target``'s own FROM down to the image:
    ``["cpu", "python:3.11-slim"]`` for ``FROM cpu AS gpu`` on ``FROM python:3.11-slim AS cpu``."""
    return [s.base for s in reversed(_chain(path, target))]


def stage_env(path: str | Path, target: str) -> dict[str, str]:
    """The ENV a target sets, its parent stages' included (a later ENV wins), quotes removed.
    What the base image itself sets is not in the file, so not here."""
    env: dict[str, str] = {}
    for stage in _chain(path, target):
        for c in stage.instructions:
            if c.cmd.upper() == "ENV":
                env.update({key: _unquoted(value) for key, value in zip(c.value[::2], c.value[1::2])})
    return env


def _unquoted(value: str) -> str:
    """An ENV value as the shell-like word rules of the builder leave it: ``"x y"`` is ``x y``."""
    try:
        return " ".join(shlex.split(value))
    except ValueError:  # an unbalanced quote, which the builder refuses: kept as written
        return value


def stage_user(path: str | Path, target: str) -> str | None:
    """The last USER of the target's chain (None: the base image's user, root unless it sets one)."""
    users = [c.value[0] for s in _chain(path, target) for c in s.instructions
             if c.cmd.upper() == "USER"]
    return users[-1] if users else None
