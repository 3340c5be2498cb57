"""Lab 04's checks that need a real NVIDIA GPU but no Docker, in one run.

    python environments/gpu/device_check.py [--out FILE]

1. The doctor's NVML check against the real driver, and the compatibility verdict of that driver
   for images built for CUDA 11.8, 12.4, 12.9 and 13.0 (labkit.machine.gpu's table).
2. The inference server's GPU code path against its CPU path (environments/app/model_server/accel.py):
   the same answers on the same rows, and the latency of each for growing batches, both in
   process (the arithmetic alone, and predict() as the server calls it) and through HTTP (two
   servers, MODEL_DEVICE=cuda and MODEL_DEVICE=cpu, the same requests).
3. The GPU's own figures for the sizing exercise: memory bandwidth (a device-to-device copy)
   and the FP16 matrix-multiply rate.

It prints each figure and writes them all as JSON. A machine without a GPU gets NVML's reason
and the CPU half only (exit 0): nothing here pretends a GPU.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "environments" / "app")]

from labkit import serving  # noqa: E402
from labkit.cloud.emulators import free_port  # noqa: E402
from labkit.core.waiting import wait_until  # noqa: E402
from labkit.machine import gpu, probes  # noqa: E402
from model_server import accel  # noqa: E402
from model_server.train import train  # noqa: E402

CUDA_VERSIONS = ("11.8", "12.4", "12.9", "13.0")
BATCHES = (1, 16, 256, 4096, 65536, 1048576)


def timed_ms(function, *, repeats: int, sync=lambda: None) -> float:
    """Median milliseconds of ``function()`` after two warm-up calls."""
    for _ in range(2):
        function()
    sync()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        sync()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def doctor() -> dict:
    nvml, toolkit, info = probes.gpu(), gpu.toolkit(), probes.gpu_info()
    result = {"nvml": nvml.found or nvml.reason, "toolkit": toolkit.found or toolkit.reason}
    if info:
        result.update(driver=info.driver, driver_cuda=info.cuda,
                      gpus=[{"name": g.name, "memory_gib": round(g.memory_bytes / 2**30, 1)} for g in info.gpus],
                      verdicts={cuda: gpu.driver_supports(info.driver, cuda).message for cuda in CUDA_VERSIONS})
    return result


def paths_compared(model_dir: Path) -> dict:
    import joblib
    import numpy as np

    pipeline = joblib.load(model_dir / "model.joblib")
    rng = np.random.default_rng(0)
    cpu = accel.LinearPredictor(pipeline, "cpu")
    result = {"auto_device": accel.choose_device("auto"), "gpu_unavailable": accel.gpu_unavailable()}
    if result["gpu_unavailable"]:
        return result
    import cupy

    cuda = accel.LinearPredictor(pipeline, "cuda")
    rows = rng.uniform(0, 8, size=(200_000, 4)).tolist()
    same = cpu.predict(rows) == cuda.predict(rows) == [str(x) for x in pipeline.predict(np.asarray(rows))]
    result.update(gpu=accel.gpu_name(), same_answers_on_200000_rows=same, batches={})
    sync = cupy.cuda.Device().synchronize
    for batch in BATCHES:
        host = rng.uniform(0, 8, size=(batch, 4))
        on_gpu = cupy.asarray(host)
        as_list = host.tolist()
        repeats = 20 if batch <= 65536 else 5
        result["batches"][batch] = {
            # the arithmetic alone, data already where it runs
            "cpu_math_ms": timed_ms(lambda: (host @ cpu._weights + cpu._bias).argmax(axis=1), repeats=repeats),
            "gpu_math_ms": timed_ms(lambda: (on_gpu @ cuda._weights + cuda._bias).argmax(axis=1), repeats=repeats,
                                    sync=sync),
            # what the server does per request: Python rows in, labels out
            "cpu_predict_ms": timed_ms(lambda: cpu.predict(as_list), repeats=repeats),
            "gpu_predict_ms": timed_ms(lambda: cuda.predict(as_list), repeats=repeats, sync=sync),
        }
    return result


@contextlib.contextmanager
def server(model_dir: Path, device: str):
    port = free_port(None)
    env = dict(os.environ, MODEL_DEVICE=device, LOG_REQUESTS="0",
               PYTHONPATH=os.pathsep.join([str(ROOT / "environments" / "app"), os.environ.get("PYTHONPATH", "")]))
    log = tempfile.TemporaryFile()
    process = subprocess.Popen([sys.executable, "-m", "model_server", "http", "--host", "127.0.0.1", "--port",
                                str(port), "--model-dir", str(model_dir)], env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"

    def log_tail() -> str:
        log.seek(0)
        return log.read().decode(errors="replace")[-2000:]

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"the MODEL_DEVICE={device} server exited:\n{log_tail()}")
        with urllib.request.urlopen(f"{url}/readyz", timeout=2):
            return True

    try:
        wait_until(ready, timeout=60, every=0.2, ignore=(OSError,), error=RuntimeError, explain=log_tail,
                   what=f"the MODEL_DEVICE={device} server to be ready")
        yield url
    finally:
        process.terminate()
        process.wait(30)


def post(url: str, rows: list) -> list:
    return serving.predict(url, rows, timeout=60)[0]


def http_compared(model_dir: Path) -> dict:
    import numpy as np

    rng = np.random.default_rng(1)
    result = {}
    answers = {}
    for device in ("cpu", "cuda"):
        if device == "cuda" and accel.gpu_unavailable():
            break
        with server(model_dir, device) as url:
            with urllib.request.urlopen(f"{url}/version", timeout=5) as response:
                reported = json.loads(response.read())["device"]
            figures = {"reported_device": reported}
            for batch in (1, 100, 10000):
                rows = rng.uniform(0, 8, size=(batch, 4)).round(2).tolist()
                answers.setdefault(batch, rows)
                figures[f"batch_{batch}_ms"] = timed_ms(lambda: post(url, answers[batch]), repeats=50 if batch < 10000 else 10)
                figures[f"batch_{batch}_answers"] = post(url, answers[batch])
            result[device] = figures
    if "cuda" in result:
        result["same_answers"] = all(result["cpu"][k] == result["cuda"][k] for k in result["cpu"] if k.endswith("_answers"))
    for figures in result.values():
        if isinstance(figures, dict):
            for key in [k for k in figures if k.endswith("_answers")]:
                del figures[key]
    return result


def gpu_figures() -> dict:
    if accel.gpu_unavailable():
        return {}
    import cupy

    sync = cupy.cuda.Device().synchronize
    source = cupy.ones(2 * 2**30 // 4, dtype=cupy.float32)  # 2 GiB, far beyond the L2 cache
    target = cupy.empty_like(source)
    copy_ms = timed_ms(lambda: cupy.copyto(target, source), repeats=10, sync=sync)
    n = 8192
    a = cupy.random.default_rng(0).standard_normal((n, n), dtype=cupy.float32).astype(cupy.float16)
    b = cupy.random.default_rng(1).standard_normal((n, n), dtype=cupy.float32).astype(cupy.float16)
    matmul_ms = timed_ms(lambda: a @ b, repeats=10, sync=sync)
    del source, target, a, b
    copy_gb_per_s = 2 * 2 * 2**30 / (copy_ms / 1000) / 1e9
    return {"copy_gb_per_s": copy_gb_per_s,
            "fp16_matmul_tflop_per_s": 2 * n**3 / (matmul_ms / 1000) / 1e12,
            "method": "CuPy: device-to-device copy of 2 GiB (bytes read + written); 8192x8192x8192 fp16 "
                      "product (2n^3 flop); medians of 10 after 2 warm-ups",
            "decode_step": decode_step(copy_gb_per_s)}


def decode_step(bandwidth_gb_per_s: float, params: int = 8 * 10**9) -> dict:
    """One token of a ``params``-parameter fp16 decoder at batch 1 reads every weight once: time a
    matrix-vector product over that many fp16 weights and set it beside the bandwidth bound."""
    import cupy

    width = 8192
    weights = cupy.empty((params // width, width), dtype=cupy.float16)
    weights.fill(0.01)
    x = cupy.full(width, 0.01, dtype=cupy.float16)
    step_ms = timed_ms(lambda: weights @ x, repeats=20, sync=cupy.cuda.Device().synchronize)
    nbytes = weights.nbytes
    del weights
    return {"params": params, "weights_gb": nbytes / 1e9, "step_ms": step_ms,
            "measured_tokens_per_s": 1000 / step_ms,
            "bound_tokens_per_s": bandwidth_gb_per_s * 1e9 / nbytes,
            "method": "fp16 matrix-vector product over all weights (CuPy/cuBLAS), median of 20"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the figures here as JSON")
    args = parser.parse_args()
    report = {"date": time.strftime("%Y-%m-%d"), "python": platform.python_version(), "doctor": doctor()}
    print(json.dumps(report["doctor"], indent=2), flush=True)
    with tempfile.TemporaryDirectory() as folder:
        model_dir = Path(folder) / "model"
        train(model_dir)
        report["paths"] = paths_compared(model_dir)
        print(json.dumps(report["paths"], indent=2), flush=True)
        report["http"] = http_compared(model_dir)
        print(json.dumps(report["http"], indent=2), flush=True)
    report["gpu"] = gpu_figures()
    print(json.dumps(report["gpu"], indent=2), flush=True)
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
