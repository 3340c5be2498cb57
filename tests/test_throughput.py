"""Lab 04's figures: this CPU measured, the GPU table, and the two sizing plots drawn from the
student's own functions."""

import time

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.colors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

from labkit import plots  # noqa: E402
from labkit.machine import accelerators, throughput  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_memory_bandwidth_is_plausible_and_quick():
    started = time.monotonic()
    gbs = throughput.memory_bandwidth_gbs()
    assert time.monotonic() - started < 10, "the default measurement must stay a few seconds at most"
    assert isinstance(gbs, float) and 0.1 < gbs < 1000


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matmul_rate_is_plausible_and_quick(dtype):
    started = time.monotonic()
    gflops = throughput.matmul_gflops(dtype)
    assert time.monotonic() - started < 10, "the default measurement must stay a few seconds at most"
    assert isinstance(gflops, float) and 0.01 < gflops < 100000


def test_measure_cpu_says_what_the_machine_is():
    figures = throughput.measure_cpu(size_mb=32, n=256, repeats=2)
    assert figures.model and figures.cores >= 1 and figures.memory_gb > 0
    assert 0.1 < figures.bandwidth_gbs < 1000
    assert 0.01 < figures.float32_gflops < 100000 and 0.01 < figures.float64_gflops < 100000


def test_cpu_model_falls_back_without_proc(monkeypatch, tmp_path):
    monkeypatch.setattr(throughput, "Path", lambda _: tmp_path / "no-cpuinfo")
    monkeypatch.setattr(throughput.platform, "processor", lambda: "Test CPU 9000")
    assert throughput.cpu_model() == "Test CPU 9000"


def test_the_gpu_table_is_consistent():
    names = [gpu.name for gpu in accelerators.GPUS]
    assert len(names) == len(set(names))
    for gpu in accelerators.GPUS:
        assert gpu.memory_gb > 0 and gpu.bandwidth_gbs > 0 and gpu.fp16_tflops > 0, gpu
        assert "datasheet" in gpu.source or "whitepaper" in gpu.source or "page" in gpu.source, gpu
    assert accelerators.LOOKED_UP == "2026-12-04"


def test_the_table_holds_the_figures_the_lab_quotes():
    quoted = {"T4": (16, 320), "L4": (24, 300), "A10G": (24, 600), "L40S": (48, 864), "A100 40GB": (40, 1555),
              "A100 80GB SXM": (80, 2039), "H100 SXM": (80, 3350), "H200": (141, 4800), "RTX 4090": (24, 1008)}
    for name, (memory, bandwidth) in quoted.items():
        gpu = accelerators.get(name)
        assert (gpu.memory_gb, gpu.bandwidth_gbs) == (memory, bandwidth), name


def test_by_memory_sorts_the_whole_table_smallest_first():
    rows = accelerators.by_memory()
    assert sorted(rows, key=lambda g: g.name) == sorted(accelerators.GPUS, key=lambda g: g.name)
    assert [g.memory_gb for g in rows] == sorted(g.memory_gb for g in accelerators.GPUS)
    assert rows[0].name == "T4" and rows[-1].name == "H200"


def test_get_ignores_case_and_spaces_and_names_the_choices():
    assert accelerators.get("h100sxm").name == "H100 SXM"
    with pytest.raises(KeyError, match="T4"):
        accelerators.get("GTX 480")


class Counted:
    """A student's function, counting its calls."""

    def __init__(self, function):
        self.function, self.calls = function, []

    def __call__(self, *args):
        self.calls.append(args)
        return self.function(*args)


BYTES = {"fp32": 4, "fp16": 2, "int8": 1, "int4": 0.5}


def test_gpu_sizing_draws_the_students_functions():
    memory = Counted(lambda params, dtype: params * BYTES[dtype] / 1e9)
    tokens = Counted(lambda params, dtype, bandwidth: bandwidth * 1e9 / (params * BYTES[dtype]))
    models = {"small 1M": 1e6, "big 20B": 20e9}
    gpus = [accelerators.get("T4"), accelerators.get("L4"), accelerators.get("A10G")]
    fig = plots.gpu_sizing(memory, tokens, models=models, dtypes=("fp32", "int4"), gpus=gpus,
                           cpu_bandwidth_gbs=12.5, cpu_memory_gb=8, gpu="L4")
    assert {(p, d) for p, d in memory.calls} == {(p, d) for p in models.values() for d in ("fp32", "int4")}
    assert {(p, d, bw) for p, d, bw in tokens.calls} == {
        (p, d, bw) for p in models.values() for d in ("fp32", "int4") for bw in (12.5, 300)}
    left, right = fig.axes
    lines = {round(line.get_ydata()[0], 3) for line in left.get_lines()}
    assert lines == {8, 16, 24}, "one line per GPU memory size (L4 and A10G share 24 GB) and one for the RAM"
    assert "L4" in right.get_title() and "T4" not in right.get_title()
    # 20B parameters in fp32 is 80 GB: it fits neither the 8 GB machine nor the L4, so its marker is hollow
    hollow = [matplotlib.colors.to_hex(face) == "#ffffff"
              for points in right.collections for face in points.get_facecolors()]
    assert hollow.count(True) == 3 and hollow.count(False) == 5  # 20B int4 (10 GB) fits only the L4


def test_gpu_sizing_defaults_to_the_last_gpu():
    fig = plots.gpu_sizing(lambda p, d: 1.0, lambda p, d, bw: bw, models={"m": 1}, dtypes=("fp16",),
                           gpus=accelerators.by_memory(), cpu_bandwidth_gbs=10, cpu_memory_gb=16)
    assert "H200" in fig.axes[1].get_title()


def test_cpu_vs_gpu_latency_plots_each_device():
    results = {"cpu": {1: 0.5, 8: 2.0, 64: 12.0}, "cuda": {1: 0.2, 64: 0.4}}
    fig = plots.cpu_vs_gpu_latency(results)
    (ax,) = fig.axes
    drawn = {line.get_label(): dict(zip(line.get_xdata(), line.get_ydata())) for line in ax.get_lines()}
    assert drawn == results
