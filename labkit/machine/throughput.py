"""What this machine's CPU can do, measured: memory bandwidth and matrix-multiply rate.

These are the two figures that answer lab 04's question ("Do I need a GPU?") for this machine:
generating one token of a language model at batch 1 reads every weight once, so it is bounded by
memory bandwidth; training and large batches are matrix products, bounded by the multiply rate.
Each measurement takes well under a few seconds, returns a plain float and keeps the best of
several runs (the least disturbed by whatever else the machine is doing).
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path


def _best_seconds(run, repeats: int) -> float:
    """The shortest wall time of ``repeats`` calls of ``run`` (after one untimed warm-up call)."""
    run()
    best = float("inf")
    for _ in range(max(1, repeats)):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def memory_bandwidth_gbs(size_mb: int = 256, repeats: int = 5) -> float:
    """Main-memory bandwidth in GB/s (1e9 bytes/s): NumPy copies an array of ``size_mb`` MB into
    another, counting the bytes read plus the bytes written, best of ``repeats`` copies.

    What it measures: one core streaming through memory, the way NumPy (and a batch-1 model on a
    CPU) does it. What it does not: the machine's total bandwidth with every core busy (a copy is
    one thread; with all cores reading, a server gets several times more), nor cache bandwidth:
    keep ``size_mb`` well above the last-level cache (tens of MB on most CPUs) or the figure is the
    cache's, not memory's. It counts the bytes the program asked to move: where a store first reads
    its cache line (write-allocate; large copies often avoid it), the hardware moved more.
    """
    import numpy as np

    source = np.ones(int(size_mb * 1e6) // 8, dtype=np.float64)  # ones, not empty: pages are touched now
    target = np.zeros_like(source)
    seconds = _best_seconds(lambda: np.copyto(target, source), repeats)
    return 2 * source.nbytes / seconds / 1e9


def matmul_gflops(dtype: str = "float32", n: int = 1024, repeats: int = 5) -> float:
    """Matrix-multiply rate in GFLOP/s: NumPy multiplies two ``n`` x ``n`` matrices of ``dtype``,
    counting 2·n³ floating-point operations, best of ``repeats`` products.

    What it measures: the BLAS library NumPy was built with (OpenBLAS in the wheels), on as many
    cores as it uses, which is all of them unless ``OPENBLAS_NUM_THREADS`` (or
    ``OMP_NUM_THREADS``) says fewer. What it does not: the CPU's peak (small ``n`` leaves cores
    idle; the three matrices of n = 1024 float32, 12 MB, partly fit in cache), nor the low-precision
    integer paths a quantised model on a CPU uses.
    """
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    out = np.empty((n, n), dtype=dtype)
    seconds = _best_seconds(lambda: np.matmul(a, b, out=out), repeats)
    return 2 * n ** 3 / seconds / 1e9


def cpu_model() -> str:
    """The CPU's model name: /proc/cpuinfo where present (Linux), else what Python's platform says."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.split(":")[0].strip() in ("model name", "Model", "Hardware"):
                return line.partition(":")[2].strip()
    return platform.processor() or platform.machine() or "unknown"


def memory_gb() -> float:
    """The machine's RAM in GB (1e9 bytes), as the operating system reports it (0.0 where it does not)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (ValueError, OSError, AttributeError):
        return 0.0


@dataclass(frozen=True)
class CpuFigures:
    model: str
    cores: int                 # logical CPUs this process may use
    memory_gb: float           # RAM, 1e9 bytes
    bandwidth_gbs: float       # memory_bandwidth_gbs(): one core copying
    float32_gflops: float      # matmul_gflops("float32")
    float64_gflops: float      # matmul_gflops("float64")


def measure_cpu(size_mb: int = 256, n: int = 1024, repeats: int = 5) -> CpuFigures:
    """This machine's CPU figures: what it is, then its bandwidth and multiply rates, measured."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return CpuFigures(model=cpu_model(), cores=cores, memory_gb=memory_gb(),
                      bandwidth_gbs=memory_bandwidth_gbs(size_mb, repeats),
                      float32_gflops=matmul_gflops("float32", n, repeats),
                      float64_gflops=matmul_gflops("float64", n, repeats))
