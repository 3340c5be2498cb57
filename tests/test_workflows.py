"""The GitHub Actions workflows, linted offline: the course's CI (.github/workflows/) and the class's
autograding workflow that `labkit release` writes pass check-jsonschema's built-in GitHub-workflow
schema; every action is pinned to a full commit; every job has permissions and a time limit; CI runs
only what `make` and .ci/run run here. And `labkit report-check`, the command each Classroom test runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

from labkit import cli, grade, paths
from labkit.course import cells, classroom

ROOT = paths.REPO
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
PINNED = re.compile(r"^[^@\s]+@[0-9a-f]{40}$")


def _steps(doc: dict) -> list[tuple[str, dict]]:
    return [(job_name, step) for job_name, job in (doc.get("jobs") or {}).items() for step in job.get("steps", [])]


def rule_problems(text: str) -> list[str]:
    """What a workflow breaks of the rules the schema cannot say: pinned actions, bounded jobs."""
    doc = yaml.safe_load(text)
    problems = []
    for name, job in (doc.get("jobs") or {}).items():
        problems += [f"job {name} has no {key}" for key in ("permissions", "timeout-minutes") if key not in job]
    for job_name, step in _steps(doc):
        uses = step.get("uses", "")
        if uses and not uses.startswith("./") and not PINNED.match(uses):
            problems.append(f"job {job_name}: {uses} is not pinned to a 40-hex commit")
    for line in text.splitlines():  # the tag beside each pin, so a reader sees which release it is
        if re.match(r"\s*-?\s*uses: [^.]\S*@[0-9a-f]{40}\s*$", line):
            problems.append(f"no version comment after the pin: {line.strip()}")
    return problems


def schema_errors(*files: Path) -> str:
    """check-jsonschema's complaint about ``files`` (its vendored schema: no network), '' when valid."""
    run = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                          *map(str, files)], capture_output=True, text=True, timeout=120)
    return "" if run.returncode == 0 else run.stdout + run.stderr


@pytest.fixture(scope="module")
def class_workflow(tmp_path_factory) -> Path:
    written = classroom.write_workflows(tmp_path_factory.mktemp("release"))
    assert [p.relative_to(p.parents[2]) for p in written] == [classroom.WORKFLOW]
    return written[0]


def test_the_course_has_its_ci_workflow():
    assert "ci.yml" in [p.name for p in WORKFLOWS]


def test_every_workflow_passes_the_github_workflow_schema(class_workflow):
    assert schema_errors(*WORKFLOWS, class_workflow) == ""


@pytest.mark.parametrize("name", [p.name for p in WORKFLOWS] + ["classroom.yml (release)"])
def test_every_action_is_pinned_and_every_job_has_permissions_and_a_time_limit(name, class_workflow):
    path = class_workflow if name.endswith("(release)") else ROOT / ".github" / "workflows" / name
    assert rule_problems(path.read_text()) == []


def test_the_checks_catch_a_broken_workflow(tmp_path):
    broken = """\
on: push
jobs:
  test:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@v4
      - uses: actions/upload-artifact@bbbca2ddaa5d8feaa63e36b76fdaad77386f024f
      - uses: ./local-action
      - run: make test
"""
    assert rule_problems(broken) == [
        "job test has no permissions", "job test has no timeout-minutes",
        "job test: actions/checkout@v4 is not pinned to a 40-hex commit",
        "no version comment after the pin: - uses: actions/upload-artifact@bbbca2ddaa5d8feaa63e36b76fdaad77386f024f",
    ]
    (tmp_path / "bad.yml").write_text(broken.replace("runs-on: ubuntu-24.04", "runs-on: ubuntu-24.04\n    bogus: 1"))
    assert "bogus" in schema_errors(tmp_path / "bad.yml")


def _make_targets() -> set[str]:
    """The Makefile's targets, and those of the files it includes (the student's targets)."""
    text = (ROOT / "Makefile").read_text()
    text += "".join((ROOT / name).read_text() for name in re.findall(r"^include (\S+)$", text, re.M))
    return set(re.findall(r"^([a-z][a-z-]*):", text, re.M))


def test_ci_runs_only_what_make_and_ci_run_run_here():
    for path in WORKFLOWS:
        for _, step in _steps(yaml.safe_load(path.read_text())):
            if "run" not in step:
                continue
            command = step["run"].strip()
            assert "\n" not in command, f"{path.name}: one command per step: {command!r}"
            if command == ".ci/run":
                assert os.access(ROOT / ".ci" / "run", os.X_OK)
                continue
            words = command.split()
            assert words[0] == "make" and set(words[1:]) <= _make_targets(), f"{path.name}: {command!r}"


def _with_of(text: str, repo: str) -> list[tuple[str, dict]]:
    return [(step["uses"], step.get("with", {})) for _, step in _steps(yaml.safe_load(text))
            if step.get("uses", "").startswith(repo + "@")]


def test_ci_and_the_class_workflow_pin_the_same_commits_and_make_the_labs_own_cluster(class_workflow):
    ci, klass = (ROOT / ".github" / "workflows" / "ci.yml").read_text(), class_workflow.read_text()
    for action in (classroom.CHECKOUT, classroom.SETUP_PYTHON, classroom.KIND):
        assert f"uses: {action.uses} # {action.version}\n" in ci
    config = yaml.safe_load((ROOT / "environments" / "kind" / "cluster.yaml").read_text())
    for text, config_path in ((ci, "environments/kind/cluster.yaml"),
                              (klass, f"{classroom.INSTRUCTOR}/environments/kind/cluster.yaml")):
        [(_, kind)] = _with_of(text, classroom.KIND.repo)
        assert kind["cluster_name"] == config["name"] == "labkit"
        assert kind["config"] == config_path
        assert (kind["version"], kind["kubectl_version"]) == (classroom.KIND_VERSION, classroom.KUBECTL_VERSION)
        assert {n["image"] for n in config["nodes"]} == {f"kindest/node:{classroom.KUBECTL_VERSION}"}


def test_the_class_workflow_scores_every_check_a_hosted_runner_can_run():
    plans = {p.lab: p for p in classroom.plan()}
    assert list(plans) == [paths.lab_from_name(p) for p in paths.lab_notebooks()]
    for lab, p in plans.items():
        nb = nbformat.read(paths.solution_for(lab), as_version=4)
        assert sorted(c for _, c, _ in cells.checks(nb)) == sorted(c for c, _ in p.checks + p.left_out)
        assert (ROOT / p.notebook).exists()
    assert plans["04"].left_out == (("04.gpu-serves", "gpu"),)
    assert not any(p.left_out for lab, p in plans.items() if lab != "04")
    assert {lab for lab, p in plans.items() if p.kind} == {"02", "03", "04", "07", "08", "09"}
    ids = [classroom.step_id(c) for p in plans.values() for c, _ in p.checks]
    assert len(ids) == len(set(ids)) and all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", i) for i in ids)


def test_the_class_workflow_reports_each_check_with_its_points(class_workflow):
    doc = yaml.safe_load(class_workflow.read_text())
    steps = doc["jobs"]["autograding"]["steps"]
    graders = [s for s in steps if s.get("uses") == classroom.COMMAND_GRADER.uses]
    want = [(c, pts) for p in classroom.plan() for c, pts in p.checks]
    assert [(s["with"]["test-name"], s["with"]["max-score"]) for s in graders] == want
    assert all(s["with"]["command"].startswith(f"{classroom.INSTRUCTOR}/.venv/bin/labkit report-check reports/")
               for s in graders)
    [reporter] = [s for s in steps if s.get("uses") == classroom.REPORTER.uses]
    assert set(reporter["env"]) == {f"{s['id'].upper()}_RESULTS" for s in graders}
    assert "secrets." + classroom.SECRET in class_workflow.read_text()
    assert "solutions" not in {p.name for p in class_workflow.parents[2].iterdir()}


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "s", "GIT_AUTHOR_EMAIL": "s@example.org",
           "GIT_COMMITTER_NAME": "s", "GIT_COMMITTER_EMAIL": "s@example.org"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


def _changed(repo: Path, event: str, before: str = "") -> dict[str, str]:
    """Run the workflow's change-finding step in ``repo``, as the runner would; its outputs."""
    doc = yaml.safe_load(classroom.workflow_text(classroom.plan()))
    [step] = [s for s in doc["jobs"]["autograding"]["steps"] if s.get("id") == "changed"]
    out = repo / "github-output"
    out.write_text("")
    subprocess.run(["bash", "-e", "-c", step["run"]], cwd=repo, check=True, capture_output=True, timeout=60,
                   env={**os.environ, "EVENT": event, "BEFORE": before, "GITHUB_OUTPUT": str(out)})
    return dict(line.split("=", 1) for line in out.read_text().splitlines())


def test_the_class_workflow_grades_the_labs_a_push_changed(tmp_path):
    repo = tmp_path / "student"
    (repo / "labs").mkdir(parents=True)
    _git(repo, "init", "-q")
    for name in ("01_image_slimming.ipynb", "02_compose_vs_kind.ipynb"):
        (repo / "labs" / name).write_text("{}")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "release")
    release = _git(repo, "rev-parse", "HEAD")
    assert _changed(repo, "push", "0" * 40)["any"] == "false"  # the release itself: nothing to grade

    (repo / "labs" / "01_image_slimming.ipynb").write_text('{"cells": []}')
    _git(repo, "commit", "-qam", "lab 01")
    after_01 = _git(repo, "rev-parse", "HEAD")
    (repo / "labs" / "02_compose_vs_kind.ipynb").write_text('{"cells": []}')
    (repo / "labs" / "notes.ipynb").write_text("{}")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "lab 02")

    pushed = _changed(repo, "push", after_01)
    assert (pushed.get("lab01"), pushed["lab02"], pushed["kind"]) == (None, "true", "true")
    assert pushed["runners"].split(",") == [classroom.step_id(c) for p in classroom.plan() if p.lab == "02"
                                            for c, _ in p.checks]
    both = _changed(repo, "push", release)  # one push of both commits
    assert (both["lab01"], both["lab02"]) == ("true", "true")
    for regrade in ("workflow_dispatch", "repository_dispatch"):
        assert _changed(repo, regrade).keys() >= {"lab01", "lab02"}
    assert _changed(repo, "push", "f" * 40)["lab02"] == "true"  # an unknown before: the last commit's change


def _report(tmp_path: Path) -> Path:
    report = grade.Report("01", "nb.ipynb", checks=[
        {"id": "01.a", "points": 2, "earned": 2, "passed": True, "skipped": False, "message": ""},
        {"id": "01.b", "points": 3, "earned": 0, "passed": False, "skipped": False, "message": "too big"},
        {"id": "01.c", "points": 3, "earned": 0, "passed": False, "skipped": True, "message": "kind not found"}])
    path = tmp_path / "01.json"
    path.write_text(json.dumps(report.as_dict()))
    return path


@pytest.mark.parametrize("check_id, status, said", [
    ("01.a", classroom.PASSED, "passed, 2/2"),
    ("01.b", classroom.FAILED, "failed, 0/3 (too big)"),
    ("01.c", classroom.SKIPPED, "skipped, scores 0 here (kind not found)"),
    ("01.z", classroom.MISSING, "has no check '01.z'"),
])
def test_report_check_exits_0_only_for_a_passed_check(tmp_path, capsys, check_id, status, said):
    assert cli.main(["report-check", str(_report(tmp_path)), check_id]) == status
    assert said in capsys.readouterr().out
    assert (classroom.PASSED, classroom.FAILED, classroom.MISSING, classroom.SKIPPED) == (0, 1, 2, 3)


def test_report_check_without_a_readable_report_is_missing(tmp_path, capsys):
    assert cli.main(["report-check", str(tmp_path / "none.json"), "01.a"]) == classroom.MISSING
    assert "the lab was not graded" in capsys.readouterr().out
    for text in ("{not json", "[1, 2]", '{"checks": null}'):
        (tmp_path / "bad.json").write_text(text)
        assert cli.main(["report-check", str(tmp_path / "bad.json"), "01.a"]) == classroom.MISSING


def test_check_needs_reads_literal_needs_and_refuses_others():
    cell = nbformat.v4.new_code_cell('check("02.a", 2, t, "h", needs=("kind", "kubectl"))\n'
                                     'labkit.check("02.b", 1, t, "h", needs="kubectl")\ncheck("02.c", 1, t, "h")')
    assert cells.check_needs(cell) == {"02.a": ("kind", "kubectl"), "02.b": ("kubectl",), "02.c": ()}
    with pytest.raises(ValueError, match="literal tuple"):
        cells.check_needs(nbformat.v4.new_code_cell('check("02.d", 1, t, "h", needs=NEEDS)'))
