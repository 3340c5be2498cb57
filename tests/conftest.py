"""Fixtures several test files share."""

import http.server
import os
import secrets
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from labkit import emulators, paths
from labkit.cli import jupyter_argv


class SharedMoto:
    """One moto server for the session, on a free port (never the grader's, never 4566), started
    when a test first asks for it. Notebook tests grade labs, which start their own emulators and
    then check that none is left running: it is stopped before them, and starts again after."""

    def __init__(self) -> None:
        self.server: emulators.Moto | None = None

    def get(self) -> emulators.Moto:
        if self.server is None or not self.server.running():
            self.server = emulators.start_moto(emulators.free_port(None), show=False)
        return self.server

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


_SHARED = SharedMoto()


@pytest.fixture(scope="session")
def moto_server() -> SharedMoto:
    yield _SHARED
    _SHARED.stop()


@pytest.fixture
def moto(moto_server):
    """The session's moto server, emptied first (moto's reset API): each test starts from a clean state."""
    server = moto_server.get()
    server.reset()
    return server


def pytest_runtest_teardown(item, nextitem):
    if nextitem is not None and nextitem.get_closest_marker("notebook"):
        _SHARED.stop()


class _Answer(http.server.BaseHTTPRequestHandler):
    """Answers every POST with ``{}`` and its server's ``version`` in X-Model-Version, after its
    server's ``delay_s`` (a few milliseconds of "model", for a load that must outlast an action)."""

    def do_POST(self):  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        time.sleep(self.server.delay_s)
        self.send_response(200)
        self.send_header("X-Model-Version", self.server.version)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def local_server():
    """A threading HTTP server on 127.0.0.1 for the load tools' tests (``.version``, ``.delay_s``)."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    httpd.version, httpd.delay_s = "1.0", 0.0
    thread = threading.Thread(target=httpd.serve_forever, name="test-server", daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def compose_stack():
    """``start(directory, lab, name, services)``: build ``labkit/<lab>-app:v1`` from the sample app,
    bring up the Compose project in ``directory`` and wait until ``services`` are healthy; returns
    the project's name. Skips without an engine or Compose. Afterwards everything of ``lab`` is
    removed, and the test fails if a container of the project is left."""
    from labkit import compose, dockerlab, paths, probes

    started = []

    def start(directory, lab: str, name: str, services: tuple[str, ...]) -> str:
        if probes.docker_reason() or not probes.compose_command():
            pytest.skip(probes.docker_reason() or probes.compose_reason())
        project = compose.project_name(lab, name)
        started.append((directory, project, lab))
        dockerlab.build(paths.APP, f"labkit/{lab}-app:v1", lab=lab, show=False)
        compose.up(directory, project, show=False)
        compose.wait_healthy(project, services, timeout=120, show=False)
        return project

    yield start
    for directory, project, lab in started:
        compose.down(directory, project, show=False)
        dockerlab.cleanup(lab, show=False)
        dockerlab.remove_images(lab, show=False)
        label = {"label": f"com.docker.compose.project={project}"}
        assert dockerlab.client().containers.list(all=True, filters=label) == []
        assert dockerlab.client().networks.list(filters=label) == []


@dataclass
class JupyterLab:
    """A JupyterLab server started by the ``jupyterlab`` fixture."""
    url: str  # http://127.0.0.1:PORT
    token: str
    process: subprocess.Popen
    log: Path  # the server's output, and its kernels'

    def log_tail(self, chars: int = 2000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def get(self, path: str, **params) -> requests.Response:
        return requests.get(f"{self.url}{path}", params={"token": self.token, **params}, timeout=5)

    def page(self, path: str = "/lab") -> str:
        """The address a browser opens, token included."""
        return f"{self.url}{path}?token={self.token}"

    def stop(self) -> None:
        """Shut its kernels down (their atexit cleanups run), then the server."""
        if self.process.poll() is None:
            for kernel in self.get("/api/kernels").json():
                requests.delete(f"{self.url}/api/kernels/{kernel['id']}", params={"token": self.token}, timeout=30)
            self.process.terminate()
        self.process.wait(timeout=20)


@pytest.fixture
def jupyterlab(tmp_path):
    """``start(notebook_dir=labs/)``: JupyterLab as `make lab` starts it (labkit.cli.jupyter_argv), on a
    free port with a token, its settings, workspaces and runtime files in ``tmp_path``, its kernels
    importing this checkout's labkit without LABKIT_STRICT (a student's kernel); returns a
    :class:`JupyterLab` once it answers. Stopped afterwards, kernels first."""
    started: list[JupyterLab] = []

    def start(notebook_dir: Path = paths.LABS) -> JupyterLab:
        port, token = emulators.free_port(None), secrets.token_hex(16)
        env = {key: value for key, value in os.environ.items() if key != "LABKIT_STRICT"}
        env.update(JUPYTER_TOKEN=token, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
                   JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
                   JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"),
                   JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"),
                   PYTHONPATH=os.pathsep.join(filter(None, [str(paths.REPO), os.environ.get("PYTHONPATH")])))
        # no "Jupyter news" prompt over the page: it would fetch from the internet and cover screenshots
        news = tmp_path / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
        news.parent.mkdir(parents=True, exist_ok=True)
        news.write_text('{"fetchNews": "false", "checkForUpdates": false}')
        log = tmp_path / f"jupyterlab-{port}.log"  # a file, not a pipe: a full pipe would block the server
        with log.open("wb") as out:
            process = subprocess.Popen(jupyter_argv(port, ["--no-browser"], notebook_dir), env=env,
                                       stdout=subprocess.DEVNULL, stderr=out)
        lab = JupyterLab(f"http://127.0.0.1:{port}", token, process, log)
        started.append(lab)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            try:
                lab.get("/api/status").raise_for_status()
                return lab
            except requests.ConnectionError:
                time.sleep(0.5)
        pytest.fail(f"JupyterLab did not answer: {lab.log_tail()}")

    yield start
    for lab in started:
        lab.stop()
