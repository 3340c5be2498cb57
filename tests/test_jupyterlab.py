"""Smoke test: JupyterLab starts the way `make lab` starts it, serves the lab notebooks and runs a
kernel whose traffic is encrypted (so ipykernel prints no warning about plain-text TCP)."""

import asyncio
import json
import os
import secrets
import socket
import subprocess
import time
import uuid

import requests
from tornado.websocket import websocket_connect

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
        kernel = requests.post(f"http://127.0.0.1:{port}/api/kernels", params={"token": token},
                               json={"name": "python3"}, timeout=30).json()
        connection = json.loads((tmp_path / f"kernel-{kernel['id']}.json").read_text())
        assert connection.get("curve_publickey"), "the kernel was started without CurveZMQ keys"
        url = f"ws://127.0.0.1:{port}/api/kernels/{kernel['id']}/channels?token={token}"
        assert asyncio.run(asyncio.wait_for(_run_code(url, "print(6 * 7)"), 60)) == "42\n"
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert "without encryption" not in server.stderr.read().decode()


async def _run_code(url: str, code: str) -> str:
    """What ``code`` prints in the kernel behind a JupyterLab websocket, as the browser asks it."""
    channel = await websocket_connect(url)
    request = {"header": {"msg_id": uuid.uuid4().hex, "msg_type": "execute_request", "session": uuid.uuid4().hex,
                          "username": "", "version": "5.3"},
               "parent_header": {}, "metadata": {}, "content": {"code": code, "silent": False}, "channel": "shell"}
    await channel.write_message(json.dumps(request))
    try:
        while True:
            message = json.loads(await channel.read_message())
            if message["parent_header"].get("msg_id") == request["header"]["msg_id"]:
                if message["msg_type"] == "stream":
                    return message["content"]["text"]
                if message["msg_type"] == "error":
                    raise AssertionError(f"the kernel failed: {message['content']['evalue']}")
    finally:
        channel.close()
