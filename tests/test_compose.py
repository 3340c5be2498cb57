"""labkit.compose's waits and names, on stand-in containers (no engine): what a lab's cell sees
while a project comes up, and what a check says when it does not."""

from __future__ import annotations

import time

import pytest

from labkit import compose
from labkit.core.errors import RequirementNotMet


class Container:
    """What compose and dockerlab read of a Docker SDK container."""

    def __init__(self, name: str, service: str, status: str = "running", health: str | None = None,
                 ports: dict | None = None):
        self.name, self.status, self.labels = name, status, {"com.docker.compose.service": service}
        state = {"Status": status, "StartedAt": "2026-01-01T00:00:00Z",
                 **({"Health": {"Status": health}} if health else {})}
        self.attrs = {"State": state, "RestartCount": 2, "NetworkSettings": {"Ports": ports or {}}}

    def reload(self) -> None:
        pass

    def logs(self, tail: int) -> bytes:
        return b"loading model\nout of memory\n"


@pytest.fixture
def clock(monkeypatch):
    """A clock that only sleeping moves, so that waits of many seconds take none."""
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    monkeypatch.setattr(time, "sleep", lambda seconds: now.__setitem__(0, now[0] + seconds))
    return now


def looks(monkeypatch, *seen: list[Container]) -> None:
    """compose.containers returns each list in turn (the last one for ever), of a service when asked."""
    queue = list(seen)

    def containers(project, service=None):
        found = queue.pop(0) if len(queue) > 1 else queue[0]
        return [c for c in found if service is None or c.labels["com.docker.compose.service"] == service]

    monkeypatch.setattr(compose, "containers", containers)


def test_wait_healthy_returns_the_containers_once_all_are_healthy(monkeypatch, clock, capsys):
    starting, healthy = Container("p-app-1", "app", health="starting"), Container("p-app-1", "app", health="healthy")
    proxy = Container("p-proxy-1", "proxy")  # no healthcheck: running is enough
    looks(monkeypatch, [starting, proxy], [healthy, proxy])
    assert compose.wait_healthy("p", ("app", "proxy")) == {"app": ["p-app-1"], "proxy": ["p-proxy-1"]}
    assert capsys.readouterr().out == "healthy: p-app-1, p-proxy-1\n"


def test_wait_healthy_says_what_it_saw_last_and_shows_the_failing_containers_log(monkeypatch, clock):
    looks(monkeypatch, [Container("p-app-1", "app", health="unhealthy"), Container("p-proxy-1", "proxy")])
    started = clock[0]
    with pytest.raises(RequirementNotMet, match=r"(?s)project p to be healthy: not within 30s \(states "
                                                r"\{'p-app-1': 'unhealthy', 'p-proxy-1': 'none'\}; last log lines "
                                                r"of p-app-1:\nloading model\nout of memory"):
        compose.wait_healthy("p", ("app", "proxy"), timeout=30, show=False)
    assert clock[0] - started == 30
    looks(monkeypatch, [Container("p-app-1", "app", health="healthy")])
    with pytest.raises(RequirementNotMet, match=r"replica counts \{'app': 1\}, wanted \{'app': 3\}\)$"):
        compose.wait_healthy("p", ("app",), count={"app": 3}, timeout=10, show=False)
    with pytest.raises(RequirementNotMet, match=r"no container of service\(s\) \['proxy'\]\)$"):
        compose.wait_healthy("p", ("app", "proxy"), timeout=10, show=False)


def test_a_project_with_no_container_fails_after_5s_not_at_the_deadline(monkeypatch, clock):
    looks(monkeypatch, [])
    started = clock[0]
    with pytest.raises(RequirementNotMet, match="^project p to be healthy: no containers in project p after 5s$"):
        compose.wait_healthy("p", timeout=90, show=False)
    assert 5 < clock[0] - started < 6


def test_published_port_waits_for_a_restarting_replica_and_says_why_it_has_none(monkeypatch, clock):
    restarting = Container("p-proxy-1", "proxy", status="restarting")
    back = Container("p-proxy-1", "proxy", ports={"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "49153"}]})
    looks(monkeypatch, [restarting], [restarting], [back])
    assert compose.published_port("p", "proxy", 80) == 49153
    looks(monkeypatch, [Container("p-proxy-1", "proxy")])
    with pytest.raises(RequirementNotMet, match=r"service proxy of project p to publish port 80: not within 10s "
                                                r"\(container p-proxy-1 publishes no port 80 \(it is running"):
        compose.published_port("p", "proxy", 80)
    looks(monkeypatch, [restarting])
    with pytest.raises(RequirementNotMet, match=r"\(service proxy of project p has no running container\)$"):
        compose.published_port("p", "proxy", 80, timeout=2)


def test_container_and_project_name(monkeypatch):
    looks(monkeypatch, [Container("p-app-2", "app"), Container("p-app-1", "app")])
    assert compose.container("p", "app").name == "p-app-1"
    with pytest.raises(RequirementNotMet, match="project p has no proxy container: run the `compose up` cell"):
        compose.container("p", "proxy")
    assert compose.project_name("02", "stack") == "labkit-02-stack"
    assert compose.project_name("03", "My secrets_demo") == "labkit-03-my-secrets_demo"
