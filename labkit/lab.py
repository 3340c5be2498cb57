"""A lab's set-up and teardown, shared by every notebook.

``start("01")`` checks what the lab needs (with a message that says what to do),
makes the lab's scratch folder, removes what an earlier run left and registers the
cleanup to run when the kernel exits, so an interrupted lab leaves nothing behind.
"""

from __future__ import annotations

import atexit
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import dockerlab, paths, probes


class LabSetupError(RuntimeError):
    pass


@dataclass
class Lab:
    number: str
    workspace: Path

    def tag(self, name: str, version: str = "v1") -> str:
        """A pinned image tag for this lab, e.g. ``labkit/01-final:v1``."""
        return f"{dockerlab.IMAGE_PREFIX}{self.number}-{name}:{version}"

    def copy_app(self, name: str = "app") -> Path:
        """A fresh copy of the sample app in the workspace, as a git repository, the way
        a project folder looks on a developer's machine (.git, tests, data)."""
        target = self.workspace / name
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(paths.APP, target, ignore=shutil.ignore_patterns(
            "__pycache__", ".pytest_cache", "*.pyc", ".dockerignore", "Dockerfile*"))
        git = ["git", "-c", "user.name=student", "-c", "user.email=student@example.com",
               "-c", "init.defaultBranch=main"]
        subprocess.run([*git, "init", "-q"], cwd=target, check=True)
        subprocess.run([*git, "add", "-A"], cwd=target, check=True)
        subprocess.run([*git, "commit", "-q", "-m", "sample app"], cwd=target, check=True)
        return target

    def cleanup(self) -> None:
        dockerlab.cleanup(self.number)


def start(number: str, *, needs: tuple[str, ...] = ("docker",), workspace: str | Path | None = None) -> Lab:
    problems = []
    if "docker" in needs:
        reason = probes.docker_reason()
        if reason:
            problems.append(reason)
        else:
            from .images import missing_base_images
            missing = missing_base_images()
            if missing:
                problems.append(f"base images missing: {', '.join(missing)}. Run `make images` "
                                "in a terminal (or `labkit images`), then rerun this cell.")
    if "cloud" in needs and probes.cloud_sdks_reason():
        problems.append(probes.cloud_sdks_reason())
    if problems:
        raise LabSetupError("this lab cannot start yet:\n- " + "\n- ".join(problems))
    lab = Lab(number, Path(workspace or Path.cwd() / "work" / number).resolve())
    lab.workspace.mkdir(parents=True, exist_ok=True)
    dockerlab.cleanup(number, show=False)
    dockerlab.prune_stale_images(number)
    atexit.register(dockerlab.cleanup, number, show=False)
    print(f"lab {number} ready; scratch folder: {lab.workspace}")
    return lab
