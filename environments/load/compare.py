"""Locust against labkit's own loader (labkit.serving.load.run_load), both driving lab 01's final
image with a CPU limit, on loopback: the figures in environments/load/README.md.

    PYTHONPATH=. .venv/bin/python environments/load/compare.py [--requests 2000] [--repeats 2]

For each CPU limit (0.5 and 1.0 CPU, standing for instance sizes) and each concurrency (1 and 8
closed-loop users: each sends its next request when the last is answered), each loader sends the
same bounded number of requests; it prints the RPS reached, the latency percentiles and where the
machine's CPU went meanwhile (in cores, averaged over the load): the loader itself, the server
container, Docker's loopback proxy (docker-proxy, which carries a published port's traffic from
127.0.0.1), and the rest (the kernel, and anything else running on the machine). Repeats
alternate the loaders' order. The container is removed when its CPU limit is done, the image at
the end (only these two: other runs of lab 07 keep theirs).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

from labkit import dockerlab, paths
from labkit.serving import capacity, load

LAB = "07"
IMAGE = "labkit/07-capacity-test:v1"
BODY = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}).encode()
TICK = os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / TICK  # all but idle and iowait


def process_cpu_s(pid: int | None) -> float:
    if pid is None:
        return 0.0
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    return 0.0


def proxy_pid(port: int) -> int | None:
    """The docker-proxy process that carries 127.0.0.1:port (None: the engine runs without it)."""
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            args = (entry / "cmdline").read_bytes().split(b"\0")
            if args[0].endswith(b"docker-proxy") and str(port).encode() in args:
                return int(entry.name)
    return None


def own_cpu_s() -> float:
    """This process and its finished children (a locust run, start-up included)."""
    mine, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return mine.ru_utime + mine.ru_stime + children.ru_utime + children.ru_stime


def with_run_load(url: str, users: int, requests: int) -> dict:
    cpu, wall = time.process_time(), time.monotonic()
    result = load.run_load(url, BODY, requests=requests, concurrency=users, max_seconds=120)
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    return {"requests": result.requests, "errors": result.errors, "rps": result.rps,
            "p50_ms": result.percentile(50), "p95_ms": result.percentile(95), "p99_ms": result.percentile(99),
            "loader_cpu": cpu / wall, "seconds": wall}


def with_locust(user_class: str):
    def run(url: str, users: int, requests: int) -> dict:
        step = capacity.run_step(url, BODY, users=users, seconds=120, max_requests=requests, user_class=user_class)
        return {"requests": step.requests, "errors": step.errors, "rps": step.rps, "p50_ms": step.p50_ms,
                "p95_ms": step.p95_ms, "p99_ms": step.p99_ms, "loader_cpu": step.loader_cpu,
                "seconds": step.seconds}  # while it loaded: locust's start-up left out
    return run


LOADERS = {"run_load": with_run_load, "locust FastHttpUser": with_locust("FastPoster"),
           "locust HttpUser": with_locust("RequestsPoster")}


def measured(name: str, url: str, users: int, requests: int, container, proxy: int | None) -> dict:
    """One loader's run, with the CPU each part of the machine spent during it."""
    def now():
        server = capacity.container_cpu_s(container)
        return machine_busy_s(), own_cpu_s(), process_cpu_s(proxy), server, time.monotonic()

    before = now()
    row = LOADERS[name](url, users, requests)
    after = now()
    busy, mine, proxied, served, wall = (b - a for a, b in zip(before, after))
    row.update(server_cpu=served / row["seconds"], proxy_cpu=proxied / row["seconds"],
               other_cpu=max(0.0, busy - mine - proxied - served) / wall)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write every row here")
    args = parser.parse_args()
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="labkit-load-compare-") as folder:
            context = Path(folder) / "app"
            shutil.copytree(paths.APP, context, ignore=shutil.ignore_patterns("tests"))
            dockerlab.build(context, IMAGE, lab=LAB, show=False)
        for cpus in (0.5, 1.0):
            with dockerlab.running(IMAGE, lab=LAB, ports={8080: None}, environment={"LOG_REQUESTS": "0"},
                                   nano_cpus=int(cpus * 1e9)) as container:
                dockerlab.wait_healthy(container, show=False)
                port = dockerlab.host_port(container, 8080)
                url, proxy = f"http://127.0.0.1:{port}/predict", proxy_pid(port)
                load.run_load(url, BODY, requests=300, concurrency=4)  # warm-up
                for users in (1, 8):
                    for repeat in range(args.repeats):
                        for name in (list(LOADERS) if repeat % 2 == 0 else list(reversed(LOADERS))):
                            row = measured(name, url, users, args.requests, container, proxy)
                            row.update(cpus=cpus, users=users, repeat=repeat, loader=name)
                            rows.append(row)
                            print(f"{cpus:3.1f} CPU {users} users  {name:<20} {row['rps']:7.1f} rps  "
                                  f"p50 {row['p50_ms']:5.1f}  p95 {row['p95_ms']:5.1f}  p99 {row['p99_ms']:5.1f} ms"
                                  f"  errors {row['errors']}/{row['requests']}  CPU: loader {row['loader_cpu']:.2f}"
                                  f"  server {row['server_cpu']:.2f}  proxy {row['proxy_cpu']:.2f}"
                                  f"  rest {row['other_cpu']:.2f}", flush=True)
    finally:
        with contextlib.suppress(dockerlab.docker.errors.ImageNotFound):
            dockerlab.client().images.remove(IMAGE, force=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
