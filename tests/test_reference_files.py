"""The reference files later labs and the benchmark build from are lab 01's solution."""

from labkit import build, paths


def test_app_dockerfile_and_dockerignore_are_lab_01s_answers():
    solution = paths.solution_for("01")
    for name, cell in (("Dockerfile", "final-dockerfile"), (".dockerignore", "ignore-file")):
        text = (paths.APP / name).read_text()
        body = "".join(line for line in text.splitlines(keepends=True) if not line.startswith("# Lab 01"))
        assert body == build.written_file(solution, cell), f"environments/app/{name} differs from the solution"


def test_student_copy_of_the_app_holds_no_answers(tmp_path):
    from labkit.lab import Lab

    app = Lab("01", tmp_path).copy_app()
    assert not (app / "Dockerfile").exists() and not (app / ".dockerignore").exists()
    assert (app / ".git").is_dir() and (app / "tests").is_dir() and (app / "data").is_dir()
