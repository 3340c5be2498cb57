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


def test_tool_errors_are_command_errors():
    assert issubclass(k8s.K8sError, commands.CommandError)
    assert issubclass(compose.ComposeError, commands.CommandError)
