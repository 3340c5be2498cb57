"""dockerlab's waits and its shared state, on fake containers and a fake client: no engine needed."""

import docker.errors
import pytest

from labkit import dockerlab
from labkit.core.errors import LabkitError, RequirementNotMet
from labkit.tools.dockerlab import cleaning, engine


class FakeContainer:
    """A container whose ``attrs["State"]`` moves through ``states``, one per reload (the last stays)."""

    name, id = "fake", "f00"

    def __init__(self, *states, health_spec=None):
        self.states, self.calls = list(states), []
        self.attrs = {"State": self.states[0], "RestartCount": 0, "HostConfig": {},
                      "Config": {"Healthcheck": health_spec or {}}}

    def reload(self):
        self.attrs["State"] = self.states.pop(0) if len(self.states) > 1 else self.states[0]

    def logs(self, tail=None):
        return b"the server said something\n"

    def exec_run(self, argv):
        self.calls.append(("exec", argv[-1][-30:]))

    def kill(self, signal):
        self.calls.append(("kill", signal))


def running(health=None, streak=0):
    state = {"Status": "running", "Running": True, "ExitCode": 0}
    return {**state, "Health": {"Status": health, "FailingStreak": streak}} if health else state


def test_wait_healthy_shows_each_new_status_and_returns_healthy(capsys):
    container = FakeContainer(running("starting"), running("starting"), running("healthy"))
    assert dockerlab.wait_healthy(container, timeout=5) == "healthy"
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" after ")[0] for line in lines] == ["  fake: starting", "  fake: healthy"]


@pytest.mark.parametrize("state, problem", [
    (running(), "has no HEALTHCHECK"),
    (running("unhealthy"), "is unhealthy"),
    ({"Status": "exited", "Running": False, "ExitCode": 3, "Health": {"Status": "starting"}}, "exited with code 3"),
])
def test_wait_healthy_fails_at_once_with_the_log(state, problem):
    with pytest.raises(RequirementNotMet, match=f"container fake {problem}. Last log lines:\nthe server said"):
        dockerlab.wait_healthy(FakeContainer(state), timeout=30, show=False)


def test_wait_healthy_says_what_it_still_was_at_the_deadline():
    with pytest.raises(RequirementNotMet, match=r"(?s)within 0.6s.*still 'starting'.*Last log lines"):
        dockerlab.wait_healthy(FakeContainer(running("starting")), timeout=0.6, show=False)


def test_a_hang_is_noticed_and_the_container_thawed():
    container = FakeContainer(running("healthy"), running("healthy"), running("unhealthy", streak=1))
    assert dockerlab.health_notices_a_hang(container, slack=2) < 2
    assert container.calls[-1] == ("kill", "SIGCONT") and ("kill", "SIGSTOP") in container.calls


def test_a_health_check_that_never_fails_is_caught():
    container = FakeContainer(running("healthy"), health_spec={"Interval": 10**8, "Timeout": 10**8})
    with pytest.raises(RequirementNotMet, match="health check still passed"):
        dockerlab.health_notices_a_hang(container, slack=0.5)
    assert container.calls[-1] == ("kill", "SIGCONT")


def test_watch_prints_changes_and_says_what_it_still_was(capsys):
    container = FakeContainer(running("starting"), running("healthy"))
    assert dockerlab.watch(container, until=lambda state: state[1] == "healthy", timeout=5, every=0.1) < 5
    assert capsys.readouterr().out.count("status=running") == 2
    with pytest.raises(RequirementNotMet, match=r"still \('running', 'healthy', 0\)"):
        dockerlab.watch(container, until=lambda state: False, timeout=0.3, every=0.1)


class FakeClient:
    def __init__(self, prune_answers=()):
        self.prune_answers = list(prune_answers)
        self.images = self

    def prune(self, filters):
        if self.prune_answers:
            raise self.prune_answers.pop(0)


def busy(status=409):
    return docker.errors.APIError("busy", response=type("Response", (), {"status_code": status, "reason": ""})())


def test_client_and_run_id_are_read_where_tests_patch_them(monkeypatch):
    fake = FakeClient()
    monkeypatch.setattr(engine, "client", lambda: fake)
    monkeypatch.setattr(engine, "RUN_ID", "patched")
    assert dockerlab.client() is fake and dockerlab.RUN_ID == "patched"
    assert dockerlab.LABEL == "labkit.lab" and dockerlab.BUILT_BY == "labkit.built-by"


def test_prune_waits_for_another_prune_to_end(monkeypatch):
    fake = FakeClient([busy(), busy()])
    monkeypatch.setattr(engine, "client", lambda: fake)
    cleaning._prune({"dangling": True}, patience=5)
    assert not fake.prune_answers
    fake.prune_answers = [busy(500)]
    with pytest.raises(docker.errors.APIError):
        cleaning._prune({"dangling": True}, patience=5)
    fake.prune_answers = [busy()] * 100
    with pytest.raises(dockerlab.DockerLabError, match="prune"):
        cleaning._prune({"dangling": True}, patience=0.6)


class LeavingSwarm:
    """An engine whose swarm another lab's run is leaving: "active", but its swarm API answers 503,
    then no swarm at all."""

    def __init__(self, states):
        self.states, self.listed = list(states), 0
        self.services = self

    def info(self):
        return {"Swarm": self.states.pop(0) if len(self.states) > 1 else self.states[0]}

    def list(self, **filters):
        self.listed += 1
        raise busy(503)


def test_swarm_cleanup_waits_out_a_swarm_that_is_being_left():
    active = {"LocalNodeState": "active", "ControlAvailable": True, "NodeID": "n1"}
    engine_ = LeavingSwarm([active, {"LocalNodeState": "pending"}, {"LocalNodeState": "inactive"}])
    removed = {"services": 0, "secrets": 0}
    assert not cleaning._swarm_cleaned(engine_, "01", removed)  # 503: not yet
    assert not cleaning._swarm_cleaned(engine_, "01", removed)  # pending: not yet
    assert cleaning._swarm_cleaned(engine_, "01", removed) and engine_.listed == 1  # gone: nothing left to do
    locked = LeavingSwarm([{"LocalNodeState": "locked"}])
    assert cleaning._swarm_cleaned(locked, "01", removed) and locked.listed == 0  # not ours to manage: skipped
    broken = LeavingSwarm([active])
    broken.list = lambda **filters: (_ for _ in ()).throw(busy(500))
    with pytest.raises(docker.errors.APIError):  # any other engine error is not a transition: it is raised
        cleaning._swarm_cleaned(broken, "01", removed)


def test_errors_are_labkit_errors():
    assert issubclass(dockerlab.BuildError, dockerlab.DockerLabError)
    assert issubclass(dockerlab.DockerLabError, LabkitError)


class _Stats:
    def __init__(self, memory_stats):
        self.memory_stats = memory_stats

    def stats(self, stream, one_shot):
        assert stream is False and one_shot is True  # one reading, not docker's two-sample wait
        return {"memory_stats": self.memory_stats}


@pytest.mark.parametrize("memory_stats, want", [
    ({"usage": 150 * 2**20, "stats": {"total_inactive_file": 50 * 2**20}}, 100.0),  # cgroup v1
    ({"usage": 90 * 2**20, "stats": {"inactive_file": 10 * 2**20}}, 80.0),          # cgroup v2
    ({"usage": 64 * 2**20}, 64.0),
    ({}, None),                                                                      # a container that ended
])
def test_memory_in_use_leaves_out_the_page_cache_as_docker_stats_does(memory_stats, want):
    assert dockerlab.memory_used_mb(_Stats(memory_stats)) == want
