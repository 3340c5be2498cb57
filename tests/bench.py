"""`make bench`: the labs' figures measured on this machine, written to build/bench/results.json.

Sizes are of images built here in one run: lab 01's naive, final and inference-only images, so
the ratios are what matters, and lab 04's cpu target (its gpu target is not built: its CUDA
wheels are gigabytes); start-up and
latency come from lab 01's final image, and from lab 05's SageMaker image started as SageMaker
starts it, under a fixed, bounded load on loopback; lab 07's capacity is lab 01's final image
under stepped locust load with a CPU limit per instance size, and its control loop's reaction on
real Compose replicas (tests/autoscale_bench.py); lab 08's switch and rollback between two releases
behind nginx, under load; grading times are graded runs of each
solution notebook, with the part of it the checks' kernel spent (shared cells included, which
both kernels run) and the most memory each held at once (the kernels, the emulators and load
tools they start, and the lab's containers: what a laptop must have free), and a class of ten
graded by `labkit grade-all`, serial and two at a time. `python -m tests.bench labs` measures
only the graded runs and updates those figures. The graded runs' figures also go to
docs/lab_figures.json, and from there into the README and the labs' overviews
(tests/quoted_figures.py). Lab 04's figures come first: this CPU's bandwidth and multiply
rates, and what a few model sizes need against this machine and the GPU table.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psutil

from labkit import batch, build, capacity, compose, dockerlab, grade, paths, sagemaker, serving, traffic
from labkit.images import ensure_base_images
from labkit.lab import Lab
from labkit.load import run_across, run_load
from labkit.machine import accelerators, throughput

from . import quoted_figures

OUT = paths.REPO / "build" / "bench" / "results.json"
LABEL = "bench"


def wait_for(url: str, timeout: float = 60) -> float:
    started, deadline = time.monotonic(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer 200 within {timeout}s")


def image_figures(workspace: Path) -> dict:
    app = Lab(LABEL, workspace).copy_app()
    solution = paths.solution_for("01")
    (app / "Dockerfile.naive").write_text(build.written_file(solution, "naive-dockerfile"))
    (app / "Dockerfile").write_text(build.written_file(solution, "final-dockerfile"))
    (app / ".dockerignore").write_text(build.written_file(solution, "ignore-file"))
    naive = dockerlab.build(app, "labkit/bench-naive:v1", lab=LABEL, dockerfile="Dockerfile.naive")
    final = dockerlab.build(app, "labkit/bench-final:v1", lab=LABEL)
    (app / "Dockerfile.inference").write_text(build.written_file(solution, "inference-dockerfile"))
    inference = dockerlab.build(app, "labkit/bench-inference:v1", lab=LABEL, dockerfile="Dockerfile.inference")
    figures = {"naive_image_bytes": naive.attrs["Size"], "final_image_bytes": final.attrs["Size"],
               "inference_image_bytes": inference.attrs["Size"]}
    # Lab 04's one Dockerfile: only its cpu target is built here; the gpu target adds the CUDA
    # wheels whose sizes environments/gpu/README.md gives (gigabytes: never downloaded by a bench).
    (app / "Dockerfile.gpu").write_text(build.written_file(paths.solution_for("04"), "dockerfile"))
    shutil.copy(paths.ENVIRONMENTS / "gpu" / "requirements-gpu.txt", app)
    cpu_variant = dockerlab.build(app, "labkit/bench-04-cpu:v1", lab=LABEL, dockerfile="Dockerfile.gpu", target="cpu")
    figures["lab04_cpu_target_bytes"] = cpu_variant.attrs["Size"]
    figures["size_ratio"] = round(figures["final_image_bytes"] / figures["naive_image_bytes"], 4)
    figures["inference_size_ratio"] = round(figures["inference_image_bytes"] / figures["naive_image_bytes"], 4)

    started = time.monotonic()
    container = dockerlab.run("labkit/bench-final:v1", lab=LABEL, ports={8080: None},
                              environment={"LOG_REQUESTS": "0"})
    port = dockerlab.host_port(container, 8080)
    figures["ready_s"] = round(wait_for(f"http://127.0.0.1:{port}/readyz"), 3)
    dockerlab.wait_healthy(container, show=False)
    figures["cold_start_s"] = round(time.monotonic() - started, 3)
    body = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}).encode()
    run_load(f"http://127.0.0.1:{port}/predict", body, requests=200, concurrency=4)  # warm-up
    load = run_load(f"http://127.0.0.1:{port}/predict", body, requests=2000, concurrency=8)
    figures.update(load_requests=load.requests, load_errors=load.errors, rps=round(load.rps, 1),
                   p50_ms=round(load.percentile(50), 2), p99_ms=round(load.percentile(99), 2))
    return figures


#: Lab 07's stepped load: offered requests/s per step (past what lab 01's server carries at 0.5
#: CPU, about 1,300/s here, and up to what this 2-core machine can offer at all, beside the
#: loader and docker-proxy), and the p99 objective the capacity keeps.
CAPACITY_RATES = (250, 500, 1000, 1500, 2000, 2500, 3000)
P99_OBJECTIVE_MS = 50


def capacity_figures() -> dict:
    """Lab 07: one replica of lab 01's final image (built by :func:`image_figures`) per CPU limit,
    standing for an instance size, under stepped locust load on loopback; its capacity is the
    highest step whose p99 stays under P99_OBJECTIVE_MS with no errors."""
    body = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}).encode()
    figures = {}
    for cpus in (0.5, 1.0):
        print(f"lab 07: one replica at {cpus} CPU, stepped load (p99 objective {P99_OBJECTIVE_MS} ms)")
        steps = capacity.measure_replica("labkit/bench-final:v1", body, lab=LABEL, cpus=cpus, rates=CAPACITY_RATES,
                                         seconds_per_step=5, max_requests=10000, warmup=200,
                                         environment={"LOG_REQUESTS": "0"})
        best = capacity.capacity(steps, P99_OBJECTIVE_MS)
        print(f"  capacity at {cpus} CPU: " + (f"{best.rps:.0f} rps (offered {best.offered_rps:.0f}, p99 "
                                              f"{best.p99_ms:.0f} ms, server {best.server_cpu:.2f} of its {cpus} "
                                              f"CPU)" if best else "no step met the objective")
              + (": the top step, so at least this (offer more)" if best is steps[-1] else ""))
        figures[f"capacity_rps_{cpus}_cpu"] = round(best.rps, 1) if best else None
        figures[f"capacity_server_cpu_{cpus}_cpu"] = round(best.server_cpu, 2) if best else None
    figures["capacity_p99_objective_ms"] = P99_OBJECTIVE_MS
    return figures


def loop_figures() -> dict:
    """Lab 07's control loop on real Compose replicas (tests/autoscale_bench.py, ``reaction``):
    seconds from the load starting to the loop's first scale-up and to the new replica being
    healthy, each known to within the loop's 2-s period."""
    from tests import autoscale_bench

    reaction = autoscale_bench.measure({"reaction"})["reaction"]
    print(f"lab 07: the control loop scaled up {reaction['decided_s']} s after the load started; the new "
          f"replica was healthy after {reaction['healthy_s']} s; {reaction['errors']} of {reaction['requests']} "
          "requests failed meanwhile")
    return {"loop_scale_up_decided_s": reaction["decided_s"], "loop_new_replica_healthy_s": reaction["healthy_s"],
            "loop_failed_requests": reaction["errors"], "loop_max_replicas_reached": reaction["max_replicas_reached"]}


def switch_figures(workspace: Path) -> dict:
    """Lab 08: blue (1.0) and green (1.1), both lab 01's final image, behind nginx
    (labkit.tools.traffic); a switch to green and a rollback to blue, each under 2,000 requests
    from 4 clients on loopback, a new connection each: failures, which release answered before and
    after, the switch's duration, and p99 around the switch against the rest of the run."""
    project = compose.project_name(LABEL, "bluegreen")
    stack = traffic.write_stack(workspace / "bluegreen", lab=LABEL, versions={"blue": "1.0", "green": "1.1"},
                                images={"blue": "labkit/bench-final:v1", "green": "labkit/bench-final:v1"})
    body = json.dumps({"instances": serving.IRIS_ROWS}).encode()
    figures = {}
    try:
        compose.up(stack, project, show=False)
        compose.wait_healthy(project, ("blue", "green", "proxy"), timeout=120, show=False)
        url = f"http://127.0.0.1:{traffic.ports(project)['live']}/predict"
        for name, to, version in (("switch", "green", "1.1"), ("rollback", "blue", "1.0")):
            across = run_across(url, body, lambda: traffic.switch(stack, project, to, expect_version=version),
                                requests=2000, concurrency=4, after_s=1.0)
            if across.error:
                raise SystemExit(f"lab 08's {name} failed: {across.error}")
            before, after = across.seen(before=True), across.seen(before=False)
            print(f"lab 08: {name} to {to} under load: {across.result.errors} failed of {across.result.requests}; "
                  f"before {dict(before)}, after {dict(after)}; took {across.action_s * 1000:.0f} ms; p99 "
                  f"{across.p99_ms(during=True):.1f} ms around it, {across.p99_ms(during=False):.1f} ms otherwise")
            figures[f"lab08_{name}_failed"] = f"{across.result.errors} of {across.result.requests}"
            figures[f"lab08_{name}_ms"] = round(across.action_s * 1000)
            figures[f"lab08_{name}_p99_ms_around_vs_steady"] = [round(across.p99_ms(during=True), 1),
                                                               round(across.p99_ms(during=False), 1)]
    finally:
        compose.down(stack, project, show=False)
    return figures


def sagemaker_figures(workspace: Path) -> dict:
    """Lab 05's image: start to the first 200 on /ping, then /invocations under load."""
    app = Lab(LABEL, workspace).copy_app("sagemaker-app")
    (app / "Dockerfile").write_text(build.written_file(paths.solution_for("05"), "dockerfile"))
    image = "labkit/bench-sagemaker:v1"
    dockerlab.build(app, image, lab=LABEL)
    model = serving.train(image, workspace / "model", lab=LABEL)
    tar = sagemaker.package_model(model, workspace / "model.tar.gz")
    started = time.monotonic()
    container = sagemaker.run_like_sagemaker(image, tar, lab=LABEL, environment={"LOG_REQUESTS": "0"})
    port = dockerlab.host_port(container, sagemaker.PORT)
    wait_for(f"http://127.0.0.1:{port}/ping")
    figures = {"sagemaker_cold_start_s": round(time.monotonic() - started, 3)}
    body = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}).encode()
    url = f"http://127.0.0.1:{port}/invocations"
    run_load(url, body, requests=200, concurrency=4)  # warm-up
    load = run_load(url, body, requests=2000, concurrency=8)
    figures.update(sagemaker_rps=round(load.rps, 1), sagemaker_errors=load.errors,
                   sagemaker_p50_ms=round(load.percentile(50), 2), sagemaker_p99_ms=round(load.percentile(99), 2))
    return figures


def cpu_figures() -> dict:
    """Lab 04: this CPU measured, then where a few models' weights alone fit (with nothing to spare
    for the KV cache or the runtime, so a real model needs more) and the batch-1 ceiling on
    tokens/s here (each token reads every weight once: bandwidth / weight bytes)."""
    cpu = throughput.measure_cpu()
    print(f"CPU: {cpu.model}, {cpu.cores} cores, {cpu.memory_gb:.1f} GB RAM; one core copies at "
          f"{cpu.bandwidth_gbs:.1f} GB/s; matmul {cpu.float32_gflops:.0f} GFLOP/s float32, "
          f"{cpu.float64_gflops:.0f} float64")
    for model, params in {"BERT-base 110M": 110e6, "Llama 8B": 8e9, "Llama 70B": 70e9}.items():
        for dtype, size in (("fp16", 2), ("int4", 0.5)):
            weights = params * size / 1e9
            here = f"fits {cpu.memory_gb:.0f} GB RAM" if weights < cpu.memory_gb else "not in RAM"
            gpu = next((g.name for g in accelerators.by_memory() if weights < g.memory_gb), "no single GPU")
            print(f"  {model:<15} {dtype}: {weights:7.2f} GB of weights, {here}, "
                  f"<= {cpu.bandwidth_gbs / weights:8.1f} tokens/s here; smallest GPU with more memory: {gpu}")
    return {"cpu_model": cpu.model, "cpu_cores": cpu.cores, "cpu_bandwidth_gbs": round(cpu.bandwidth_gbs, 1),
            "cpu_float32_gflops": round(cpu.float32_gflops, 1), "cpu_float64_gflops": round(cpu.float64_gflops, 1)}


def checks_seconds(executed: Path, solution: Path) -> float:
    """Seconds the checks' kernel spent on the check, checker and shared cells of a graded run."""
    import nbformat

    from labkit import cells

    roles = {c.id: cells.role(c) for c in nbformat.read(solution, as_version=4).cells}
    return sum(c.metadata.get("papermill", {}).get("duration") or 0
               for c in nbformat.read(executed, as_version=4).cells
               if roles.get(c.get("id")) in (cells.CHECKER, cells.SHARED))


class PeakMemory:
    """The most memory a graded run of ``lab`` held at once, in MiB, sampled every half second:
    the resident memory of this process's descendants (the grader's two kernels, the emulators
    and load tools they start) plus what the lab's containers use (``docker stats``'s figure)."""

    def __init__(self, lab: str) -> None:
        self.lab, self.peak_mb = lab, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _sample(self) -> float:
        rss = 0
        for child in psutil.Process().children(recursive=True):
            try:
                rss += child.memory_info().rss
            except psutil.Error:  # it ended meanwhile
                pass
        used = 0.0
        for container in dockerlab.client().containers.list(filters={"label": f"{dockerlab.LABEL}={self.lab}"}):
            try:
                used += dockerlab.memory_used_mb(container) or 0.0
            except Exception:  # noqa: BLE001 - removed between the list and the reading
                pass
        return rss / 2**20 + used

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            self.peak_mb = max(self.peak_mb, self._sample())

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def lab_figures() -> dict:
    """Each solution graded as an instructor would: seconds, the checks' kernel's share of them,
    and the peak memory; the run must score full marks."""
    figures = {"grading_seconds": {}, "checks_seconds": {}, "peak_memory_mb": {}}
    for solution in paths.lab_notebooks(paths.SOLUTIONS):
        with tempfile.TemporaryDirectory(prefix="labkit-bench-") as folder, PeakMemory(solution.name[:2]) as memory:
            executed = Path(folder) / solution.name
            report = grade.grade(solution, executed_path=executed)
            figures["grading_seconds"][solution.stem] = round(report.seconds, 1)
            figures["checks_seconds"][solution.stem] = round(checks_seconds(executed, solution), 1)
        figures["peak_memory_mb"][solution.stem] = round(memory.peak_mb)
        print(f"{solution.stem}: {report.seconds:.0f} s, peak {memory.peak_mb:.0f} MiB", file=sys.stderr)
        if report.score != report.max_score:
            raise SystemExit(f"{solution.name} scored {report.score}/{report.max_score} in the benchmark run")
    return figures


def write(results: dict) -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    width = max(map(len, results))
    for name, value in results.items():
        print(f"{name:<{width}}  {value}")
    print(f"wrote {OUT}")


def class_figures(workspace: Path) -> dict:
    """`labkit grade-all` on a class of 10 lab 01 submissions (the solution, so every check runs
    to the end; warm: the base images and the build cache are there), one at a time; then the
    same class beside 10 of lab 00 with --jobs 2, which overlaps the two labs (one lab's runs never
    overlap). The second run's summed per-submission seconds say what it would take one at a time."""
    def grade_class(labs: tuple[str, ...], jobs: int) -> tuple[float, float]:
        folder = workspace / f"class-{'-'.join(labs)}-{jobs}"
        for lab in labs:
            for n in range(10):
                path = folder / f"student{n:02d}" / "labs" / paths.solution_for(lab).name
                path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(paths.solution_for(lab), path)
        started = time.monotonic()
        rows = batch.grade_all(folder, folder / "grades", jobs=jobs, show=lambda line: print(line, file=sys.stderr))
        wall = time.monotonic() - started
        if any(r.status != batch.GRADED or r.score != r.max_score for r in rows):
            raise SystemExit(f"the class {labs} did not score full marks: {[(r.student, r.status) for r in rows]}")
        return round(wall, 1), round(sum(r.seconds for r in rows), 1)

    serial, _ = grade_class(("01",), 1)
    both, one_at_a_time = grade_class(("01", "00"), 2)
    return {"class_of_10_lab01_serial_s": serial,
            "class_of_10_lab01_and_10_lab00_jobs2_s": both,
            "class_of_10_lab01_and_10_lab00_summed_runs_s": one_at_a_time}


def main() -> int:
    if sys.argv[1:] == ["class"]:  # only the class's grading times (`python -m tests.bench class`)
        with tempfile.TemporaryDirectory(prefix="labkit-bench-") as workspace:
            results = class_figures(Path(workspace))
        for name, value in results.items():
            print(f"{name}  {value}")
        return 0
    if sys.argv[1:] == ["labs"]:  # only the graded runs (`python -m tests.bench labs`), kept with the rest
        results = json.loads(OUT.read_text()) if OUT.exists() else {}
        results.update(lab_figures())
        write(results)
        quoted_figures.update(results)
        return 0
    results = cpu_figures()
    ensure_base_images()
    try:
        with tempfile.TemporaryDirectory(prefix="labkit-bench-") as workspace:
            results.update(image_figures(Path(workspace)))
            results.update(capacity_figures())
            results.update(loop_figures())
            results.update(switch_figures(Path(workspace)))
            results.update(sagemaker_figures(Path(workspace)))
            results.update(class_figures(Path(workspace)))
    finally:
        dockerlab.cleanup(LABEL, show=False)
        dockerlab.remove_images(LABEL, show=False)
    results.update(lab_figures())
    write(results)
    quoted_figures.update(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
