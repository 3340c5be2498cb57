"""Fixtures several test files share."""

import http.server
import threading
import time

import pytest

from labkit import emulators


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
