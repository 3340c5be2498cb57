"""Docker helpers against the real engine: builds, clear build errors, inspection, cleanup."""

import pytest

from labkit import dockerlab, probes

pytestmark = [pytest.mark.docker,
              pytest.mark.skipif(bool(probes.docker_reason()), reason=str(probes.docker_reason()))]
LAB = "t9"


@pytest.fixture
def context(tmp_path):
    yield tmp_path
    dockerlab.cleanup(LAB, show=False)
    dockerlab.remove_images(LAB, show=False)


def test_build_inspect_run_and_clean_up(context, capsys, monkeypatch):
    (context / "Dockerfile").write_text(
        "FROM python:3.11-slim\nRUN echo hi > /greeting\nUSER nobody\nCMD [\"cat\", \"/greeting\"]\n")
    tag = f"labkit/{LAB}-demo:v1"
    dockerlab.build(context, tag, lab=LAB)
    out = capsys.readouterr().out
    assert f"$ docker build -t {tag}" in out and "Step 2/" in out
    assert dockerlab.path_exists(tag, "/greeting") and not dockerlab.path_exists(tag, "/nope")
    assert dockerlab.config(tag)["User"] == "nobody"
    assert dockerlab.base_image(tag, ["python:3.11", "python:3.11-slim"]) == "python:3.11-slim"
    assert any("echo hi" in layer.instruction for layer in dockerlab.layers(tag))
    assert dockerlab.run_output(tag, lab=LAB) == (0, "hi\n")

    container = dockerlab.run(tag, lab=LAB, command=["sleep", "30"])
    with pytest.raises(AssertionError, match="has no HEALTHCHECK"):
        dockerlab.wait_healthy(container, timeout=5, show=False)
    assert dockerlab.cleanup(LAB, show=False)["containers"] == 1
    monkeypatch.setattr(dockerlab, "RUN_ID", "a-later-run")
    with pytest.raises(AssertionError, match="not built by this run"):
        dockerlab.image(tag)
    dockerlab.image("python:3.11-slim")


def test_rebuilt_images_leave_nothing_dangling_after_a_prune(context):
    (context / "Dockerfile").write_text("FROM python:3.11-slim\nRUN date > /built\n")
    tag = f"labkit/{LAB}-again:v1"
    first = dockerlab.build(context, tag, lab=LAB, show=False)
    (context / "Dockerfile").write_text("FROM python:3.11-slim\nRUN date > /built; echo 2\n")
    dockerlab.build(context, tag, lab=LAB, show=False)
    dockerlab.prune_stale_images(LAB)
    with pytest.raises(Exception):
        dockerlab.client().images.get(first.id)
    assert dockerlab.remove_images(LAB, show=False) == 1
    with pytest.raises(AssertionError, match="does not exist"):
        dockerlab.image(tag)


def test_a_broken_dockerfile_gets_a_clear_message(context):
    (context / "Dockerfile").write_text("FROM python:3.11-slim\nRUN exit 3\n")
    with pytest.raises(dockerlab.BuildError) as failure:
        dockerlab.build(context, f"labkit/{LAB}-broken:v1", lab=LAB, show=False)
    assert "Step 2/" in str(failure.value) and "exit 3" in str(failure.value)
    (context / "Dockerfile").write_text("# YOUR CODE HERE\n")
    with pytest.raises(dockerlab.BuildError, match="docker build failed"):
        dockerlab.build(context, f"labkit/{LAB}-empty:v1", lab=LAB, show=False)
    with pytest.raises(dockerlab.DockerLabError, match="does not exist: write it first"):
        dockerlab.build(context, f"labkit/{LAB}-x:v1", lab=LAB, dockerfile="Dockerfile.missing")


def test_context_files_follow_dockerignore(tmp_path):
    for name in ("app.py", ".git/HEAD", "tests/test_app.py", "nb/.ipynb_checkpoints/a-checkpoint.ipynb"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    assert ".git/HEAD" in dockerlab.context_files(tmp_path)
    (tmp_path / ".dockerignore").write_text("# junk\n.git\ntests/\n**/.ipynb_checkpoints\n")
    sent = dockerlab.context_files(tmp_path)
    assert "app.py" in sent and not any(p.startswith((".git", "tests")) or "checkpoints" in p for p in sent)


def test_container_state_helpers(context):
    container = dockerlab.run("python:3.11-slim", lab=LAB, command=["sleep", "30"], init=True)
    assert dockerlab.health(container) == "none" and dockerlab.restart_count(container) == 0
    assert dockerlab.child_of_init(container) > 1
    assert dockerlab.watch(container, until=lambda state: state[0] == "running", timeout=10) < 10
    with pytest.raises(AssertionError, match="still"):
        dockerlab.watch(container, until=lambda state: state[0] == "exited", timeout=1.5, every=0.5)
