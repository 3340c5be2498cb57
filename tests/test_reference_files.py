"""The reference files in environments/ that later labs, `make cluster` and the benchmark use
are the solutions' answers, byte for byte (those of labs 01 and 04 carry a one-line header)."""

import pytest

from labkit import build, paths
from labkit.references import REFERENCES


@pytest.mark.parametrize("ref", REFERENCES, ids=lambda ref: ref.path)
def test_reference_file_is_the_solutions_answer(ref):
    text = (paths.REPO / ref.path).read_text()
    body = "".join(line for line in text.splitlines(keepends=True) if not line.startswith(("# Lab 01's", "# Lab 04's")))
    assert body == build.written_file(paths.solution_for(ref.lab), ref.cell), f"{ref.path} differs from the solution"


def test_student_copy_of_the_app_holds_no_answers(tmp_path):
    from labkit.lab import Lab

    app = Lab("01", tmp_path).copy_app()
    assert not (app / "Dockerfile").exists() and not (app / ".dockerignore").exists()
    assert (app / ".git").is_dir() and (app / "tests").is_dir() and (app / "data").is_dir()
