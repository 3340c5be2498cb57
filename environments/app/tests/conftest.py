"""Fixtures for the sample model server's tests: they run the app outside Docker.

Servers run as real subprocesses (``python -m model_server http ...`` with
cwd=environments/app, as in the image) and are always killed at teardown.
Helpers are handed out as fixtures, not imported, so this file never clashes
with another conftest.py when several test folders run in one session.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pytest

APP_DIR = Path(__file__).resolve().parents[1]
if str(APP_DIR) not in sys.path:
    sys.path.insert(0, str(APP_DIR))  # `import model_server` in unit tests

# Variables that change how the server resolves its settings: never inherit them.
SERVER_ENV = ("AIP_HTTP_PORT", "AIP_HEALTH_ROUTE", "AIP_PREDICT_ROUTE", "AIP_STORAGE_URI",
              "SAGEMAKER_BIND_TO_PORT", "SAGEMAKER_MODEL_SERVER_TIMEOUT", "PORT", "MODEL_DIR",
              "APP_VERSION", "MODEL_LOAD_DELAY_S", "PREDICT_DELAY_S", "SHUTDOWN_GRACE_S",
              "LOG_REQUESTS", "SOURCE_DATE_EPOCH")


@dataclass
class Response:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


def http(method: str, url: str, body: Optional[bytes | dict] = None, headers: Optional[dict] = None,
         timeout: float = 10.0) -> Response:
    """One request with urllib; HTTP errors are returned, not raised."""
    if isinstance(body, dict):
        body = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **(headers or {})}
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return Response(resp.status, dict(resp.headers), resp.read())
    except urllib.error.HTTPError as exc:
        return Response(exc.code, dict(exc.headers), exc.read())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(**overrides: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in SERVER_ENV}
    env.update({"PYTHONUNBUFFERED": "1", **overrides})
    return env


@dataclass
class ServerProcess:
    proc: subprocess.Popen
    port: int
    log_path: Path
    extra: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, **kw) -> Response:
        return http("GET", self.url + path, **kw)

    def post(self, path: str, body=None, **kw) -> Response:
        return http("POST", self.url + path, body, **kw)

    def output(self) -> str:
        return self.log_path.read_text()

    def wait_listening(self, timeout: float = 10.0) -> None:
        self._wait(lambda: self.get("/healthz", timeout=1).status == 200, timeout, "listening")

    def wait_ready(self, timeout: float = 15.0) -> None:
        self._wait(lambda: self.get("/readyz", timeout=1).status == 200, timeout, "ready")

    def _wait(self, check, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if check():
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"server not {what} after {timeout} s:\n{self.output()}")

    def send_signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


def launch(tmp: Path, args: list[str], env: Optional[dict] = None, port: Optional[int] = None,
           command: str = "http") -> ServerProcess:
    """Start ``python -m model_server <command> <args>``; the caller must kill() it."""
    port = port or free_port()
    log_path = tmp / f"server-{port}-{time.monotonic_ns()}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "model_server", command, *args], cwd=APP_DIR,
                                env=clean_env(**(env or {})), stdout=log, stderr=subprocess.STDOUT)
    return ServerProcess(proc, port, log_path)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    from model_server.train import train

    out = tmp_path_factory.mktemp("model")
    train(out)
    return out


@pytest.fixture(scope="session")
def server_factory(tmp_path_factory, model_dir):
    """make(env=, args=, port=, with_port_flag=True, command="http", model=) -> ServerProcess.

    The caller owns the process and must kill() it; tests use start_server instead.
    """
    logs = tmp_path_factory.mktemp("server-logs")

    def make(env: Optional[dict] = None, args: Optional[list[str]] = None, port: Optional[int] = None,
             with_port_flag: bool = True, command: str = "http", model: Optional[Path] = None):
        port = port or free_port()
        argv = list(args or []) + ["--model-dir", str(model or model_dir)]
        if with_port_flag:
            argv += ["--port", str(port)]
        return launch(logs, argv, env, port, command)

    return make


@pytest.fixture
def start_server(server_factory):
    """Like server_factory, but every server it starts is killed when the test ends."""
    started: list[ServerProcess] = []

    def start(**kwargs) -> ServerProcess:
        server = server_factory(**kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


VERTEX_HEALTH, VERTEX_PREDICT = "/v1/endpoints/1/deployedModels/2", "/v1/endpoints/1/deployedModels/2:predict"


@pytest.fixture(scope="session")
def servers(server_factory):
    """Every long-lived test server, started together: loading scikit-learn takes a
    second or two per process, so loading them in parallel keeps the suite fast."""
    vertex, sagemaker = free_port(), free_port()
    specs = {
        "main": dict(env={"APP_VERSION": "1.2.3-test"}),
        "vertex": dict(port=vertex, with_port_flag=False, env={
            "AIP_HTTP_PORT": str(vertex), "AIP_HEALTH_ROUTE": VERTEX_HEALTH, "AIP_PREDICT_ROUTE": VERTEX_PREDICT,
            "SAGEMAKER_BIND_TO_PORT": str(free_port()), "PORT": str(free_port()),  # lower precedence
        }),
        "sagemaker": dict(command="serve", port=sagemaker, with_port_flag=False, env={
            "SAGEMAKER_BIND_TO_PORT": str(sagemaker), "PORT": str(free_port()),
            "SAGEMAKER_MODEL_SERVER_TIMEOUT": "120", "APP_VERSION": "2.0.0", "MODEL_LOAD_DELAY_S": "0.3",
        }),
        "sigterm": dict(env={"PREDICT_DELAY_S": "1.0"}),
        "grace": dict(env={"PREDICT_DELAY_S": "5", "SHUTDOWN_GRACE_S": "0.3"}),
        "loading": dict(env={"MODEL_LOAD_DELAY_S": "3600"}),  # never ready during the session
    }
    started: dict[str, ServerProcess] = {}
    try:
        for name, spec in specs.items():
            started[name] = server_factory(**spec)
        started["vertex"].extra.update(health_route=VERTEX_HEALTH, predict_route=VERTEX_PREDICT)
        for name, server in started.items():
            if name == "loading":
                server.wait_listening()
            else:
                server.wait_ready()
        yield started
    finally:
        for server in started.values():
            server.kill()


@pytest.fixture(scope="session")
def ready_server(servers):
    """One loaded server shared by the read-only route tests (APP_VERSION=1.2.3-test)."""
    return servers["main"]


@pytest.fixture
def contract_servers(servers):
    """Servers with their own settings: vertex, sagemaker, loading (still loading its model),
    sigterm and grace; the last three are stopped by the tests that use them."""
    return servers


@pytest.fixture
def request_http():
    return http


@pytest.fixture(scope="session")
def unused_port():
    return free_port


@pytest.fixture
def run_cli():
    """run_cli(*args, env={...}) -> CompletedProcess of ``python -m model_server ARGS``."""
    def run(*args: str, env: Optional[dict] = None, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "model_server", *args], cwd=APP_DIR,
                              env=clean_env(**(env or {})), capture_output=True, text=True, timeout=timeout)
    return run
