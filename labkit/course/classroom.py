"""The class's autograding workflow: GitHub Classroom grades each push to a student's repository
(one that ``labkit release`` made) with the instructor's checks, which that repository never holds.

:func:`write_workflows` writes ``.github/workflows/classroom.yml`` into a release. On a push the
workflow finds the labs whose notebook the push changed, checks out the instructor's private
course repository with a token kept as a secret, sets it up as ``make setup images`` does, runs
its ``labkit grade`` on each changed notebook, and makes every check of the report one Classroom
test (``autograding-command-grader``), passed when ``labkit report-check`` (:func:`check_status`)
exits 0; the reporter sums their points.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
import yaml

from ..core import paths
from . import cells


@dataclass(frozen=True)
class Action:
    """A GitHub Action pinned to the commit its release tag (``version``) named when it was read."""

    repo: str
    sha: str
    version: str

    @property
    def uses(self) -> str:
        return f"{self.repo}@{self.sha}"


# .github/workflows/ci.yml pins the same commits (tests/test_workflows.py holds them equal).
# Commit ids are hex strings that detect-secrets may take for keys: each line says it is not one.
CHECKOUT = Action("actions/checkout",
                  "3d3c42e5aac5ba805825da76410c181273ba90b1", "v7.0.1")  # pragma: allowlist secret
SETUP_PYTHON = Action("actions/setup-python",
                      "5fda3b95a4ea91299a34e894583c3862153e4b97", "v7.0.0")  # pragma: allowlist secret
KIND = Action("helm/kind-action",
              "ef37e7f390d99f746eb8b610417061a60e82a6cc", "v1.14.0")  # pragma: allowlist secret
COMMAND_GRADER = Action("classroom-resources/autograding-command-grader",
                        "d5b3fa6f50f7f629b7bfae0cc3e4c58852b412d5", "v1")  # pragma: allowlist secret
REPORTER = Action("classroom-resources/autograding-grading-reporter",
                  "d13b5912daf5042ac1b71bc38bdb4a6bcd61d8ca", "v1")  # pragma: allowlist secret
#: The kind release that built the labs' node image (kindest/node:v1.31.2), and its kubectl.
KIND_VERSION, KUBECTL_VERSION = "v0.25.0", "v1.31.2"
PYTHON_VERSION = "3.11"  # environment.yml's

#: Capabilities a GitHub-hosted runner never has: checks that need one are left out of the points.
RUNNER_LACKS = ("gpu", "nvidia-toolkit", "aws-credentials", "gcp-credentials", "vault")
SECRET, REPO_VARIABLE, REF_VARIABLE = "LABKIT_INSTRUCTOR_TOKEN", "LABKIT_INSTRUCTOR_REPO", "LABKIT_INSTRUCTOR_REF"
INSTRUCTOR = ".labkit-instructor"  # where the job checks out the instructor's repository
WORKFLOW = Path(".github/workflows/classroom.yml")

#: ``labkit report-check``'s exit statuses.
PASSED, FAILED, MISSING, SKIPPED = 0, 1, 2, 3


def check_status(report: Path, check_id: str) -> tuple[int, str]:
    """(exit status, one line saying why) of check ``check_id`` in a ``labkit grade --json`` report:
    PASSED, FAILED, SKIPPED (its capability was absent), or MISSING (no report, or no such check)."""
    try:
        data = json.loads(Path(report).read_text())
    except FileNotFoundError:
        return MISSING, f"no report {report}: the lab was not graded (the grading step's log says why)"
    except (OSError, ValueError) as exc:
        return MISSING, f"{report} is not a grading report ({type(exc).__name__}: {exc})"
    found = [c for c in (data.get("checks") or [] if isinstance(data, dict) else [])
             if isinstance(c, dict) and c.get("id") == check_id]
    if not found:
        return MISSING, f"{report} has no check {check_id!r}"
    check = found[0]
    if check.get("skipped"):
        return SKIPPED, f"{check_id}: skipped, scores 0 here ({check.get('message', '')})"
    if check.get("passed") is True:
        return PASSED, f"{check_id}: passed, {check.get('earned')}/{check.get('points')}"
    return FAILED, f"{check_id}: failed, 0/{check.get('points')} ({check.get('message', '')})"


@dataclass(frozen=True)
class LabPlan:
    """What the workflow grades of one lab."""

    lab: str
    notebook: str                          # its path in a release: labs/NN_name.ipynb
    checks: tuple[tuple[str, int], ...]    # (check id, points) scored on the runner
    left_out: tuple[tuple[str, str], ...]  # (check id, the capability a hosted runner lacks)
    kind: bool                             # a scored check needs the kind cluster


def plan(solutions: Path = paths.SOLUTIONS) -> list[LabPlan]:
    """Each lab's checks, read from the solutions' check cells, split into scored and left out."""
    plans = []
    for path in paths.lab_notebooks(solutions):
        nb = nbformat.read(path, as_version=4)
        scored, left_out, kind = [], [], False
        for index, check_id, points in cells.checks(nb):
            needs = cells.check_needs(nb.cells[index]).get(check_id, ())
            lacking = [need for need in needs if need in RUNNER_LACKS]
            if lacking:
                left_out.append((check_id, lacking[0]))
            else:
                scored.append((check_id, points))
                kind = kind or "kind" in needs
        plans.append(LabPlan(paths.lab_from_name(path), f"labs/{path.name}", tuple(scored), tuple(left_out), kind))
    return plans


def step_id(check_id: str) -> str:
    """The workflow step id of a check's Classroom test ("01.final-size" -> "check-01-final-size")."""
    return "check-" + re.sub(r"[^A-Za-z0-9_-]", "-", check_id)


def write_workflows(root: Path) -> list[Path]:
    """Write the autograding workflow into the release at ``root``; the paths written."""
    path = Path(root) / WORKFLOW
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(workflow_text(plan()))
    return [path]


def workflow_text(plans: list[LabPlan]) -> str:
    """The workflow file: its header comment, then the workflow, every action's tag beside its pin."""
    text = yaml.dump(_workflow(plans), Dumper=_Dumper, sort_keys=False, width=120)
    for action in (CHECKOUT, SETUP_PYTHON, KIND, COMMAND_GRADER, REPORTER):
        text = text.replace(f"uses: {action.uses}\n", f"uses: {action.uses} # {action.version}\n")
    return _header(plans) + text


def _header(plans: list[LabPlan]) -> str:
    left_out = ", ".join(f"{check_id} (needs {need})" for p in plans for check_id, need in p.left_out) or "none"
    return f"""\
# Autograding for GitHub Classroom, written by `labkit release`.
#
# On each push, every lab whose notebook (labs/NN_*.ipynb) the push changed is graded by the
# instructor's `labkit grade`, and each of its checks becomes one Classroom test worth the check's
# points (it passes when `labkit report-check` says the check passed). Run by hand (Actions >
# classroom > Run workflow) or by Classroom's regrade, it grades every lab changed since the
# repository's first commit. Define no tests in Classroom's web form for this assignment: Classroom
# would write its own workflow over this file.
#
# The instructor's checks are not in this repository: they live in the instructor's private course
# repository (solutions/, with the hidden checks), which the job checks out with a token. Set, in
# the repository's (or, for a whole class, the organisation's) Settings > Secrets and variables >
# Actions:
#   secret {SECRET}: a fine-grained token with read-only Contents access to that one
#     repository, expiring at the end of the term;
#   variable {REPO_VARIABLE}: that repository's owner/name;
#   variable {REF_VARIABLE} (optional): the branch or tag to grade with (default: its default branch).
# A student can edit this file and runs code in this job: what the token reads, a determined student
# can read too. Treat these points as feedback, and grade for marks with `labkit grade-all` on the
# instructor's machine.
#
# The runner (ubuntu-24.04) has Docker, which pulls the official base images; the job adds the labs'
# kind cluster when a changed lab has cluster checks. It has no GPU and no cloud account, so the
# checks that need one are left out of the points: {left_out}.
# A check skipped anyway (the runner lacked something it should have) scores 0; its step says why.
"""


def _grade_script(plans: list[LabPlan]) -> str:
    table = "\n".join(f"grade {p.lab} {p.notebook} {'yes' if p.kind else 'no'} "
                      f"{','.join(step_id(c) for c, _ in p.checks)}" for p in plans)
    return f"""\
# the commit to compare with: the one before this push; run by hand or by Classroom's regrade, the
# repository's first commit (the release); none on the first commit itself, which holds no work
base=""
if [ "$EVENT" = push ] && git cat-file -e "$BEFORE^{{commit}}" 2>/dev/null; then
  base="$BEFORE"
elif [ "$EVENT" != push ]; then
  base="$(git rev-list --max-parents=0 HEAD | tail -n 1)"
elif git rev-parse -q --verify HEAD~1 >/dev/null; then
  base=HEAD~1
fi
changed=""
if [ -n "$base" ]; then changed="$(git diff --name-only "$base" HEAD -- labs/)"; fi
runners="" kind=false
grade() {{  # lab, notebook, whether it needs kind, its checks' step ids
  if printf '%s\\n' "$changed" | grep -qxF "$2"; then
    echo "lab $1: $2 changed"
    echo "lab$1=true" >> "$GITHUB_OUTPUT"
    runners="$runners,$4"
    if [ "$3" = yes ]; then kind=true; fi
  fi
}}
{table}
runners="${{runners#,}}"
{{ echo "runners=$runners"; echo "kind=$kind"; echo "any=$([ -n "$runners" ] && echo true || echo false)"; }} \\
  >> "$GITHUB_OUTPUT"
if [ -z "$runners" ]; then echo "no lab notebook changed: nothing to grade"; fi
"""


_CONFIGURED = f"""\
if [ -z "$TOKEN" ] || [ -z "$REPO" ]; then
  echo "::error::grading needs the secret {SECRET} and the variable {REPO_VARIABLE} (the \
instructor's course repository, owner/name): set them in Settings > Secrets and variables > Actions"
  exit 1
fi
"""


def _workflow(plans: list[LabPlan]) -> dict:
    any_lab = "${{ steps.changed.outputs.any == 'true' }}"
    steps = [
        {"name": "check out the student's work", "uses": CHECKOUT.uses,
         "with": {"fetch-depth": 0, "persist-credentials": False}},
        {"name": "find the labs this push changed", "id": "changed",
         "env": {"EVENT": "${{ github.event_name }}", "BEFORE": "${{ github.event.before }}"},
         "run": _grade_script(plans)},
        {"name": "the grader is configured", "if": any_lab,
         "env": {"TOKEN": f"${{{{ secrets.{SECRET} }}}}", "REPO": f"${{{{ vars.{REPO_VARIABLE} }}}}"},
         "run": _CONFIGURED},
        {"name": "check out the instructor's checks", "if": any_lab, "uses": CHECKOUT.uses,
         "with": {"repository": f"${{{{ vars.{REPO_VARIABLE} }}}}", "ref": f"${{{{ vars.{REF_VARIABLE} }}}}",
                  "token": f"${{{{ secrets.{SECRET} }}}}", "path": INSTRUCTOR, "persist-credentials": False}},
        {"uses": SETUP_PYTHON.uses, "if": any_lab, "with": {"python-version": PYTHON_VERSION}},
        {"name": "the labs' kind cluster", "if": "${{ steps.changed.outputs.kind == 'true' }}", "uses": KIND.uses,
         "with": {"cluster_name": "labkit", "config": f"{INSTRUCTOR}/environments/kind/cluster.yaml",
                  "version": KIND_VERSION, "kubectl_version": KUBECTL_VERSION, "wait": "120s"}},
        {"name": "set up the grader", "id": "setup", "if": any_lab, "timeout-minutes": 30,
         "run": f"make -C {INSTRUCTOR} setup images"},
    ]
    for p in plans:
        changed = f"!cancelled() && steps.changed.outputs.lab{p.lab} == 'true'"
        steps.append({"name": f"grade lab {p.lab}", "if": f"${{{{ {changed} && steps.setup.outcome == 'success' }}}}",
                      "timeout-minutes": 30,
                      "run": f"{INSTRUCTOR}/.venv/bin/labkit grade {p.notebook} --json reports/{p.lab}.json"})
        steps += [{"name": check_id, "id": step_id(check_id), "if": f"${{{{ {changed} }}}}", "uses": COMMAND_GRADER.uses,
                   "with": {"test-name": check_id, "timeout": 1, "max-score": points,
                            "command": f"{INSTRUCTOR}/.venv/bin/labkit report-check reports/{p.lab}.json {check_id}"}}
                  for check_id, points in p.checks]
    steps.append({"name": "report the points to GitHub Classroom", "if": "${{ !cancelled() && steps.changed.outputs.any == 'true' }}",
                  "uses": REPORTER.uses,
                  "env": {f"{step_id(c).upper()}_RESULTS": f"${{{{ steps.{step_id(c)}.outputs.result }}}}"
                          for p in plans for c, _ in p.checks},
                  "with": {"runners": "${{ steps.changed.outputs.runners }}"}})
    # As the workflow GitHub Classroom writes itself: its regrade event, the permissions it asks, and no
    # run for its bot's push that creates the student's repository.
    return {"name": "classroom", "on": ["push", "workflow_dispatch", "repository_dispatch"],
            "jobs": {"autograding": {"runs-on": "ubuntu-24.04", "if": "github.actor != 'github-classroom[bot]'",
                                     "permissions": {"checks": "write", "actions": "read", "contents": "read"},
                                     "timeout-minutes": 90, "steps": steps}}}


class _Dumper(yaml.SafeDumper):
    """Writes multi-line strings (the scripts) as YAML literal blocks, as a person would."""


def _literal(dumper: yaml.SafeDumper, value: str):
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _literal)
