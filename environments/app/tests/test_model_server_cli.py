"""The command line: train, healthcheck and the default sub-command."""
from __future__ import annotations

import json

from model_server.__main__ import main


def test_train_command(capsys, tmp_path, monkeypatch):
    # in-process (scikit-learn is already imported); test_help_lists_commands runs `python -m`.
    out = tmp_path / "model"
    assert main(["train", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["model_dir"] == str(out) and summary["accuracy"] >= 0.9
    assert (out / "model.joblib").is_file() and (out / "metadata.json").is_file()
    monkeypatch.setenv("MODEL_DIR", str(tmp_path / "env-model"))  # the default --out
    assert main(["train"]) == 0
    assert (tmp_path / "env-model" / "model.joblib").is_file()


def test_healthcheck(run_cli, ready_server, unused_port):
    ok = run_cli("healthcheck", "--url", ready_server.url + "/healthz")
    assert ok.returncode == 0 and "healthy" in ok.stdout
    # no --url: the port is resolved like the server resolves it
    assert run_cli("healthcheck", env={"PORT": str(ready_server.port)}).returncode == 0
    assert run_cli("healthcheck", env={"AIP_HTTP_PORT": str(ready_server.port), "PORT": "1"}).returncode == 0
    assert run_cli("healthcheck", "--ready", env={"PORT": str(ready_server.port)}).returncode == 0
    assert run_cli("healthcheck", "--url", ready_server.url + "/nope").returncode == 1
    down = run_cli("healthcheck", env={"PORT": str(unused_port())})
    assert down.returncode == 1 and "unhealthy" in down.stderr


def test_help_lists_commands(run_cli):
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("http", "serve", "train", "healthcheck"):
        assert command in result.stdout


def test_bad_env_exits_with_message(run_cli):
    result = run_cli("--port", "1", env={"MODEL_LOAD_DELAY_S": "soon"}, timeout=10)
    assert result.returncode == 2 and "MODEL_LOAD_DELAY_S='soon' is not a number" in result.stderr
