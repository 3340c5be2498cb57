"""Fixtures several test files share."""

import pytest

from labkit import emulators


@pytest.fixture(scope="session")
def moto_server():
    """One moto server for the whole session, on a free port (never the grader's, never 4566)."""
    server = emulators.start_moto(emulators.free_port(None), show=False)
    yield server
    server.stop()


@pytest.fixture
def moto(moto_server):
    """The session's moto server, emptied first (moto's reset API): each test starts from a clean state."""
    moto_server.reset()
    return moto_server
