"""Lab 09's measured input for a node's cost split: the memory and CPU figures from the engine's
stats documents, requests and limits as Compose leaves them in the engine (and the CPU request,
which it does not keep, from the compose file), the kubectl readers with a stand-in ``kubectl``,
the stack with reservations. The real stack under real load is the docker-marked test at the end."""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
import subprocess
import threading
import time

import pytest
import yaml

from labkit import autoscale, compose, dockerlab, k8s, paths, usage
from labkit.core.errors import RequirementNotMet
from labkit.serving import load as load_module
from labkit.serving.app import IRIS_ROWS

#: One reading recorded from this machine's engine (Docker 20.10.24, cgroup v1, 2 CPUs) with
#: ``container.stats(stream=False, one_shot=True)``: the sample app's container of lab 09's stack
#: (limits 0.5 CPU and 256M, reservation 128M), trimmed to the CPU and memory parts.
RECORDED = {
    "read": "2026-12-05T00:49:36.758428091Z",
    "preread": "0001-01-01T00:00:00Z",
    "cpu_stats": {"cpu_usage": {"total_usage": 1715518447, "percpu_usage": [530496399, 1185022048],
                                "usage_in_kernelmode": 200000000, "usage_in_usermode": 1500000000},
                  "system_cpu_usage": 67589170000000, "online_cpus": 2,
                  "throttling_data": {"periods": 40, "throttled_periods": 32, "throttled_time": 2131054037}},
    "precpu_stats": {"cpu_usage": {"total_usage": 0}, "throttling_data": {}},
    "memory_stats": {"usage": 91807744, "max_usage": 110948352, "limit": 268435456, "stats": {
        "active_anon": 8192, "active_file": 20480, "cache": 274432, "inactive_anon": 87769088,
        "inactive_file": 253952, "rss": 87777280, "hierarchical_memory_limit": 268435456,
        "total_active_anon": 8192, "total_active_file": 20480, "total_cache": 274432,
        "total_inactive_anon": 87769088, "total_inactive_file": 253952, "total_rss": 87777280}},
    "name": "/labkit-t9u-usage_app_1",
}


def later(reading: dict, *, cpu_ns: int, seconds: float) -> dict:
    """A reading ``seconds`` after ``reading``, with ``cpu_ns`` more CPU time used."""
    after = copy.deepcopy(reading)
    after["cpu_stats"]["cpu_usage"]["total_usage"] += cpu_ns
    stamp = usage.read_time(reading) + seconds
    after["read"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp)) + f".{round(stamp % 1 * 1e9):09d}Z"
    return after


# ---------------------------------------------------------------- the engine's figures

def test_memory_used_is_what_docker_stats_shows_on_cgroup_v1_and_v2():
    # docker stats: usage 91807744 − total_inactive_file 253952 = 91553792 B = 87.31 MiB
    assert usage.memory_used(RECORDED) == 91553792
    v2 = copy.deepcopy(RECORDED)
    v2["memory_stats"]["stats"] = {"anon": 87769088, "file": 274432, "inactive_file": 200000}  # no total_*
    assert usage.memory_used(v2) == 91807744 - 200000
    odd = copy.deepcopy(RECORDED)
    odd["memory_stats"]["stats"]["total_inactive_file"] = 10 ** 12  # above usage: the whole usage counts
    assert usage.memory_used(odd) == 91807744
    assert usage.memory_used({"memory_stats": {}}) == 0  # a container that stopped


def test_cpu_used_is_cpu_time_over_the_time_between_two_readings():
    assert usage.read_time(RECORDED) == pytest.approx(1796431776.758428, abs=1e-6)
    second = later(RECORDED, cpu_ns=811_000_000, seconds=2.0)
    assert usage.cpu_used(RECORDED, second) == pytest.approx(0.4055, rel=1e-6)
    assert usage.cpu_used(RECORDED, later(RECORDED, cpu_ns=0, seconds=2.0)) == 0.0  # idle
    with pytest.raises(ValueError, match="not after"):
        usage.cpu_used(second, RECORDED)


class Container:
    """What compose_usage reads of a Docker SDK container."""

    def __init__(self, name, service, host, readings, log, status="running"):
        self.name, self.status, self.readings, self.log = name, status, list(readings), log
        self.labels = {"com.docker.compose.service": service, "com.docker.compose.project": "p",
                       "com.docker.compose.project.working_dir": "/work/stack",
                       "com.docker.compose.project.config_files": "compose.yaml,override.yaml"}
        self.attrs = {"HostConfig": host}

    def stats(self, stream, one_shot):
        assert (stream, one_shot) == (False, True)  # one reading now, not the engine's 1 s pair
        self.log.append(self.name)
        return self.readings.pop(0)


def test_compose_usage_reads_all_containers_over_one_window(monkeypatch):
    log = []
    app = Container("p_app_1", "app", {"NanoCpus": 500_000_000, "Memory": 268435456, "MemoryReservation": 134217728},
                    [RECORDED, later(RECORDED, cpu_ns=811_000_000, seconds=2.0)], log)
    proxy = Container("p_proxy_1", "proxy", {"NanoCpus": 0, "CpuQuota": 25_000, "CpuPeriod": 100_000, "Memory": 0,
                                             "MemoryReservation": 0},
                      [RECORDED, later(RECORDED, cpu_ns=100_000_000, seconds=2.0)], log)
    gone = Container("p_app_2", "app", {}, [], log, status="exited")
    monkeypatch.setattr(compose, "containers", lambda project: [proxy, gone, app])
    asked = []

    def config(folder, project, *, files):
        asked.append((folder, project, files))
        return {"services": {"app": {"deploy": {"resources": {"reservations": {"cpus": "0.25", "memory": "128M"}}}},
                             "proxy": {"image": "nginx:1.27"}}}

    monkeypatch.setattr(compose, "config", config)
    monkeypatch.setattr(usage.time, "sleep", lambda s: log.append(f"sleep {s}"))
    found = usage.compose_usage("p", seconds=2.0)
    assert asked == [("/work/stack", "p", ("compose.yaml", "override.yaml"))]
    assert sorted(log[:2]) == ["p_app_1", "p_proxy_1"] and log[2] == "sleep 2.0"  # all first readings, then wait
    assert found == [
        usage.ContainerUse("p_app_1", "app", cpu_request=0.25, cpu_limit=0.5, memory_request_gb=0.125,
                           memory_limit_gb=0.25, cpu_used=pytest.approx(0.4055), memory_used_gb=91553792 / 2 ** 30),
        usage.ContainerUse("p_proxy_1", "proxy", cpu_request=None, cpu_limit=0.25, memory_request_gb=None,
                           memory_limit_gb=None, cpu_used=pytest.approx(0.05), memory_used_gb=91553792 / 2 ** 30)]
    with pytest.raises(dataclasses.FrozenInstanceError):
        found[0].cpu_used = 0


def test_compose_usage_says_what_is_missing(monkeypatch):
    monkeypatch.setattr(compose, "containers", lambda project: [])
    with pytest.raises(RequirementNotMet, match="no running container: run the `compose up` cell"):
        usage.compose_usage("p")
    with pytest.raises(ValueError, match="seconds"):
        usage.compose_usage("p", seconds=0)


def test_machine_size_is_the_engines_cpus_and_memory(monkeypatch):
    class Client:
        def info(self):
            return {"NCPU": 2, "MemTotal": 25276203008}

    monkeypatch.setattr(dockerlab, "client", Client)
    assert usage.machine_size() == (2, pytest.approx(23.5403, rel=1e-5))


def test_the_package_measures_and_leaves_the_allocation_to_the_student():
    assert not [n for n in dir(usage) if "alloc" in n.lower() or "cost" in n.lower() or "idle" in n.lower()]


# ---------------------------------------------------------------- a cluster, through a stand-in kubectl

def test_quantities_are_read_as_kubernetes_writes_them():
    assert k8s.quantity("250m") == 0.25 and k8s.quantity("2") == 2 and k8s.quantity(0.5) == 0.5
    assert k8s.quantity("128Mi") == 128 * 2 ** 20 and k8s.quantity("1Gi") == 2 ** 30
    assert k8s.quantity("1G") == 1e9 and k8s.quantity("1k") == 1000 and k8s.quantity("1E") == 1e18
    assert k8s.quantity("1e3") == 1000 and k8s.quantity("1.5Gi") == 1.5 * 2 ** 30
    assert k8s.quantity("12345678n") == pytest.approx(0.012345678)  # the metrics API's nanocores
    for bad in ("1MB", "1mi", "abc", "", "1e", True):
        with pytest.raises(ValueError, match="not a Kubernetes quantity"):
            k8s.quantity(bad)


TOP = """\
model-server-7d9c8b6f5d-2xkqp   model-server   212m   71Mi
model-server-7d9c8b6f5d-2xkqp   log-shipper    3m     12Mi
load-generator-x7f2q            load           41m    20Mi
"""


def pod(name, containers, labels=None, phase="Running"):
    return {"metadata": {"name": name, "labels": labels or {}}, "status": {"phase": phase},
            "spec": {"containers": [{"name": n, "image": "x", **({"resources": r} if r is not None else {})}
                                    for n, r in containers]}}


PODS = {"items": [
    pod("model-server-7d9c8b6f5d-2xkqp",
        [("model-server", {"requests": {"cpu": "250m", "memory": "128Mi"},
                           "limits": {"cpu": "500m", "memory": "256Mi"}}),
         ("log-shipper", None)], {"app.kubernetes.io/name": "model-server"}),
    pod("load-generator-x7f2q", [("load", {"requests": {"cpu": "100m"}})]),
    pod("model-server-7d9c8b6f5d-zz9q1", [("model-server", {})], phase="Pending"),
]}


@pytest.fixture
def kubectl(tmp_path, monkeypatch):
    """A stand-in ``kubectl`` first on PATH: it answers ``top pod`` with ``top.txt`` and ``get pods``
    with ``pods.json`` from its folder, and logs its arguments to ``args``."""
    folder = tmp_path / "bin"
    folder.mkdir()
    script = folder / "kubectl"
    script.write_text('#!/bin/sh\nhere=$(dirname "$0")\necho "$*" >> "$here/args"\ncase "$*" in\n'
                      '  *" top pod "*) [ -f "$here/top.txt" ] || { echo "error: Metrics API not available" >&2; '
                      'exit 1; }; cat "$here/top.txt" ;;\n'
                      '  *" get pods "*) cat "$here/pods.json" ;;\n  *) exit 2 ;;\nesac\n')
    script.chmod(0o755)
    (folder / "pods.json").write_text(json.dumps(PODS))
    (folder / "top.txt").write_text(TOP)
    monkeypatch.setenv("PATH", f"{folder}:/usr/bin:/bin")
    return folder


def test_kubectl_usage_joins_top_with_the_pods_requests_and_limits(kubectl):
    found = usage.kubectl_usage("labkit-09")
    assert found == [
        usage.ContainerUse("load-generator-x7f2q/load", "load-generator-x7f2q", 0.1, None, None, None, 0.041,
                           20 / 1024),
        usage.ContainerUse("model-server-7d9c8b6f5d-2xkqp/log-shipper", "model-server", None, None, None, None,
                           0.003, 12 / 1024),
        usage.ContainerUse("model-server-7d9c8b6f5d-2xkqp/model-server", "model-server", 0.25, 0.5, 0.125, 0.25,
                           0.212, 71 / 1024)]  # the Pending pod has no figures and is left out
    assert (kubectl / "args").read_text().splitlines() == [
        "--context kind-labkit -n labkit-09 top pod --containers --no-headers",
        "--context kind-labkit -n labkit-09 get pods -o json"]


def test_kubectl_usage_says_when_metrics_are_missing(kubectl):
    (kubectl / "top.txt").write_text(TOP.splitlines()[0] + "\n")
    with pytest.raises(RequirementNotMet, match="no figures for container log-shipper of pod .* measure again"):
        usage.kubectl_usage("labkit-09")
    (kubectl / "top.txt").unlink()
    with pytest.raises(RequirementNotMet, match="Metrics API not available(.|\n)*needs metrics-server"):
        usage.kubectl_usage("labkit-09")
    with pytest.raises(ValueError, match="not a `kubectl top pod --containers --no-headers` line"):
        usage.top_lines("NAME CPU(cores) MEMORY(bytes)\n")


# ---------------------------------------------------------------- the stack

def test_the_stack_gets_reservations_next_to_its_limits_and_is_unchanged_without(tmp_path):
    reserved = yaml.safe_load((autoscale.sample_stack(tmp_path / "09", lab="09", image="labkit/09-app:v1",
                                                      reservations=usage.RESERVATIONS) / "compose.yaml").read_text())
    plain = yaml.safe_load((autoscale.sample_stack(tmp_path / "07", lab="07", image="labkit/07-app:v1")
                            / "compose.yaml").read_text())
    for service, asked in usage.RESERVATIONS.items():
        resources = reserved["services"][service]["deploy"]["resources"]
        assert resources["reservations"] == asked and resources["limits"] == plain["services"][service]["deploy"][
            "resources"]["limits"]
        assert "reservations" not in plain["services"][service]["deploy"]["resources"]
        for kind in ("cpus", "memory"):  # a request under its limit
            assert k8s.quantity(asked[kind].replace("M", "Mi")) < k8s.quantity(
                str(resources["limits"][kind]).replace("M", "Mi"))
    assert compose.schema_problems(tmp_path / "09" / "compose.yaml") == []
    with pytest.raises(ValueError, match="no service 'db'"):
        autoscale.sample_stack(tmp_path / "x", lab="09", image="i", reservations={"db": {"cpus": "1"}})


# ---------------------------------------------------------------- the real stack, under real load

LAB = "t9u"
APP = f"labkit/{LAB}-app:v1"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not on PATH")
def test_the_cluster_part_is_valid_and_uses_the_labs_deployment_with_requests():
    objects = k8s.documents(k8s.render(paths.ENVIRONMENTS / "k8s" / "cost"))
    assert k8s.validate(objects) == [] and k8s.lint(objects, probes=True) == []
    deployment = k8s.workload(objects, "Deployment")
    assert deployment["metadata"]["namespace"] == "labkit-09" and deployment["spec"]["replicas"] == 2
    requests = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
    assert k8s.quantity(requests["cpu"]) > 0 and k8s.quantity(requests["memory"]) > 0  # what the split charges


def test_cost_sh_says_what_is_missing_where_kind_is_not(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dirname").symlink_to("/usr/bin/dirname")  # the script's own needs, and no kind/kubectl/docker
    script = str(paths.ENVIRONMENTS / "kind" / "cost.sh")
    done = subprocess.run(["/bin/sh", script, "up"], capture_output=True, text=True, timeout=30,
                          env={"PATH": str(bin_dir)})
    assert done.returncode == 3 and "missing:\n- kind: https://kind.sigs.k8s.io" in done.stderr, done.stderr
    for tool in ("docker", "kind", "kubectl"):  # all there but helm, which only `opencost` needs
        (bin_dir / tool).symlink_to("/bin/true")
    done = subprocess.run(["/bin/sh", script, "opencost"], capture_output=True, text=True, timeout=30,
                          env={"PATH": str(bin_dir)})
    assert done.returncode == 3 and "missing:\n- helm: https://helm.sh" in done.stderr, done.stderr
    usage_line = subprocess.run(["/bin/sh", script], capture_output=True, text=True, timeout=30)
    assert usage_line.returncode == 2 and "usage" in usage_line.stderr


@pytest.mark.docker
@pytest.mark.timeout(120)
def test_compose_usage_reads_a_loaded_stack_and_leaves_nothing(tmp_path, compose_stack):
    stack = autoscale.sample_stack(tmp_path / "stack", lab=LAB, image=APP, reservations=usage.RESERVATIONS)
    project = compose_stack(stack, LAB, "usage", ("app", "proxy"))
    url = f"http://127.0.0.1:{compose.published_port(project, 'proxy', 80)}/predict"
    body, answered = json.dumps({"instances": IRIS_ROWS}).encode(), {}
    loader = threading.Thread(target=lambda: answered.update(
        load=load_module.run_load(url, body, requests=20_000, concurrency=4, max_seconds=4)), daemon=True)
    loader.start()
    time.sleep(0.5)  # the load on before the window opens, and on until it closes
    found = {u.service: u for u in usage.compose_usage(project, seconds=2.0)}
    loader.join(10)
    assert answered["load"].requests > 0 and answered["load"].errors == 0
    app, proxy = found["app"], found["proxy"]
    assert 0 < app.cpu_used <= app.cpu_limit * 1.15  # the kernel holds it to its quota, per 100 ms period
    assert 0 < app.memory_used_gb <= app.memory_limit_gb and 0 < proxy.memory_used_gb <= proxy.memory_limit_gb
    assert (app.cpu_request, app.cpu_limit, app.memory_request_gb, app.memory_limit_gb) == (0.25, 0.5, 0.125, 0.25)
    assert (proxy.cpu_request, proxy.cpu_limit, proxy.memory_request_gb, proxy.memory_limit_gb) == (
        0.1, 0.25, 0.03125, 0.0625)
    engine = compose.container(project, "app").attrs["HostConfig"]  # what docker-compose left in the engine
    assert (engine["NanoCpus"], engine["MemoryReservation"], engine["CpuShares"]) == (500_000_000, 128 * 2 ** 20, 0)
    cores, memory = usage.machine_size()
    assert cores >= 1 and memory > app.memory_limit_gb
    # compose_stack removes the project afterwards and checks that no container or network is left
