"""labkit release: the class repository holds no answer, has what a student needs, builds, runs
lab 00 and self-checks it against its own pristine check cells, and fills the reference files
later labs use from the student's own answers."""

import json
import os
import shutil
import stat
import subprocess
import sys
import tomllib

import nbformat
import pytest

from labkit import build, cells, cli, paths, probes, release
from labkit.references import REFERENCES, WITHHELD

LABS = paths.lab_notebooks(paths.SOLUTIONS)


def _normalised(text: str) -> str:
    return " ".join(text.split())


def _regions() -> list[tuple[str, str]]:
    """(where, whitespace-normalised content) of every solution and hidden-checks region."""
    found = []
    for path in LABS:
        for cell in nbformat.read(path, as_version=4).cells:
            for region in (cells.SOLUTION, cells.HIDDEN):
                for match in region.finditer(cell.source):
                    body = [line for line in match.group(0).splitlines() if "### BEGIN" not in line
                            and "### END" not in line]
                    found.append((f"{path.name}/{cell.id}", _normalised("\n".join(body))))
    return found


def _text(path) -> str:
    """What a file says: a notebook's cell sources and outputs, any other file's text."""
    if path.suffix == ".ipynb":
        nb = nbformat.read(path, as_version=4)
        return "\n".join([c.source for c in nb.cells] + [json.dumps(c.get("outputs", [])) for c in nb.cells])
    return path.read_bytes().decode(errors="ignore")


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    return release.release(tmp_path_factory.mktemp("release") / "class")


@pytest.fixture
def student(released, tmp_path):
    """A student's clone of the release (the release itself stays as written)."""
    return shutil.copytree(released, tmp_path / "clone", symlinks=True)


def _in(root, *argv, **options) -> subprocess.CompletedProcess:
    """A command run in ``root`` with the labkit found there first (not the one this test imports)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(argv, cwd=options.pop("cwd", root), env=env, capture_output=True, text=True, **options)


def _answered(root, lab: str) -> None:
    """Write the solution's answers into the student's labs/NN notebook, as a student would by hand."""
    solution = {c.id: c for c in nbformat.read(paths.solution_for(lab), as_version=4).cells}
    path = next((root / "labs").glob(f"{lab}_*.ipynb"))
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cells.is_answer(solution[cell.id]):
            cell.source = "\n".join(line for line in solution[cell.id].source.splitlines()
                                    if "### BEGIN" not in line and "### END" not in line)
    nbformat.write(nb, path)


def test_no_answer_reaches_the_release(released):
    regions = [(where, body) for where, body in _regions() if len(body) >= 20]
    assert len(regions) > 50, "the regions were not found: the test would pass on anything"
    answers = [(ref.path, _normalised(build.written_file(paths.solution_for(ref.lab), ref.cell))) for ref in REFERENCES]
    answers += [(path, _normalised((paths.REPO / path).read_text())) for path in WITHHELD]
    files = [p for p in released.rglob("*") if p.is_file()]
    assert len(files) > 100
    for path in files:
        text = _normalised(_text(path))
        leaked = [where for where, body in regions + answers if body in text]
        assert not leaked, f"{path.relative_to(released)} holds the answers of {leaked}"


def test_the_release_has_what_a_student_needs_and_nothing_of_the_instructors(released):
    assert sorted(p.name for p in (released / "labs").iterdir()) == [p.name for p in LABS]
    for path in LABS:
        lab = nbformat.read(released / "labs" / path.name, as_version=4)
        assert lab == build.student_notebook(nbformat.read(path, as_version=4)), f"{path.name} is not as built"
        pristine = released / ".labkit" / "pristine" / path.name
        assert not pristine.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH), "pristine copies are read-only"
        marked = [c.id for c in nbformat.read(pristine, as_version=4).cells if cells.is_answer(c)]
        assert marked == [c.id for c in nbformat.read(path, as_version=4).cells if cells.is_answer(c)]
    for name in ("labkit/__init__.py", "labkit/cli.py", "labkit/course/grade.py", "environments/app/model_server",
                 "environments/kind/cluster.sh", "environment.yml", ".gitignore", "docs/faq.md", "docs/glossary.md"):
        assert (released / name).exists(), f"the release lacks {name}"
    assert sorted(p.name for p in (released / "docs").iterdir()) == ["faq.md", "glossary.md"], "instructors' docs shipped"
    assert [p.name for p in (released / ".github" / "workflows").iterdir()] == ["classroom.yml"]
    for name in ("solutions", "tests", "CHANGELOG.md", ".ci", ".secrets.baseline", "environments/release",
                 *(r.path for r in REFERENCES), *WITHHELD):
        assert not (released / name).exists(), f"the release holds {name}"
    assert not list(released.rglob("__pycache__")) and not list(released.rglob("*.egg-info"))
    readme = (released / "README.md").read_text()
    assert "make lab" in readme and "make grade LAB=01" in readme and "hidden" in readme
    assert readme == (paths.ENVIRONMENTS / "release" / "README.md").read_text()
    pyproject = tomllib.loads((released / "pyproject.toml").read_text())
    extras = pyproject["tool"]["setuptools"]["dynamic"]["optional-dependencies"]
    assert "test" not in extras and {"app", "cloud", "load"} <= set(extras)
    assert all((released / f).is_file() for spec in extras.values() for f in spec["file"])
    assert ".[app,load]" in (released / "environment.yml").read_text()


def test_the_student_makefile_runs_the_labs_and_the_self_check(released):
    targets = _in(released, "make", "help").stdout
    for target in ("setup", "lab", "grade", "doctor", "images", "clean", "cluster", "cluster-down"):
        assert f"make {target} " in targets
    assert "make test " not in targets and "make bench " not in targets
    lab = _in(released, "make", "-n", "lab").stdout
    assert "-m venv .venv" in lab and "pip install -q -e '.[app,cloud,load]'" in lab
    assert ".venv/bin/labkit images" in lab and ".venv/bin/labkit lab --port 8888" in lab
    grade = _in(released, "make", "-n", "grade", "LAB=00").stdout
    assert ".venv/bin/labkit grade labs/00_setup.ipynb --json reports/00.json" in grade


def test_release_refuses_a_folder_it_would_harm(released, tmp_path, capsys):
    assert cli.main(["release", str(released)]) == 1
    assert "--force" in capsys.readouterr().err
    with pytest.raises(release.ReleaseError, match="outside"):
        release.release(paths.REPO)
    with pytest.raises(release.ReleaseError, match="outside"):
        release.release(paths.ENVIRONMENTS / "out")


def test_a_lab_waits_for_the_answer_a_later_lab_builds_on(student):
    start = "import labkit\ntry:\n    labkit.start('02', workspace='work/02')\nexcept labkit.LabSetupError as e:\n    print(e)"
    said = _in(student, sys.executable, "-c", start, cwd=student / "labs", check=True).stdout
    assert "Finish that exercise of lab 01 first" in said and "'final-dockerfile'" in said
    assert not (student / "environments" / "app" / "Dockerfile").exists()

    _answered(student, "01")
    provide = ("import json, labkit\nfrom labkit import references\n"
               "written = references.provide('04')\n"
               "print(json.dumps([[str(p) for p in written], labkit.Lab('04').shipped_file('final-dockerfile', of='01')]))")
    written, shipped = json.loads(_in(student, sys.executable, "-c", provide, check=True).stdout)
    dockerfile = student / "environments" / "app" / "Dockerfile"
    assert written == [str(dockerfile)]
    header, body = dockerfile.read_text().split("\n", 1)
    assert header.startswith("# Written from your answer in labs/01_image_slimming.ipynb") and "lab 04" in header
    assert body == shipped == build.written_file(paths.solution_for("01"), "final-dockerfile")
    later = "from labkit import LabSetupError, references\ntry:\n    references.provide('07')\nexcept LabSetupError as e:\n    print(e)"
    assert "Finish that exercise of lab 02 first" in _in(student, sys.executable, "-c", later, check=True).stdout


@pytest.mark.docker
@pytest.mark.notebook
@pytest.mark.skipif(bool(probes.docker_reason()), reason=str(probes.docker_reason()))
def test_the_release_builds_runs_lab_00_and_grades_it_with_its_own_checks(student, tmp_path):
    wheel = _in(student, sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), ".")
    assert wheel.returncode == 0, wheel.stderr
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                                str(tmp_path / "site"), *map(str, (tmp_path / "dist").glob("*.whl"))],
                               capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr
    assert (tmp_path / "site" / "labkit" / "course" / "grade.py").is_file() and (tmp_path / "site" / "bin" / "labkit").is_file()

    _answered(student, "00")
    probe = nbformat.read(student / "labs" / "00_setup.ipynb", as_version=4)
    probe.cells.append(nbformat.v4.new_code_cell("import labkit\nprint(labkit.__file__)"))
    nbformat.write(probe, tmp_path / "probe.ipynb")
    ran = _in(student, sys.executable, "-m", "papermill", str(tmp_path / "probe.ipynb"), str(tmp_path / "ran.ipynb"),
              "--cwd", str(student / "labs"), "-k", "python3", timeout=300)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert nbformat.read(tmp_path / "ran.ipynb", as_version=4).cells[-1].outputs[0]["text"] \
        == f"{student / 'labkit' / '__init__.py'}\n", "the kernel imported another labkit than the release's"

    pristine = student / ".labkit" / "pristine" / "00_setup.ipynb"
    os.chmod(pristine, 0o644)  # mark the pristine copy's check cells, to see that grading runs them
    nb = nbformat.read(pristine, as_version=4)
    for cell in nb.cells:
        if cells.check_of(cell):
            cell.source += "\nprint('a check cell of the pristine copy')"
    nbformat.write(nb, pristine)
    graded = _in(student, sys.executable, "-m", "labkit.cli", "grade", "labs/00_setup.ipynb", "--json",
                 "reports/00.json", timeout=300)
    assert graded.returncode == 0, graded.stderr[-2000:]
    report = json.loads((student / "reports" / "00.json").read_text())
    assert [c["id"] for c in report["checks"]] == [i for _, i, _ in cells.checks(nb)]
    assert report["score"] == report["max_score"] > 0, report
    executed = nbformat.read(student / "reports" / "00.executed.ipynb", as_version=4)
    assert all("a check cell of the pristine copy" in cell.source for cell in executed.cells if cells.check_of(cell))
