"""labkit doctor --gpu: the driver table, what each known error means, where the toolkit is found,
and a real `--gpus all` request to this machine's engine."""
from __future__ import annotations

import pytest

from labkit import cli, dockerlab, probes
from labkit.machine import gpu


@pytest.mark.parametrize("driver, cuda, ok", [
    ("525.60.13", "12.8.0", True),      # minor version compatibility: any 12.x on 525.60.13
    ("525.60.12", "12.0", False),
    ("470.182.03", "12.2.0", False),
    ("450.80.02", "11.8", True),
    ("440.33.01", "11.0", False),
    ("580.65.06", "13.0.1", True),
    ("575.57.08", "13.0", False),
    ("580.159.04", "12.4", True),
])
def test_driver_table(driver, cuda, ok):
    verdict = gpu.driver_supports(driver, cuda)
    assert verdict.ok is ok
    assert (f"needs driver {gpu.MIN_DRIVER[gpu.version_key(cuda)[0]]} or newer" in verdict.message) is not ok


def test_a_cuda_the_table_does_not_know_is_not_passed():
    verdict = gpu.driver_supports("580.65.06", "10.2")
    assert not verdict.ok and "not in the table" in verdict.message


@pytest.mark.parametrize("message, cause", [
    ('docker: Error response from daemon: could not select device driver "" with capabilities: [[gpu]].',
     "toolkit-missing"),
    ("docker: Error response from daemon: unknown or invalid runtime name: nvidia.", "toolkit-missing"),
    ("nvidia-container-cli: requirement error: unsatisfied condition: cuda>=12.2, please update your driver",
     "driver-too-old"),
    ("CUDA driver version is insufficient for CUDA runtime version", "driver-too-old"),
    ("Failed to initialize NVML: Unknown Error", "devices-lost"),
    ("nvidia-container-cli: initialization error: load library failed: libnvidia-ml.so.1: cannot open", "no-driver"),
    ("RuntimeError: CUDA error: no CUDA-capable device is detected", "no-gpus-flag"),
    ("0/1 nodes are available: 1 Insufficient nvidia.com/gpu.", "no-device-plugin"),
])
def test_known_errors(message, cause):
    diagnosis = gpu.explain(message)
    assert diagnosis is not None and diagnosis.cause == cause and diagnosis.fix


def test_an_unknown_message_is_not_guessed():
    assert gpu.explain("GPU 0: NVIDIA H200 (UUID: GPU-1234)") is None


def test_image_cuda():
    assert gpu.image_cuda({"Config": {"Env": ["PATH=/usr/bin", "CUDA_VERSION=12.4.1"]}}) == "12.4.1"
    assert gpu.image_cuda({"Config": {"Env": [], "Labels": {"com.nvidia.cuda.version": "12.9"}}}) == "12.9"
    assert gpu.image_cuda({"Config": {"Env": None, "Labels": None}}) is None


def test_cdi_spec_counts_as_the_toolkit(tmp_path, monkeypatch):
    monkeypatch.setattr(probes, "nvidia_toolkit", lambda: probes.Finding(reason="no runtime, no nvidia-ctk"))
    monkeypatch.setattr(gpu, "CDI_DIRS", (tmp_path / "missing", tmp_path))
    (tmp_path / "other.yaml").write_text("kind: example.com/fpga\n")
    assert gpu.toolkit().reason and gpu.TOOLKIT_FIX in gpu.toolkit().reason
    (tmp_path / "nvidia.yaml").write_text("cdiVersion: 0.5.0\nkind: nvidia.com/gpu\n")
    assert gpu.toolkit().found.startswith(f"CDI spec {tmp_path / 'nvidia.yaml'}")


pytestmark_docker = pytest.mark.skipif(bool(probes.docker_reason()), reason=str(probes.docker_reason()))


@pytest.mark.docker
@pytestmark_docker
@pytest.mark.skipif(gpu.toolkit().reason is None, reason="the toolkit is here: a GPU request may succeed")
def test_a_real_gpu_request_without_the_toolkit_fails_as_students_see_it_and_leaves_nothing():
    result = gpu.request_gpus(lab="test-gpu")
    assert not result.ok
    assert 'could not select device driver "" with capabilities: [[gpu]]' in result.output
    assert result.diagnosis.cause == "toolkit-missing"
    assert not dockerlab.client().containers.list(all=True, filters={"label": "labkit.lab=test-gpu"})


@pytest.mark.docker
@pytestmark_docker
def test_labkit_doctor_gpu_prints_the_three_checks(capsys):
    code = cli.main(["doctor", "--gpu"])
    out = capsys.readouterr().out
    assert [line.split()[1] for line in out.splitlines()[1:] if line[:4] in ("OK  ", "FAIL", "n/a ")] == \
        ["toolkit", "--gpus", "driver"]
    rows = gpu.examine()
    assert code == (1 if any(row.ok is False for row in rows) else 0)
    if probes.gpu_info() is None:
        assert rows[2].ok is None and rows[2].detail == probes.gpu_reason()


@pytest.mark.parametrize("known", gpu.KNOWN_ERRORS, ids=lambda k: k.diagnosis.cause)
def test_each_example_is_explained_by_its_own_entry(known):
    assert gpu.explain(known.example) is known.diagnosis


def test_min_driver():
    assert (gpu.min_driver("12.4.1"), gpu.min_driver("13.0"), gpu.min_driver("10.2"), gpu.min_driver("")) == \
        ("525.60.13", "580", None, None)
