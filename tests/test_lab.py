"""labkit.Lab: the TARGET it takes, and dockerlab's helpers with the lab filled in (no engine needed)."""

import subprocess
import sys

import nbformat
import pytest

from labkit import dockerlab, paths
from labkit.course import build, cells
from labkit.course import lab as lab_module
from labkit.course.lab import TARGETS, Lab, LabSetupError


def test_a_lab_rejects_a_target_it_does_not_take_and_says_which_it_takes(tmp_path):
    assert Lab("05", tmp_path, target="aws", targets=("emulator", "aws")).target == "aws"
    with pytest.raises(LabSetupError) as raised:
        Lab("05", tmp_path, target="gcp", targets=("emulator", "aws"))
    assert "'gcp'" in str(raised.value) and "'emulator'" in str(raised.value) and TARGETS["aws"] in str(raised.value)
    with pytest.raises(LabSetupError, match="runs only on"):
        Lab("00", tmp_path, target="emulator")
    with pytest.raises(LabSetupError, match="unknown targets"):
        Lab("00", tmp_path, targets=("local", "azure"))


@pytest.mark.parametrize("helper", ["run", "running", "run_output"])
def test_the_helpers_call_dockerlab_with_the_labs_number(tmp_path, monkeypatch, helper):
    calls = []
    monkeypatch.setattr(dockerlab, helper, lambda *args, **kwargs: calls.append((args, kwargs)) or "made")
    assert getattr(Lab("01", tmp_path), helper)("labkit/01-final:v1", name="x") == "made"
    (args, kwargs), = calls
    assert args[0] == "labkit/01-final:v1" and kwargs["lab"] == "01" and kwargs["name"] == "x"


def test_build_uses_dockerlabs_build_or_with_buildkit_its_buildkit_build(tmp_path, monkeypatch):
    calls = []
    for name in ("build", "build_with_buildkit"):
        monkeypatch.setattr(dockerlab, name, lambda *args, _name=name, **kwargs: calls.append((_name, args, kwargs)))
    lab = Lab("03", tmp_path)
    lab.build(tmp_path, "labkit/03-leak:v1", dockerfile="Dockerfile.env", show=False)
    lab.build(tmp_path, "labkit/03-final:v1", buildkit=True, secrets={"t": "f"}, no_cache=True)
    assert calls == [
        ("build", (tmp_path, "labkit/03-leak:v1"), {"lab": "03", "dockerfile": "Dockerfile.env", "show": False}),
        ("build_with_buildkit", (tmp_path, "labkit/03-final:v1"),
         {"lab": "03", "dockerfile": "Dockerfile", "secrets": {"t": "f"}, "no_cache": True})]


def test_checked_build_is_dockerlabs_for_this_lab(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(dockerlab, "checked_build", lambda *args, **kwargs: calls.append((args, kwargs)) or "image")
    assert Lab("01", tmp_path).checked_build(tmp_path, "labkit/01-cleanup:v1", dockerfile="Dockerfile.cleanup") == "image"
    assert Lab("04", tmp_path).checked_build(tmp_path, "labkit/04-cpu:v1", target="cpu") == "image"
    assert calls == [((tmp_path, "labkit/01-cleanup:v1"), {"lab": "01", "dockerfile": "Dockerfile.cleanup", "target": None}),
                     ((tmp_path, "labkit/04-cpu:v1"), {"lab": "04", "dockerfile": "Dockerfile", "target": "cpu"})]


def test_join_swarm_leaves_an_existing_swarm_as_it_is(tmp_path, monkeypatch, capsys):
    class Engine:
        def info(self):
            return {"Swarm": {"LocalNodeState": "active", "NodeID": "n1"}}

    monkeypatch.setattr(dockerlab, "client", Engine)
    monkeypatch.setattr(lab_module.masked, "show", lambda *a, **k: pytest.fail("no command may run"))
    assert Lab("03", tmp_path).join_swarm()["NodeID"] == "n1"
    assert "will not leave it" in capsys.readouterr().out


@pytest.mark.parametrize("solution", paths.lab_notebooks(paths.SOLUTIONS), ids=lambda p: p.name[:2])
def test_a_solution_read_without_nbformat_is_what_nbformat_reads(solution):
    mine, theirs = lab_module.Notebook.read(solution), nbformat.read(solution, as_version=4)
    assert len(mine.cells) == len(theirs.cells) > 10
    for ours, real in zip(mine.cells, theirs.cells):
        assert (ours.id, ours.cell_type, ours.source, ours.metadata) == (real.id, real.cell_type, real.source,
                                                                          real.metadata)
        assert cells.is_answer(ours) == cells.is_answer(real)
        if real.source.startswith("%%writefile"):
            assert build.written_text(mine, real.id) == build.written_text(theirs, real.id)
    with pytest.raises(AttributeError):
        mine.no_such_key


def test_a_labs_kernel_imports_no_nbformat():
    """nbformat's import (its jsonschema) costs a second and a half; a kernel that runs a lab or
    its checks needs none of it, not even a check that reads a Dockerfile the lab ships."""
    from labkit.course.grade_engine import PRELOAD  # what the grader imports in the checks' kernel

    code = (f"import sys, importlib, labkit\n[importlib.import_module(m) for m in {PRELOAD!r}]\nlabkit.Lab('02')\n"
            "importlib.import_module('labkit.lab').solution_notebook('02')\n"
            "labkit.Lab('01').shipped_file('final-dockerfile')\n"
            "print(sorted(m for m in ('nbformat', 'jsonschema') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
