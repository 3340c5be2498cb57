"""Smoke test: JupyterLab starts the way `make lab` starts it and serves the lab notebooks."""

import os
import secrets
import socket
import subprocess
import time

import requests

from labkit import paths
from labkit.cli import jupyter_argv


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_jupyterlab_lists_the_labs(tmp_path):
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_TOKEN=token, JUPYTER_RUNTIME_DIR=str(tmp_path),
               JUPYTER_CONFIG_DIR=str(tmp_path / "config"))
    argv = jupyter_argv(port, ["--no-browser"])
    server = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline, answer = time.monotonic() + 60, None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                answer = requests.get(f"http://127.0.0.1:{port}/api/contents",
                                      params={"token": token}, timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.5)
        assert answer is not None, f"JupyterLab did not answer: {server.stderr.read1().decode()[-800:]}"
        names = {item["name"] for item in answer.json()["content"]}
        expected = {p.name for p in paths.lab_notebooks(paths.LABS)}
        assert expected and expected <= names
        lab_page = requests.get(f"http://127.0.0.1:{port}/lab", params={"token": token}, timeout=5)
        assert lab_page.status_code == 200 and "JupyterLab" in lab_page.text
    finally:
        server.terminate()
        server.wait(timeout=20)
