"""Lab 07's control loop measured on real replicas (environments/k8s/hpa/README.md has the figures).

    PYTHONPATH=. .venv/bin/python -m tests.autoscale_bench [reaction] [cores]

``reaction``: the sample app (one replica, 0.5 CPU) behind lab 02's nginx, the loop asking
ceil(current × CPU / 70) (scale-up only, 0.1 tolerance) every 2 s (max 4 replicas), and 8 clients
of load from 10 s on, for 60 s: how long from the load starting to the loop's first scale-up, to
the new container being created and to it turning healthy (a watcher looks every 0.25 s), and
the requests that failed meanwhile. ``cores``: the same stack held at 1, 2,
4 and 6 replicas, each under the same 12 s of load: CPU per replica, the machine's CPU in use,
requests per second and latency, when replicas ask for more CPU than the machine has. Every run is
bounded in seconds and requests and targets loopback; everything is removed at the end. Figures
go to build/bench/autoscale.json (and the timeline plot beside it).
"""

from __future__ import annotations

import json
import math
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

from labkit import autoscale, compose, dockerlab, paths
from labkit.serving.load import BackgroundLoad, run_load, window_figures

LAB = "t7m"
APP = f"labkit/{LAB}-app:v1"
OUT = paths.REPO / "build" / "bench" / "autoscale.json"
BODY = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}).encode()


def scale_up_only(current, metrics, target):
    """ceil(current × mean CPU / target) outside the HPA's 0.1 tolerance, never below ``current``:
    what is measured here is how fast the loop and the replicas react to load, not a student's
    answer (a rule that also scales down needs the stabilization window the lab asks for)."""
    seen = [m.cpu_percent for m in metrics if m.cpu_percent is not None]
    if not seen or abs(sum(seen) / len(seen) / target - 1) <= 0.1:
        return current
    return max(current, math.ceil(current * sum(seen) / len(seen) / target))


class Watcher:
    """When each container of a service was first seen running and first seen healthy (monotonic s)."""

    def __init__(self, project: str, service: str) -> None:
        self.project, self.service, self.seen, self.healthy, self.gone = project, service, {}, {}, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="labkit-bench-watch", daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.25):
            now = time.monotonic()
            for c in compose.containers(self.project, self.service):
                self.seen.setdefault(c.name, now)
                try:
                    if c.name not in self.healthy and dockerlab.health(c) == "healthy":
                        self.healthy[c.name] = now
                except dockerlab.docker.errors.NotFound:  # removed between the listing and the look
                    self.gone.setdefault(c.name, now)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)


def host_busy() -> tuple[float, float]:
    """(busy, total) CPU time of the whole machine so far, from /proc/stat (Linux), in ticks."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def machine_cores_busy(before: tuple[float, float], after: tuple[float, float], cpus: int) -> float:
    """Cores of the whole machine in use between two host_busy() readings (every process, ours or not)."""
    busy, total = after[0] - before[0], after[1] - before[1]
    return round(busy / total * cpus, 2) if total else float("nan")


def stack(workspace: Path) -> tuple[Path, str]:
    project = compose.project_name(LAB, "autoscale")
    directory = autoscale.sample_stack(workspace / "stack", lab=LAB, image=APP)
    compose.up(directory, project, show=False)
    compose.wait_healthy(project, ("app", "proxy"), timeout=120, show=False)
    return directory, project


def reaction(directory: Path, project: str) -> dict:
    url = f"http://127.0.0.1:{compose.published_port(project, 'proxy', 80)}/predict"
    replicas = autoscale.ComposeReplicas(directory, project, "app")
    load_from = 10.0
    machine = host_busy()
    with Watcher(project, "app") as watcher:
        before = set(watcher.seen) | {c.name for c in compose.containers(project, "app")}
        with BackgroundLoad(url, BODY, clients=[(0, 0), (load_from, 8)], max_seconds=60, max_requests=200_000,
                            window=2.0, name="bench") as load, \
                autoscale.ControlLoop(replicas, scale_up_only, target=70, max_replicas=4, every=2.0, max_seconds=60,
                                      load=load) as loop:
            loop.wait()
    load_started = load.started_at + load_from
    machine_after = host_busy()
    first_up = next((t for t in loop.timeline if t.scaled_to and t.scaled_to > 1), None)
    new = sorted((name for name in watcher.seen if name not in before), key=watcher.seen.get)
    first_new = new[0] if new else None
    figures = {
        "every_s": 2.0, "target": 70, "clients": 8, "load_started_s": round(load_started - loop.started_at, 1),
        "decided_s": round(loop.started_at + first_up.t - load_started, 1) if first_up else None,
        "created_s": round(watcher.seen[first_new] - load_started, 1) if first_new else None,
        "healthy_s": round(watcher.healthy[first_new] - load_started, 1)
        if first_new in watcher.healthy else None,
        "ups": [{"decided_s": round(loop.started_at + t.t - load_started, 1), "to": t.scaled_to}
                for t in loop.timeline if t.scaled_to],
        "healthy_after_load_s": {name: round(watcher.healthy[name] - load_started, 1)
                                 for name in new if name in watcher.healthy},
        "gone_after_load_s": {name: round(at - load_started, 1) for name, at in watcher.gone.items()},
        "requests": sum(w["requests"] for w in load.windows), "errors": sum(w["errors"] for w in load.windows),
        "max_replicas_reached": max(t.replicas for t in loop.timeline),
        "machine_cores_busy": machine_cores_busy(machine, machine_after, os.cpu_count()),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "ended": loop.ended_because, "error": loop.error,
        "timeline": [t.as_dict() for t in loop.timeline],
    }
    try:
        import matplotlib

        matplotlib.use("Agg")
        from labkit import plots

        OUT.parent.mkdir(parents=True, exist_ok=True)
        plots.autoscaling_timeline(loop.timeline, target=70, max_replicas=4).savefig(OUT.with_suffix(".png"), dpi=80)
    except ImportError:
        pass
    return figures


def cores(directory: Path, project: str, counts=(1, 2, 4, 6), seconds: float = 12) -> list[dict]:
    url = f"http://127.0.0.1:{compose.published_port(project, 'proxy', 80)}/predict"
    rows = []
    for n in counts:
        compose.up(directory, project, "app", scale={"app": n}, show=False)
        compose.wait_healthy(project, ("app",), count={"app": n}, timeout=120, show=False)
        # warm-up, longer than nginx's 5 s between lookups of the app's replicas: it sends to every one
        run_load(url, BODY, requests=5_000, concurrency=4, max_seconds=6)
        samples, proxy = [], autoscale.ComposeReplicas(directory, project, "proxy")
        replicas = autoscale.ComposeReplicas(directory, project, "app")

        def sample():  # two samples in the middle of the load window
            for _ in range(2):
                time.sleep(seconds / 3)
                samples.append((replicas.sample(), proxy.sample()))

        sampler = threading.Thread(target=sample, name="labkit-bench-sample", daemon=True)
        ours, machine = resource.getrusage(resource.RUSAGE_SELF), host_busy()
        sampler.start()
        result = run_load(url, BODY, requests=100_000, concurrency=8, max_seconds=seconds)
        sampler.join()
        used, machine_after = resource.getrusage(resource.RUSAGE_SELF), host_busy()
        app_cpu = [m.cpu_percent for s, _ in samples for m in s if m.cpu_percent is not None]
        proxy_cpu = [m.cpu_percent for _, p in samples for m in p if m.cpu_percent is not None]
        per_replica = sum(app_cpu) / len(app_cpu) if app_cpu else float("nan")
        rows.append({"replicas": n, **window_figures(seconds, 8, result),
                     "cpu_per_replica_pct_of_limit": round(per_replica, 1),
                     "cores_per_replica": round(per_replica / 100 * 0.5, 3),
                     "cores_all_replicas": round(per_replica / 100 * 0.5 * n, 2),
                     "proxy_pct_of_limit": round(sum(proxy_cpu) / len(proxy_cpu), 1) if proxy_cpu else None,
                     "machine_cores_busy": machine_cores_busy(machine, machine_after, os.cpu_count()),
                     "load_average_1m": round(os.getloadavg()[0], 2),
                     "load_generator_cores": round((used.ru_utime + used.ru_stime - ours.ru_utime - ours.ru_stime)
                                                   / result.seconds, 2)})
        print(rows[-1], flush=True)
    return rows


def measure(which: set[str]) -> dict:
    """The figures of ``which`` ("reaction", "cores"), written to OUT and returned."""
    figures: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    with tempfile.TemporaryDirectory() as workspace:
        try:
            dockerlab.build(paths.APP, APP, lab=LAB, show=False)
            directory, project = stack(Path(workspace))
            if "reaction" in which:
                figures["reaction"] = reaction(directory, project)
                print({k: v for k, v in figures["reaction"].items() if k != "timeline"}, flush=True)
                compose.up(directory, project, "app", scale={"app": 1}, show=False)
            if "cores" in which:
                figures["cores"] = cores(directory, project)
        finally:
            compose.down(Path(workspace) / "stack", compose.project_name(LAB, "autoscale"), show=False)
            dockerlab.cleanup(LAB, show=False)
            dockerlab.remove_images(LAB, show=False)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(figures, indent=1))
    print(f"written to {OUT}")
    return figures


def main(argv: list[str]) -> int:
    measure(set(argv) or {"reaction", "cores"})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
