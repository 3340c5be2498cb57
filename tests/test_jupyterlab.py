"""Smoke test: JupyterLab starts the way `make lab` starts it, serves the lab notebooks and runs a
kernel whose traffic is encrypted (so ipykernel prints no warning about plain-text TCP)."""

import asyncio
import json
import uuid

import requests
from tornado.websocket import websocket_connect

from labkit import paths


def test_jupyterlab_lists_the_labs_and_runs_an_encrypted_kernel(jupyterlab, tmp_path):
    server = jupyterlab()
    names = {item["name"] for item in server.get("/api/contents").json()["content"]}
    expected = {p.name for p in paths.lab_notebooks(paths.LABS)}
    assert expected and expected <= names
    lab_page = server.get("/lab")
    assert lab_page.status_code == 200 and "JupyterLab" in lab_page.text
    kernel = requests.post(f"{server.url}/api/kernels", params={"token": server.token},
                           json={"name": "python3"}, timeout=30).json()
    connection = json.loads((tmp_path / "runtime" / f"kernel-{kernel['id']}.json").read_text())
    assert connection.get("curve_publickey"), "the kernel was started without CurveZMQ keys"
    url = f"{server.url.replace('http', 'ws', 1)}/api/kernels/{kernel['id']}/channels?token={server.token}"
    assert asyncio.run(asyncio.wait_for(_run_code(url, "print(6 * 7)"), 60)) == "42\n"
    assert "without encryption" not in server.log.read_text(errors="replace")


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
