"""The reference files in environments/ that later labs, `make cluster` and the benchmark use
are the solutions' answers, byte for byte (those of labs 01 and 04 carry a one-line header)."""

import pytest

from labkit import build, paths

REFERENCES = [
    ("01", "final-dockerfile", "environments/app/Dockerfile"),
    ("01", "ignore-file", "environments/app/.dockerignore"),
    ("02", "compose-file", "environments/compose/compose.yaml"),
    ("02", "k8s-deployment", "environments/k8s/app/base/deployment.yaml"),
    ("02", "overlay-dev", "environments/k8s/app/overlays/dev/kustomization.yaml"),
    ("02", "overlay-prod", "environments/k8s/app/overlays/prod/kustomization.yaml"),
    ("04", "dockerfile", "environments/gpu/Dockerfile"),
    ("04", "compose-file", "environments/gpu/compose.yaml"),
    ("04", "k8s-file", "environments/gpu/k8s/deployment.yaml"),
]


@pytest.mark.parametrize("lab,cell,path", REFERENCES)
def test_reference_file_is_the_solutions_answer(lab, cell, path):
    text = (paths.REPO / path).read_text()
    body = "".join(line for line in text.splitlines(keepends=True) if not line.startswith(("# Lab 01's", "# Lab 04's")))
    assert body == build.written_file(paths.solution_for(lab), cell), f"{path} differs from the solution"


def test_student_copy_of_the_app_holds_no_answers(tmp_path):
    from labkit.lab import Lab

    app = Lab("01", tmp_path).copy_app()
    assert not (app / "Dockerfile").exists() and not (app / ".dockerignore").exists()
    assert (app / ".git").is_dir() and (app / "tests").is_dir() and (app / "data").is_dir()
