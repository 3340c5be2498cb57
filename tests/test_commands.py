"""labkit.commands.run: what a student sees when a tool is missing, hangs or fails."""

import sys

import pytest

from labkit import commands, compose, k8s


def test_run_prints_the_command_and_returns_its_output(capsys):
    done = commands.run([sys.executable, "-c", "print('hi')"])
    assert done.stdout == "hi\n" and capsys.readouterr().out.startswith("$ ")


def test_failures_say_what_and_show_the_end_of_the_output():
    with pytest.raises(commands.CommandError, match=r"failed \(exit 3\):\nboom"):
        commands.run([sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"], show=False)
    with pytest.raises(commands.CommandError, match="did not finish within 1s"):
        commands.run([sys.executable, "-c", "import time; time.sleep(5)"], timeout=1, show=False)
    with pytest.raises(k8s.K8sError, match="no-such-tool is not installed"):
        commands.run(["no-such-tool"], show=False, error=k8s.K8sError)
    assert commands.run([sys.executable, "-c", "raise SystemExit(1)"], show=False, check=False).returncode == 1


def test_each_tool_fails_with_its_own_error_a_caller_can_catch_as_a_command_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no kind, kubectl or compose here
    with pytest.raises(k8s.K8sError, match="kind is not installed") as kind_failed:
        k8s.kind("version", show=False)
    with pytest.raises(k8s.K8sError, match="kubectl is not installed"):
        k8s.kubectl("version", "--client", show=False)
    monkeypatch.setattr(compose, "command", lambda: ["docker-compose-that-is-not-here"])
    with pytest.raises(compose.ComposeError, match="docker-compose-that-is-not-here is not installed") as compose_failed:
        compose.run(tmp_path, "labkit-t0-x", "ps", show=False)
    for failure in (kind_failed, compose_failed):
        assert isinstance(failure.value, commands.CommandError)
