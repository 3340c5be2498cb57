"""Lab 07's machinery around the student's HPA function: the CPU figure read from the engine's
stats, the control loop over stand-in replicas (it scales up under load, keeps to max_replicas and
max_seconds, stops on a bad ``desired``, leaves no thread, also when interrupted), the bounded
load driver, the timeline plot, and the HPA manifest for kind (validated offline). The real loop
on real Compose replicas is the docker-marked test at the end."""

from __future__ import annotations

import copy
import math
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from labkit import autoscale, k8s, paths
from labkit.core import background
from labkit.serving import load as load_module

HPA_DIR = paths.ENVIRONMENTS / "k8s" / "hpa"
ROOT = paths.ENVIRONMENTS.parent

#: One stats sample recorded from this machine's engine (Docker 20.10, cgroup v1, 2 CPUs) by
#: ``container.stats(stream=False)``, what ``docker stats --no-stream`` reads: the sample app's
#: container with ``--cpus 0.5`` under 4 clients of load, trimmed to the CPU part and a few neighbours.
RECORDED_SAMPLE = {
    "read": "2026-12-04T19:22:53.827639596Z",
    "preread": "2026-12-04T19:22:52.823554392Z",
    "pids_stats": {"current": 8},
    "cpu_stats": {
        "cpu_usage": {"total_usage": 3342314590, "percpu_usage": [1657780756, 1684533834],
                      "usage_in_kernelmode": 830000000, "usage_in_usermode": 2500000000},
        "system_cpu_usage": 28716630000000, "online_cpus": 2,
        "throttling_data": {"periods": 70, "throttled_periods": 63, "throttled_time": 3281126309},
    },
    "precpu_stats": {
        "cpu_usage": {"total_usage": 2858053553, "percpu_usage": [1402734708, 1455318845],
                      "usage_in_kernelmode": 700000000, "usage_in_usermode": 2140000000},
        "system_cpu_usage": 28714720000000, "online_cpus": 2,
        "throttling_data": {"periods": 60, "throttled_periods": 56, "throttled_time": 2813292873},
    },
    "memory_stats": {"usage": 101134336, "limit": 25276203008},
    "name": "/labkit-t7-stats-sample",
}


def test_cpu_percent_of_a_recorded_sample_is_docker_stats_figure_against_the_request():
    # docker stats: (484261037 ns used / 1910000000 ns of host time) × 2 CPUs = 0.5071 cores, 50.7 %
    assert autoscale.cpu_cores_used(RECORDED_SAMPLE) == pytest.approx(0.507080, rel=1e-5)
    assert autoscale.cpu_percent(RECORDED_SAMPLE, 0.5) == pytest.approx(101.416, rel=1e-5)  # all of its limit
    assert autoscale.cpu_percent(RECORDED_SAMPLE, 0.1) == pytest.approx(507.080, rel=1e-5)  # 5 × a 100m request


def test_a_sample_without_an_earlier_read_has_no_cpu_figure():
    first = copy.deepcopy(RECORDED_SAMPLE)
    first["precpu_stats"] = {"cpu_usage": {"total_usage": 0}, "throttling_data": {}}  # a container's first read
    assert autoscale.cpu_percent(first, 0.5) is None
    assert autoscale.cpu_cores_used({}) is None
    idle = copy.deepcopy(RECORDED_SAMPLE)
    idle["cpu_stats"]["cpu_usage"]["total_usage"] = idle["precpu_stats"]["cpu_usage"]["total_usage"]
    assert autoscale.cpu_percent(idle, 0.5) == 0.0
    old = copy.deepcopy(RECORDED_SAMPLE)  # an engine that gives per-CPU usage but no online_cpus
    for part in ("cpu_stats", "precpu_stats"):
        del old[part]["online_cpus"]
    assert autoscale.cpu_cores_used(old) == pytest.approx(0.507080, rel=1e-5)


def test_cpu_limit_from_inspect_attributes():
    assert autoscale.cpu_limit({"HostConfig": {"NanoCpus": 500_000_000}}) == 0.5
    assert autoscale.cpu_limit({"HostConfig": {"NanoCpus": 0, "CpuQuota": 25_000, "CpuPeriod": 100_000}}) == 0.25
    assert autoscale.cpu_limit({"HostConfig": {"NanoCpus": 0, "CpuQuota": 0}}) is None


class Container:
    """What ComposeReplicas reads of a Docker SDK container: its stats, one sample per call."""

    def __init__(self, name, samples, nano_cpus=500_000_000, status="running"):
        self.name, self.id, self.status, self.samples = name, f"id-{name}", status, list(samples)
        self.attrs = {"HostConfig": {"NanoCpus": nano_cpus}, "State": {"Status": status}}

    def stats(self, stream):
        assert stream is False  # one sample, as `docker stats --no-stream`
        if not self.samples:
            import docker.errors
            raise docker.errors.NotFound(f"No such container: {self.name}")
        return self.samples.pop(0)

    def reload(self):
        pass


def later(sample: dict, used_ns: int, seconds: float, own_cores: float) -> dict:
    """The next sample, ``seconds`` after ``sample``, ``used_ns`` of CPU time later; its own
    precpu_stats (the engine's read one second before) say ``own_cores``."""
    now = copy.deepcopy(sample["cpu_stats"])
    now["cpu_usage"]["total_usage"] += used_ns
    now["system_cpu_usage"] += int(seconds * 2e9)  # 2 CPUs
    before = copy.deepcopy(now)
    before["cpu_usage"]["total_usage"] -= int(own_cores * 1e9)
    before["system_cpu_usage"] -= int(2e9)
    return {"cpu_stats": now, "precpu_stats": before}


def test_compose_replicas_read_cpu_since_the_previous_tick_against_the_limit(monkeypatch):
    from labkit import compose, dockerlab

    second = later(RECORDED_SAMPLE, used_ns=500_000_000, seconds=2.0, own_cores=0.5)  # 0.25 cores over 2 s
    busy = Container("p-app-1", [RECORDED_SAMPLE, second])
    gone = Container("p-app-2", [])  # its stats call fails: it went away while being read
    stopped = Container("p-app-3", [], status="exited")
    monkeypatch.setattr(compose, "containers", lambda project, service: [stopped, gone, busy])
    monkeypatch.setattr(dockerlab, "health", lambda c: "healthy")
    replicas = autoscale.ComposeReplicas("dir", "p", "app")
    first = replicas.sample()
    assert [(m.name, m.ready) for m in first] == [("p-app-1", True), ("p-app-2", False)]
    assert first[0].cpu_percent == pytest.approx(101.416, rel=1e-5) and first[1].cpu_percent is None
    assert replicas.basis == "the container's CPU limit (0.5 cores)"
    assert replicas.sample()[0].cpu_percent == pytest.approx(50.0)  # not the 100 % of its own last second
    requested = autoscale.ComposeReplicas("dir", "p", "app", request_cores=0.1)
    busy.samples = [RECORDED_SAMPLE]
    assert requested.sample()[0].cpu_percent == pytest.approx(507.080, rel=1e-5)
    assert requested.basis == "a request of 0.1 cores"


@pytest.mark.parametrize("value, why", [
    (2.0, r"returned 2\.0 \(float\), not a whole number of replicas \(math.ceil gives an int\)"),
    (None, r"returned None \(NoneType\)"), ("3", r"returned '3' \(str\)"), (True, r"returned True \(bool\)"),
    (0, r"returned 0: the HPA keeps at least minReplicas"), (-1, "returned -1")])
def test_a_value_that_is_no_replica_count_is_refused(value, why):
    with pytest.raises(autoscale.BadDesired, match=why):
        autoscale.checked_desired(value, 4)


def test_a_count_above_max_replicas_is_capped_and_said():
    assert autoscale.checked_desired(3, 4) == (3, "")
    assert autoscale.checked_desired(9, 4) == (4, "capped at max_replicas=4")


# ---------------------------------------------------------------- the loop over stand-in replicas

class Replicas:
    """Replicas of a service with a CPU limit of 0.5 cores that share ``demand`` cores of work
    evenly (each up to its limit): more replicas, less CPU each, as under a fixed load."""

    service = "app"

    def __init__(self, count: int = 1, demand: float = 1.6, limit: float = 0.5) -> None:
        self.count, self.demand, self.limit, self.scaled = count, demand, limit, []

    def sample(self) -> list[autoscale.ReplicaMetric]:
        each = min(self.limit, self.demand / self.count)
        return [autoscale.ReplicaMetric(f"p-app-{i + 1}", 100 * each / self.limit, True) for i in range(self.count)]

    def scale(self, replicas: int) -> None:
        self.scaled.append(replicas)
        self.count = replicas


def core_rule(current, metrics, target):
    """desired = ceil(current × mean utilization / target), nothing more: a trivial stand-in for the
    student's function."""
    seen = [m.cpu_percent for m in metrics if m.cpu_percent is not None]
    return math.ceil(current * sum(seen) / len(seen) / target) if seen else current


def our_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("labkit-")]


@pytest.fixture(autouse=True)
def no_thread_left():
    """Every test here ends with no labkit thread and no live background task."""
    yield
    deadline = time.monotonic() + 5
    while our_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert our_threads() == [] and background.live() == []


def loop(replicas, desired=core_rule, **options) -> autoscale.ControlLoop:
    return autoscale.ControlLoop(replicas, desired, **{"every": 0.02, "max_seconds": 5, "show": False, **options})


def test_the_loop_scales_up_under_load_and_keeps_to_max_replicas():
    replicas = Replicas(demand=1.6)
    with loop(replicas, max_replicas=4, max_seconds=1) as running:
        running.wait()
    assert replicas.scaled == [2, 3, 4]  # 100 % → 2, 100 % → 3, 100 % → ceil(3×100/70) = 5, capped
    assert max(t.replicas for t in running.timeline) == 4
    capped = [t for t in running.timeline if t.note == "capped at max_replicas=4"]
    assert capped and all(t.desired == 5 and t.scaled_to in (4, None) for t in capped)
    assert running.timeline[-1].mean_cpu == pytest.approx(80)  # 1.6 cores over 4 replicas of 0.5
    assert running.ended_because == "max_seconds (1s) reached" and running.error is None
    assert "replicas from 1 to 4, ending at 4" in running.summary()


def test_the_loop_ends_at_max_seconds_whatever_desired_says():
    replicas = Replicas()
    started = time.monotonic()
    with loop(replicas, lambda c, m, t: c, max_seconds=0.3, every=0.05) as running:
        assert running.wait(timeout=5)
    assert 0.3 <= time.monotonic() - started < 2
    assert running.ended_because == "max_seconds (0.3s) reached" and replicas.scaled == []
    assert 2 <= len(running.timeline) <= 8  # a tick each 0.05 s, fewer on a busy machine


def test_the_loop_passes_the_current_count_metrics_and_target(capsys):
    seen = []

    def desired(current, metrics, target):
        seen.append((current, [(m.name, m.cpu_percent, m.ready) for m in metrics], target))
        return 2

    replicas = Replicas(count=1, demand=0.25)
    with loop(replicas, desired, target=60, show=True, max_seconds=0.2) as running:
        running.wait()
    assert seen[0] == (1, [("p-app-1", 50.0, True)], 60.0) and seen[1][0] == 2 and replicas.scaled == [2]
    assert "replicas 1 (ready 1)  CPU%  50 (target 60) -> desired 2, scaled to 2" in capsys.readouterr().out


class Hang:
    def __init__(self):
        self.release = threading.Event()

    def __call__(self, current, metrics, target):
        self.release.wait(10)
        return current


@pytest.mark.parametrize("desired, said", [
    (lambda c, m, t: 1 / 0, "desired() raised ZeroDivisionError: division by zero"),
    (lambda c, m, t: c * 1.5, "desired() returned 1.5 (float), not a whole number"),
    (lambda c, m, t: None, "desired() returned None (NoneType)"),
    (lambda c, m, t: sys.exit(1), "desired() raised SystemExit: 1"),
    ("hang", "desired() did not return within 0.2s"),
])
def test_a_bad_desired_stops_the_loop_with_a_message_and_nothing_escapes(desired, said):
    hang = Hang() if desired == "hang" else None
    replicas = Replicas()
    try:
        with loop(replicas, hang or desired, desired_timeout=0.2) as running:
            assert running.wait(timeout=5)  # returns: no exception reaches the caller
    finally:
        if hang:
            hang.release.set()
    assert running.error and running.error.endswith("the loop stopped at 1 replica(s)")
    assert running.ended_because == running.error and said in running.error
    assert replicas.scaled == [] and running.timeline[-1].note == running.error


def test_a_failing_engine_stops_the_loop_with_what_failed():
    class Broken(Replicas):
        def scale(self, replicas):
            raise RuntimeError("compose up failed: no space left")

    with loop(Broken()) as running:
        running.wait(timeout=5)
    assert running.error == "scaling to 2 failed: RuntimeError: compose up failed: no space left"


def test_leaving_the_with_block_stops_the_loop_also_on_an_interrupt():
    replicas = Replicas(demand=0.1)
    with pytest.raises(KeyboardInterrupt):
        with loop(replicas, lambda c, m, t: c, max_seconds=60) as running:
            time.sleep(0.1)
            assert running.running and background.live() == [running]
            raise KeyboardInterrupt  # what an interrupted cell raises
    assert not running.running and running.ended_because == "stopped"
    ticks = len(running.timeline)
    time.sleep(0.1)
    assert len(running.timeline) == ticks  # nothing ticks any more


def test_stop_all_stops_every_task_and_a_task_starts_once():
    first = loop(Replicas(), lambda c, m, t: c, max_seconds=60).start()
    second = loop(Replicas(), lambda c, m, t: c, max_seconds=60).start()
    assert {t.name for t in background.live()} == {"labkit-autoscale-app"} and len(background.live()) == 2
    assert background.stop_all() == ["labkit-autoscale-app"] * 2
    assert not first.running and not second.running
    with pytest.raises(RuntimeError, match="was started already"):
        first.start()


def test_the_loop_refuses_bounds_that_bound_nothing():
    for options, said in [({"max_seconds": 0}, "max_seconds"), ({"max_replicas": 0}, "max_replicas"),
                          ({"every": 0}, "every"), ({"max_replicas": 2.5}, "max_replicas")]:
        with pytest.raises(ValueError, match=said):
            loop(Replicas(), **options)
    with pytest.raises(TypeError, match="desired must be a function"):
        autoscale.ControlLoop(Replicas(), 3)


def test_reaction_reads_decision_and_readiness_from_the_timeline():
    tick = autoscale.Tick
    timeline = [tick(0, 1, 1, {}, 1), tick(5, 1, 1, {}, 1), tick(10, 1, 1, {}, 2, scaled_to=2),
                tick(15, 2, 1, {}, 2), tick(20, 2, 2, {}, 2)]
    assert autoscale.reaction(timeline, load_started=6) == {"decided_s": 4.0, "ready_s": 14.0}
    assert autoscale.reaction(timeline[:2], load_started=6) == {"decided_s": None, "ready_s": None}


KERNEL_SCRIPT = """
import os, signal, sys, threading, time
from labkit import autoscale
from labkit.core import background

class Replicas:
    service = "app"
    def sample(self):
        return [autoscale.ReplicaMetric("p-app-1", 50.0, True)]
    def scale(self, n):
        pass

loop = autoscale.ControlLoop(Replicas(), lambda c, m, t: c, every=0.05, max_seconds=600, show=False)
"""


def _python(code: str, timeout: float = 30) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_an_interrupt_while_the_cell_waits_stops_the_loop():
    """A kernel interrupted while a cell waits on the loop: SIGINT raises KeyboardInterrupt in the
    main thread, wait() stops the loop on its way out, and the kernel lives on with no loop."""
    done = _python(KERNEL_SCRIPT + """
threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
loop.start()
try:
    loop.wait()
except KeyboardInterrupt:
    print("interrupted; loop running:", loop.running, "| ended:", loop.ended_because, "| live:", background.live())
""")
    assert done.returncode == 0, done.stderr
    assert "interrupted; loop running: False | ended: stopped | live: []" in done.stdout


def test_a_loop_started_without_with_is_stopped_at_exit_and_does_not_hold_the_process():
    """A loop left running when the kernel shuts down (or dies of an interrupt): the process exits
    at once (the thread is a daemon) after atexit has stopped the loop."""
    started = time.monotonic()
    done = _python(KERNEL_SCRIPT + """
import atexit
atexit.register(lambda: print("at exit: running", loop.running, "| ended:", loop.ended_because, flush=True))
loop.start()  # registers stop_all at exit, after the print above: it runs first
time.sleep(0.3)
os.kill(os.getpid(), signal.SIGINT)
time.sleep(60)
""")
    assert time.monotonic() - started < 20
    assert "KeyboardInterrupt" in done.stderr
    assert "at exit: running False | ended: stopped" in done.stdout


@pytest.mark.timeout(120)
def test_interrupting_a_real_kernel_stops_the_loop_and_the_kernel_lives_on():
    """The same in an IPython kernel, interrupted as Jupyter does it."""
    jupyter_client = pytest.importorskip("jupyter_client")
    km = jupyter_client.KernelManager(kernel_name="python3")
    km.start_kernel(env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        reply = kc.execute_interactive(KERNEL_SCRIPT + "loop.start()\n", timeout=60)
        assert reply["content"]["status"] == "ok", reply["content"]
        kc.execute("loop.wait()")  # the cell a student interrupts
        time.sleep(1)
        km.interrupt_kernel()
        reply = kc.get_shell_msg(timeout=30)
        assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
        said: list[str] = []
        reply = kc.execute_interactive("print(loop.running, loop.ended_because, background.live())", timeout=30,
                                       output_hook=lambda msg: said.append(msg["content"].get("text", "")))
        assert reply["content"]["status"] == "ok", reply["content"]
        assert "".join(said).strip() == "False stopped []"
    finally:
        km.shutdown_kernel(now=True)


# ---------------------------------------------------------------- the load driver

@pytest.fixture
def server(local_server):
    return f"http://127.0.0.1:{local_server.server_address[1]}/predict"


def test_the_load_driver_follows_its_schedule_and_ends_within_its_bounds(server):
    with load_module.BackgroundLoad(server, b"{}", clients=[(0, 0), (0.4, 2)], max_seconds=1.5,
                                    window=0.2) as load:
        assert load.wait(timeout=10)
    assert load.ended_because == "max_seconds (1.5s) reached"
    assert load.windows[0]["clients"] == 0 and load.windows[0]["requests"] == 0
    busy = [w for w in load.windows if w["clients"] == 2]
    assert busy and all(w["rps"] > 0 and w["errors"] == 0 for w in busy)
    assert load.latest() == load.windows[-1] and set(load.latest()) == {"t", "clients", "requests", "errors",
                                                                         "rps", "p50_ms", "p99_ms"}
    with load_module.BackgroundLoad(server, b"{}", clients=2, max_requests=25, max_seconds=10) as capped:
        assert capped.wait(timeout=10)
    assert capped.sent == 25 and capped.ended_because == "max_requests (25) sent"


@pytest.mark.parametrize("url", ["http://example.com/predict", "http://10.0.0.8:8080/predict",
                                 "http://[2001:db8::1]/predict", "/predict"])
def test_the_load_driver_sends_to_this_machine_only(url):
    with pytest.raises(load_module.NotLoopback, match="loopback only"):
        load_module.BackgroundLoad(url, b"{}")
    for good in ("http://127.0.0.1:8080/x", "http://localhost/x", "http://[::1]:80/x", "http://127.0.0.2/x"):
        load_module.require_loopback(good)


def test_the_load_driver_refuses_a_schedule_that_is_no_schedule():
    for clients in ([(1, 2)], [(0, -1)], []):
        with pytest.raises(ValueError, match="clients"):
            load_module.BackgroundLoad("http://127.0.0.1/x", b"{}", clients=clients)


def test_lab_cleanup_stops_the_loop_before_it_removes_the_containers(tmp_path, monkeypatch):
    from labkit import dockerlab
    from labkit.course.lab import Lab

    running = loop(Replicas(demand=0.1), lambda c, m, t: c, max_seconds=60).start()
    seen = []
    monkeypatch.setattr(dockerlab, "cleanup", lambda lab, **kw: seen.append((lab, running.running)))
    Lab("07", tmp_path).cleanup()
    assert seen == [("07", False)]


# ---------------------------------------------------------------- the plot

def test_the_timeline_plot_draws_load_cpu_and_replicas():
    import matplotlib

    matplotlib.use("Agg")
    from labkit import plots

    replicas = Replicas(demand=1.6)

    class Load:
        def latest(self):
            return {"t": 1.0, "clients": 8, "requests": 90, "errors": 0, "rps": 45.0, "p50_ms": 20.0, "p99_ms": 80.0}

    with loop(replicas, max_replicas=3, max_seconds=0.2, load=Load()) as running:
        running.wait()
    fig = plots.autoscaling_timeline(running.timeline, target=70, max_replicas=3)
    load_ax, cpu_ax, replicas_ax = fig.axes[:3]
    assert [ax.get_ylabel() for ax in fig.axes] == ["requests/s answered", "CPU, % of request", "replicas", "p99 latency, ms"]
    assert any(line.get_label() == "mean (the HPA's metric)" for line in cpu_ax.get_lines())
    assert {t.get_text() for t in replicas_ax.get_legend().get_texts()} >= {"running", "ready", "desired()"}
    dicts = plots.autoscaling_timeline([t.as_dict() for t in running.timeline])  # as saved to JSON
    assert len(dicts.axes) == 4
    empty = plots.autoscaling_timeline([autoscale.Tick(0, 1, 1, {"p-app-1": None}, 1)])
    assert "no load recorded" in [t.get_text() for t in empty.axes[0].texts]


# ---------------------------------------------------------------- the HPA on kind, offline

needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not on PATH")


def hpa() -> dict:
    return k8s.workload(k8s.load(HPA_DIR / "hpa.yaml"), "HorizontalPodAutoscaler")


def test_the_hpa_manifest_is_valid_autoscaling_v2_targeting_70_percent_cpu():
    doc = hpa()
    assert k8s.validate([doc]) == []  # kubernetes-validate --strict, Kubernetes 1.31
    assert doc["apiVersion"] == "autoscaling/v2"
    assert doc["spec"]["metrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]
    window = doc["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"]
    assert 0 < window < 300 and "default window is 300 s" in (HPA_DIR / "hpa.yaml").read_text()
    assert 1 <= doc["spec"]["minReplicas"] < doc["spec"]["maxReplicas"]


def test_strict_validation_catches_a_misspelt_hpa_field():
    doc = hpa()
    doc["spec"]["behavior"]["scaleDown"]["stabilisationWindowSeconds"] = 30
    assert any("stabilisationWindowSeconds" in p for p in k8s.validate([doc]))
    old = hpa()
    old["apiVersion"] = "autoscaling/v1"  # v1 has only targetCPUUtilizationPercentage
    assert k8s.validate([old])


@needs_kubectl
def test_the_hpa_kustomization_scales_a_deployment_with_cpu_requests_and_no_fixed_replicas():
    docs = k8s.documents(k8s.render(HPA_DIR))
    assert k8s.validate(docs) == [] and k8s.lint(docs) == []
    target = hpa()["spec"]["scaleTargetRef"]
    deployment = k8s.workload(docs, target["kind"], target["name"])
    assert "replicas" not in deployment["spec"]  # the HPA owns the count
    for container in k8s.pod_spec(deployment)["containers"]:
        assert "cpu" in container["resources"]["requests"]  # else the HPA shows <unknown>
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {"labkit-07"}
    assert k8s.workload(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"] == "labkit/07-app:v1"
    service = next(d for d in docs if d["kind"] == "Service")
    assert service["spec"]["type"] == "ClusterIP"  # lab 02 holds nodePort 30080 on the same cluster


def test_the_load_generator_is_a_bounded_valid_job():
    job = k8s.workload(k8s.load(HPA_DIR / "load-generator.yaml"), "Job")
    assert k8s.validate([job]) == [] and k8s.lint([job], probes=False) == []
    assert 0 < job["spec"]["activeDeadlineSeconds"] <= 600 and job["spec"]["backoffLimit"] == 0


def test_hpa_sh_says_what_is_missing_where_kind_is_not(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dirname").symlink_to("/usr/bin/dirname")  # the script's own needs, and no kind/kubectl/docker
    done = subprocess.run(["/bin/sh", str(paths.ENVIRONMENTS / "kind" / "hpa.sh"), "run"], capture_output=True,
                          text=True, timeout=30, env={"PATH": str(bin_dir)})
    assert done.returncode == 3
    assert "missing:\n- kind: https://kind.sigs.k8s.io" in done.stderr and "- kubectl:" in done.stderr
    usage = subprocess.run(["/bin/sh", str(paths.ENVIRONMENTS / "kind" / "hpa.sh")], capture_output=True, text=True)
    assert usage.returncode == 2 and "usage" in usage.stderr


# ---------------------------------------------------------------- the real loop, on real replicas

LAB = "t7"
APP = f"labkit/{LAB}-app:v1"


@pytest.mark.docker
@pytest.mark.timeout(900)
def test_the_real_loop_scales_a_compose_service_and_leaves_nothing(tmp_path, compose_stack):
    from labkit import compose, dockerlab

    stack = autoscale.sample_stack(tmp_path / "stack", lab=LAB, image=APP)
    project = compose_stack(stack, LAB, "autoscale", ("app", "proxy"))
    replicas = autoscale.ComposeReplicas(stack, project, "app")
    with autoscale.ControlLoop(replicas, lambda current, metrics, target: 2, every=2, max_seconds=60,
                               max_replicas=2, show=False) as loop:
        deadline = time.monotonic() + 60
        while loop.running and time.monotonic() < deadline and not any(
                t.replicas == 2 and t.ready == 2 for t in loop.timeline):
            time.sleep(0.5)
    assert loop.error is None, loop.error
    assert loop.elapsed() <= 61 and loop.ended_because == "stopped"
    first = loop.timeline[0]
    assert (first.replicas, first.scaled_to) == (1, 2)  # the real engine's count, then compose up --scale
    assert [t.scaled_to for t in loop.timeline if t.scaled_to] == [2]
    assert any(t.replicas == 2 and t.ready == 2 for t in loop.timeline)
    figures = [v for t in loop.timeline for v in t.cpu.values() if v is not None]
    assert figures and all(0 <= v <= 150 for v in figures)  # % of the 0.5-CPU limit, read from docker stats
    assert replicas.basis == "the container's CPU limit (0.5 cores)"
    assert len(compose.containers(project, "app")) == 2
    assert dockerlab.client().containers.list(all=True, filters={"label": f"labkit.lab={LAB}"})
    # compose_stack removes all of it afterwards and checks; the autouse fixture checks no labkit thread is left
