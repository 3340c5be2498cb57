"""labkit.serving.capacity: the capacity rule, the loopback-only rule, that no load process outlives
a call, a locust step against a local server, and (docker) a stepped load on lab 01's image with a
CPU limit."""

from __future__ import annotations

import http.server
import importlib.util
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from labkit import capacity, dockerlab, load, paths, plots, probes
from labkit.core.errors import TimedOut

LAB = "t7c"
has_locust = pytest.mark.skipif(importlib.util.find_spec("locust") is None,
                                reason="locust is not installed (`make setup` installs the `load` extra)")


def step(offered, p99, errors=0, requests=100, rps=None):
    return capacity.Step(offered_rps=offered, users=1, requests=requests, errors=errors,
                         rps=offered if rps is None else rps, p50_ms=p99 / 3, p95_ms=p99 / 2, p99_ms=p99,
                         seconds=5, loader_cpu=0.1)


def test_capacity_is_the_highest_step_under_the_objective_without_errors():
    steps = [step(100, 8), step(400, 30, errors=2), step(200, 12), step(800, 250)]
    assert capacity.capacity(steps, 50).offered_rps == 200  # 400 had errors, 800 is too slow
    assert capacity.capacity(steps, 8) is None  # 8 ms is not under 8 ms
    assert capacity.capacity(steps, 8.5).offered_rps == 100  # under means under: 8 < 8.5
    assert capacity.capacity(steps, 1000).offered_rps == 800  # a generous objective: the top step


def test_no_capacity_when_no_step_meets_the_objective():
    assert capacity.capacity([], 50) is None
    assert capacity.capacity([step(100, 80), step(200, 40, errors=1)], 50) is None
    assert capacity.capacity([step(100, math.nan, requests=0)], 50) is None  # no answers at all


def test_a_step_that_misses_the_objective_is_run_once_more_and_the_better_kept(monkeypatch):
    # what each run of a rate gives, in order: 200 misses once (a stall), 400 twice (the replica)
    given = {100: [step(100, 20)], 200: [step(200, 180), step(200, 30)],
             400: [step(400, 160), step(400, 90, rps=300)]}
    ran = []

    def fake_step(url, body, *, users, rate, **_):
        ran.append(rate)
        return given[rate].pop(0)

    monkeypatch.setattr(capacity, "run_step", fake_step)
    steps = capacity.step_load("http://127.0.0.1:1/", b"{}", rates=(100, 200, 400), p99_objective_ms=100, show=False)
    assert ran == [100, 200, 200, 400, 400]
    assert [s.p99_ms for s in steps] == [20, 30, 90]  # both runs of 400 miss: the lower p99 is kept
    given[400] = [step(400, 160)]
    ran.clear()
    capacity.step_load("http://127.0.0.1:1/", b"{}", rates=(400,), show=False)  # no objective: one run each
    assert ran == [400]


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/predict", "http://127.9.9.9/", "http://localhost:1/x",
                                 "http://[::1]:8080/predict", "http://LOCALHOST:80/"])
def test_loopback_targets_are_accepted(url):
    load.require_loopback(url)


@pytest.mark.parametrize("url", ["http://10.0.0.5:8080/predict", "https://example.com/", "http://0.0.0.0:8080/",
                                 "http://192.168.1.10/", "http://[2001:db8::1]/", "/predict", "",
                                 "http://localhost.example.com/"])
def test_other_targets_are_refused_before_any_request(url, monkeypatch):
    def no_process(*args, **kwargs):
        raise AssertionError("a load process was started for a target that is not loopback")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    for run in (lambda: capacity.step_load(url, b"{}", rates=[10], seconds_per_step=1, show=False),
                lambda: capacity.run_step(url, b"{}", users=1),
                lambda: load.run_load(url, b"{}", requests=1, max_seconds=1)):
        with pytest.raises(load.NotLoopback, match="loopback only"):
            run()


def test_bad_steps_are_refused():
    with pytest.raises(ValueError):
        capacity.step_load("http://127.0.0.1:1/", b"", rates=[0, 10], show=False)
    with pytest.raises(ValueError):
        capacity.run_step("http://127.0.0.1:1/", b"", users=1, seconds=0)


def _gone(pid: int, within: float = 5) -> bool:
    """The process no longer runs (a zombie waiting for init to reap it counts as gone)."""
    deadline = time.monotonic() + within
    while True:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return True
        except FileNotFoundError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _spawner(tmp_path, tail: str) -> list[str]:
    """A shell that starts a long sleep in the background (writing its PID down), then ``tail``."""
    return ["sh", "-c", f"sleep 300 >/dev/null 2>&1 & echo $! > {tmp_path}/child; {tail}"]


def test_nothing_the_process_started_outlives_a_normal_end(tmp_path):
    code, output = capacity.run_bounded(_spawner(tmp_path, "echo done"), timeout=20)
    assert (code, output.strip()) == (0, "done")
    assert _gone(int((tmp_path / "child").read_text()))


def test_nothing_outlives_a_time_out(tmp_path):
    started = time.monotonic()
    with pytest.raises(TimedOut, match="not ended within 1s"):
        capacity.run_bounded(_spawner(tmp_path, "wait"), timeout=1)
    assert time.monotonic() - started < 10
    assert _gone(int((tmp_path / "child").read_text()))


def test_nothing_outlives_an_interrupted_kernel(tmp_path, monkeypatch):
    def interrupted(self, timeout=None):
        deadline = time.monotonic() + 10
        while not (tmp_path / "child").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        raise KeyboardInterrupt

    monkeypatch.setattr(subprocess.Popen, "communicate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        capacity.run_bounded(_spawner(tmp_path, "wait"), timeout=60)
    assert _gone(int((tmp_path / "child").read_text()))


def test_the_plot_marks_the_step_capacity_finds():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    steps = [step(100, 8), step(200, 12), step(400, 30, errors=2), step(800, 250, rps=520)]
    fig = plots.capacity_steps(steps, 50)
    labels = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
    assert f"capacity: {capacity.capacity(steps, 50).rps:.0f} rps" in labels
    assert "p99 objective 50 ms" in labels and "errors" in labels
    assert "no step met" in plots.capacity_steps(steps, 5)._suptitle.get_text()
    matplotlib.pyplot.close("all")


class _Flaky(http.server.BaseHTTPRequestHandler):
    """Answers every third POST with a 500, the others with a small JSON body."""
    protocol_version = "HTTP/1.1"
    count = 0

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).count += 1
        status = 500 if type(self).count % 3 == 0 else 200
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def _locust_processes() -> list[int]:
    """Load processes this test process started (capacity marks them with its PID) still running."""
    return _marked(os.getpid())


@has_locust
def test_a_locust_step_is_bounded_in_requests_and_counts_errors():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/predict"
        result = capacity.run_step(url, b'{"instances": []}', users=2, seconds=20, max_requests=60)
    finally:
        server.shutdown()
    assert 55 <= result.requests <= 60 and 15 <= result.errors <= 21  # the budget, then every third failed
    assert result.p50_ms <= result.p95_ms <= result.p99_ms and result.rps > 0
    assert 0 < result.loader_cpu < 1.5
    assert _locust_processes() == []


def _marked(parent: int) -> list[int]:
    """Running processes that carry capacity's mark for ``parent`` (see _locust_processes)."""
    mark = f"LABKIT_LOAD_PARENT={parent}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if mark in (entry / "environ").read_bytes().split(b"\0") and not _gone(int(entry.name), 0):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


@has_locust
def test_locust_stops_when_the_kernel_that_started_it_is_killed(tmp_path):
    """A killed kernel runs no finally: its locust (in a session of its own) must notice alone."""
    script = ("import sys; sys.path.insert(0, %r)\n"
              "from labkit.serving import capacity\n"
              "capacity.run_step('http://127.0.0.1:9/', b'{}', users=1, rate=5, seconds=60)\n") % str(paths.REPO)
    kernel = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 30
        while not _marked(kernel.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        started = _marked(kernel.pid)
        assert started, "locust did not start"
        time.sleep(2)  # let it start loading
        kernel.kill()
        kernel.wait()
        assert all(_gone(pid, within=10) for pid in started)
    finally:
        kernel.kill()
        for pid in _marked(kernel.pid):  # only when the test failed: leave nothing behind
            os.kill(pid, signal.SIGKILL)


docker_only = pytest.mark.skipif(bool(probes.docker_reason()), reason=str(probes.docker_reason()))


@pytest.mark.docker
@docker_only
@has_locust
def test_step_load_on_lab_01s_image_with_a_cpu_limit(tmp_path):
    context = tmp_path / "app"
    shutil.copytree(paths.APP, context, ignore=shutil.ignore_patterns("tests"))
    ref = f"labkit/{LAB}-capacity-test:v1"
    try:
        dockerlab.build(context, ref, lab=LAB, show=False)
        with dockerlab.running(ref, lab=LAB, ports={8080: None}, environment={"LOG_REQUESTS": "0"},
                               nano_cpus=int(0.5e9)) as container:
            dockerlab.wait_healthy(container, show=False)
            assert container.attrs["HostConfig"]["NanoCpus"] == int(0.5e9)
            url = f"http://127.0.0.1:{dockerlab.host_port(container, 8080)}/predict"
            steps = capacity.step_load(url, b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}', rates=(20, 60),
                                       seconds_per_step=3, max_requests=1000, container=container, show=False)
        assert [s.offered_rps for s in steps] == [20, 60]
        for s in steps:
            assert s.errors == 0 and s.requests >= 0.5 * s.offered_rps * 3, s
            assert 0.7 * s.offered_rps <= s.rps <= 1.3 * s.offered_rps, s
            assert 0 <= s.p50_ms <= s.p95_ms <= s.p99_ms < 1000, s
            assert s.loader_cpu < 0.9 and 0 < s.server_cpu < 0.5 * 1.3, s  # the limit holds (CFS: per 100 ms)
        assert capacity.capacity(steps, 1000) is steps[-1]
    finally:
        left = dockerlab.client().containers.list(all=True, filters=dockerlab.engine.filters(LAB))
        dockerlab.cleanup(LAB, show=False)
        dockerlab.remove_images(LAB, show=False)
    assert left == [] and _locust_processes() == []
