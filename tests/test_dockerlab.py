"""Docker helpers against the real engine: builds, clear build errors, inspection, cleanup."""

import docker.errors
import pytest

from labkit import dockerlab, probes
from labkit.core import labels
from labkit.core.errors import RequirementNotMet
from labkit.tools.dockerlab import building, engine

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
    assert dockerlab.config(tag)["Labels"][labels.BUILT_BY] == engine.RUN_ID
    assert dockerlab.base_image(tag, ["python:3.11", "python:3.11-slim"]) == "python:3.11-slim"
    assert any("echo hi" in layer.instruction for layer in dockerlab.layers(tag))
    assert dockerlab.run_output(tag, lab=LAB) == (0, "hi\n")

    container = dockerlab.run(tag, lab=LAB, command=["sleep", "30"])
    with pytest.raises(RequirementNotMet, match="has no HEALTHCHECK"):
        dockerlab.wait_healthy(container, timeout=5, show=False)
    assert dockerlab.cleanup(LAB, show=False)["containers"] == 1
    monkeypatch.setattr(engine, "RUN_ID", "a-later-run")
    with pytest.raises(RequirementNotMet, match="not built by this run"):
        dockerlab.image(tag)
    dockerlab.image("python:3.11-slim")


def test_rebuilt_images_leave_nothing_dangling_after_a_prune(context):
    (context / "Dockerfile").write_text("FROM python:3.11-slim\nRUN date > /built\n")
    tag = f"labkit/{LAB}-again:v1"
    first = dockerlab.build(context, tag, lab=LAB, show=False)
    (context / "Dockerfile").write_text("FROM python:3.11-slim\nRUN date > /built; echo 2\n")
    dockerlab.build(context, tag, lab=LAB, show=False)
    dockerlab.prune_stale_images(LAB)
    with pytest.raises(docker.errors.ImageNotFound):
        dockerlab.client().images.get(first.id)
    assert dockerlab.remove_images(LAB, show=False) == 1
    with pytest.raises(RequirementNotMet, match="does not exist"):
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
    with pytest.raises(RequirementNotMet, match="still"):
        dockerlab.watch(container, until=lambda state: state[0] == "exited", timeout=1.5, every=0.5)


def test_checked_build_builds_what_the_dockerfile_says_now_and_names_the_failing_step(context):
    tag = f"labkit/{LAB}-checked:v1"
    (context / "Dockerfile").write_text("FROM python:3.11-slim\nRUN echo one > /value\n")
    first = dockerlab.checked_build(context, tag, lab=LAB)
    assert dockerlab.checked_build(context, tag, lab=LAB) is first  # nothing changed: not built again
    dockerlab.client().images.get("python:3.11-slim").tag(tag)      # the tag moved by hand…
    (context / "Dockerfile").write_text("FROM python:3.11-slim\nRUN echo two > /value\n")
    second = dockerlab.checked_build(context, tag, lab=LAB)          # …and the Dockerfile changed
    assert second.id != first.id and dockerlab.run_output(tag, ["cat", "/value"], lab=LAB) == (0, "two\n")
    (context / "Dockerfile").write_text("FROM python:3.11-slim\nRUN echo three\nRUN exit 7\n")
    with pytest.raises(RequirementNotMet, match=r"Dockerfile does not build: it stopped at Step 3/\d+ : RUN exit 7"):
        dockerlab.checked_build(context, tag, lab=LAB)
    with pytest.raises(RequirementNotMet, match=r"last build of .* failed at Step 3/\d+"):  # what the student kernel says
        dockerlab.image(tag)
    with pytest.raises(RequirementNotMet, match="does not exist: write it first"):
        dockerlab.checked_build(context, tag, lab=LAB, dockerfile="Dockerfile.missing")


def test_canonical_build_is_the_same_image_from_every_fresh_copy(context, tmp_path_factory):
    source = tmp_path_factory.mktemp("app")
    (source / "data.txt").write_text("the lab's own file\n")
    text = "FROM python:3.11-slim\nCOPY data.txt /data.txt\nRUN cat /data.txt > /copy\n"
    tag = f"labkit/{LAB}-reference:v1"
    first = dockerlab.canonical_build(text, tag, lab=LAB, context_from=source)
    building._BUILT_FOR_CHECKS.clear()
    again = dockerlab.canonical_build(text, tag, lab=LAB, context_from=source)
    assert again.id == first.id  # a new copy, served by the build cache


def test_the_filesystem_is_read_without_running_anything(context):
    (context / "Dockerfile").write_text("FROM python:3.11-slim\nRUN mkdir -p /srv/a && touch /srv/a/x /srv/a/y "
                                        "&& rm /bin/sh /usr/bin/dash\n")  # no shell left to run
    tag = f"labkit/{LAB}-fs:v1"
    dockerlab.build(context, tag, lab=LAB, show=False)
    assert dockerlab.existing_paths(tag, ["/srv/a/x", "/srv/a/none", "/usr/bin/dash"]) == {"/srv/a/x"}
    assert dockerlab.list_folder(tag, "/srv/a") == ["x", "y"] and dockerlab.list_folder(tag, "/nope") is None


def test_a_health_check_that_asks_nothing_is_caught_and_a_real_one_passes(context):
    server = "python -m http.server 8000"
    for name, check in (("noop", 'CMD ["true"]'),
                        ("real", 'CMD ["python", "-c", "import urllib.request; '
                                 'urllib.request.urlopen(\'http://127.0.0.1:8000/\', timeout=1)"]')):
        (context / f"Dockerfile.{name}").write_text(
            f"FROM python:3.11-slim\nHEALTHCHECK --interval=1s --timeout=1s --retries=2 {check}\nCMD {server}\n")
        dockerlab.build(context, f"labkit/{LAB}-{name}:v1", lab=LAB, dockerfile=f"Dockerfile.{name}", show=False)
    with dockerlab.running(f"labkit/{LAB}-real:v1", lab=LAB) as real:
        dockerlab.wait_healthy(real, timeout=30, show=False)
        assert dockerlab.health_notices_a_hang(real, slack=5) < 8
        dockerlab.wait_healthy(real, timeout=30, show=False)  # thawed afterwards
    with dockerlab.running(f"labkit/{LAB}-noop:v1", lab=LAB, name=f"labkit-{LAB}-noop") as noop:
        dockerlab.wait_healthy(noop, timeout=30, show=False)
        with pytest.raises(RequirementNotMet, match="health check still passed"):
            dockerlab.health_notices_a_hang(noop, slack=3)
    assert not dockerlab.client().containers.list(all=True, filters={"name": f"labkit-{LAB}-noop"})


def test_cleanup_also_removes_unlabelled_containers_named_for_the_lab(context):
    c = dockerlab.client().containers.create("python:3.11-slim", ["true"], name=f"labkit-{LAB}-unlabelled")
    other = dockerlab.client().containers.create("python:3.11-slim", ["true"], name="labkit-t8-not-mine")
    try:
        assert dockerlab.cleanup(LAB, show=False)["containers"] == 1
        with pytest.raises(docker.errors.NotFound):
            c.reload()
        other.reload()  # another lab's is left alone
    finally:
        other.remove(force=True)
