"""Fixtures several test files share."""

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
