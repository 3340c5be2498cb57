"""The FAQ's three checks for "container runs but can't access GPU", as a doctor.

1. **The NVIDIA Container Toolkit**: ``nvidia-ctk`` on PATH, an ``nvidia`` runtime in ``docker
   info``, or a CDI spec for ``nvidia.com/gpu`` in /etc/cdi or /var/run/cdi.
2. **``--gpus all``**: a real ``docker run`` with a GPU device request, through the Docker SDK as
   the CLI sends it. Its error, when there is one, is what a student meets, and :func:`explain`
   maps it to its cause and fix.
3. **Driver compatibility**: the driver version NVML reports, the CUDA version an image was built
   for (its ``CUDA_VERSION`` environment or label), and NVIDIA's minimum-driver table.

Every finding is real: nothing here pretends a GPU. Without a driver, NVML's
``NVMLError_LibraryNotFound`` is the reason, and the ``--gpus`` request fails here as it fails on
any machine without the toolkit.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..core import engine, labels
from . import probes

#: Minimum Linux driver for each CUDA major version under *minor version compatibility*: an
#: application built with any CUDA 12.x runs on a 525.60.13 driver or newer, except for features
#: that need a newer driver (PTX JIT of newer code among them). Source: NVIDIA, "CUDA
#: Compatibility" guide and the CUDA Toolkit release notes ("CUDA Toolkit and Minimum Required
#: Driver Version for CUDA Minor Version Compatibility"), looked up for this course in 2026-11.
MIN_DRIVER = {11: "450.80.02", 12: "525.60.13", 13: "580"}
MIN_DRIVER_SOURCE = "NVIDIA's CUDA Compatibility guide and CUDA Toolkit release notes, looked up 2026-11"

CDI_DIRS = (Path("/etc/cdi"), Path("/var/run/cdi"))
TOOLKIT_FIX = (f"install the NVIDIA Container Toolkit ({probes.TOOLKIT_INSTALL}), then "
               "`sudo nvidia-ctk runtime configure --runtime=docker` and `sudo systemctl restart docker`; "
               "or, with Docker 25+, generate a CDI spec (`sudo nvidia-ctk cdi generate "
               "--output=/etc/cdi/nvidia.yaml`) and run with `--device nvidia.com/gpu=all`")
PROBE_IMAGE = "python:3.11-slim"


def version_key(version: str) -> tuple[int, ...]:
    """"525.60.13" → (525, 60, 13), for comparing driver versions."""
    return tuple(int(part) for part in re.findall(r"\d+", version))


def min_driver(cuda: str) -> str | None:
    """The oldest driver that runs images built for CUDA ``cuda`` ("12.4" → "525.60.13"), None for
    a CUDA version the table does not know."""
    key = version_key(cuda)
    return MIN_DRIVER.get(key[0]) if key else None


@dataclass(frozen=True)
class Verdict:
    ok: bool
    message: str


def driver_supports(driver: str, cuda: str) -> Verdict:
    """Whether a host driver ``driver`` runs an image built for CUDA ``cuda`` (``"12.4"``)."""
    needed = min_driver(cuda)
    if needed is None:
        return Verdict(False, f"CUDA {cuda}: not in the table ({', '.join(f'{m}.x' for m in MIN_DRIVER)}); "
                              f"see {MIN_DRIVER_SOURCE}")
    major = version_key(cuda)[0]
    if version_key(driver) >= version_key(needed):
        return Verdict(True, f"driver {driver} runs CUDA {cuda} images (CUDA {major}.x needs {needed} or newer)")
    return Verdict(False, f"driver {driver} is too old for CUDA {cuda}: CUDA {major}.x needs driver {needed} or "
                          f"newer — upgrade the host driver, or use an image built for an older CUDA")


def image_cuda(image_attrs: dict) -> str | None:
    """The CUDA version an image declares: its CUDA_VERSION variable (NVIDIA's base images set it),
    else a ``com.nvidia.cuda.version`` label; None when it declares neither."""
    config = image_attrs.get("Config") or {}
    for item in config.get("Env") or []:
        name, _, value = item.partition("=")
        if name == "CUDA_VERSION" and value:
            return value
    return (config.get("Labels") or {}).get("com.nvidia.cuda.version")


# --- what an error means ---------------------------------------------------------------------

@dataclass(frozen=True)
class Diagnosis:
    cause: str   # a short id: "toolkit-missing", "driver-too-old", ...
    why: str     # what is wrong, in words
    fix: str     # what to do


@dataclass(frozen=True)
class KnownError:
    pattern: str         # a regular expression searched for in the message
    example: str         # such a message, as a student meets it
    diagnosis: Diagnosis


#: The first that matches wins.
KNOWN_ERRORS = (
    KnownError(r'could not select device driver "[^"]*" with capabilities: \[\[gpu\]\]',
               'docker: Error response from daemon: could not select device driver "" with capabilities: [[gpu]]',
               Diagnosis("toolkit-missing", "the Docker engine has no GPU device driver: the NVIDIA Container "
                                            "Toolkit is not installed or not configured for Docker", TOOLKIT_FIX)),
    KnownError(r"unknown or invalid runtime name: nvidia",
               "docker: Error response from daemon: unknown or invalid runtime name: nvidia",
               Diagnosis("toolkit-missing", "`--runtime=nvidia` names a runtime the engine does not have",
                         "`sudo nvidia-ctk runtime configure --runtime=docker`, restart Docker (or use `--gpus all`)")),
    KnownError(r"unsatisfied condition: cuda>=|driver version is insufficient|cudaErrorInsufficientDriver|"
               r"CUDA driver version is insufficient|forward compatibility was attempted",
               "nvidia-container-cli: requirement error: unsatisfied condition: cuda>=12.4, please update your driver",
               Diagnosis("driver-too-old", "the host driver is older than the CUDA version the image was built for",
                         "upgrade the host driver (see the minimum-driver table), or use an image built for the "
                         "CUDA version `nvidia-smi` shows")),
    KnownError(r"Failed to initialize NVML: Unknown Error", "Failed to initialize NVML: Unknown Error",
               Diagnosis("devices-lost", "the container lost access to the GPU device files: with the systemd "
                                         "cgroup driver, a `systemctl daemon-reload` on the host rewrites the "
                                         "container's device rules",
                         "restart the container now; for good, create the /dev/char links (`sudo nvidia-ctk "
                         "system create-dev-char-symlinks --create-all`) or run GPUs through CDI")),
    KnownError(r"libnvidia-ml\.so\.1|NVML: Driver Not Loaded|nvml error: driver not loaded|NVIDIA-SMI has failed",
               "nvidia-container-cli: initialization error: load library failed: libnvidia-ml.so.1: cannot open "
               "shared object file",
               Diagnosis("no-driver", "the host has no working NVIDIA driver for the toolkit to pass in",
                         "install the driver and check `nvidia-smi` on the host first")),
    KnownError(r"no CUDA-capable device is detected|no GPU is visible|CUDA_ERROR_NO_DEVICE",
               "RuntimeError: CUDA error: no CUDA-capable device is detected",
               Diagnosis("no-gpus-flag", "the container was started without a GPU",
                         "start it with `--gpus all` (Compose: deploy.resources.reservations.devices; "
                         "Kubernetes: nvidia.com/gpu in limits)")),
    KnownError(r"Insufficient nvidia\.com/gpu", "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
               Diagnosis("no-device-plugin", "no node offers nvidia.com/gpu: the NVIDIA device plugin is not "
                                             "running, or no node has a free GPU",
                         "install the NVIDIA device plugin (or the GPU Operator) on GPU nodes; check "
                         "`kubectl describe node` for nvidia.com/gpu under Allocatable")),
)


def explain(message: str) -> Diagnosis | None:
    """The cause and fix of a GPU error message, or None when it is not one this doctor knows."""
    return next((known.diagnosis for known in KNOWN_ERRORS if re.search(known.pattern, message)), None)


# --- the three probes ------------------------------------------------------------------------

def cdi_specs() -> list[Path]:
    """CDI specs that declare NVIDIA GPUs (what `--device nvidia.com/gpu=all` needs)."""
    found = []
    for folder in CDI_DIRS:
        for path in sorted(folder.glob("*")) if folder.is_dir() else ():
            try:
                if path.suffix in (".yaml", ".yml", ".json") and "nvidia.com/gpu" in path.read_text(errors="replace"):
                    found.append(path)
            except OSError:
                continue
    return found


def toolkit() -> probes.Finding:
    """Check 1: the toolkit, as the runtime Docker knows, the CLI, or a CDI spec."""
    runtime = probes.nvidia_toolkit()
    if runtime.reason is None:
        return runtime
    if specs := cdi_specs():
        return probes.Finding(f"CDI spec {specs[0]} (use `--device nvidia.com/gpu=all`, Docker 25+)")
    return probes.Finding(reason=f"NVIDIA Container Toolkit not found (no `nvidia` runtime in `docker info`, no "
                                 f"nvidia-ctk on PATH, no CDI spec in {' or '.join(map(str, CDI_DIRS))}) — {TOOLKIT_FIX}")


@dataclass(frozen=True)
class RequestResult:
    ok: bool
    output: str                      # what the container printed, or the engine's error
    diagnosis: Diagnosis | None = None


def request_gpus(image: str = PROBE_IMAGE, command: list[str] | None = None, *, lab: str = "doctor") -> RequestResult:
    """Check 2, for real: ``docker run --gpus all IMAGE COMMAND`` through the SDK. The container
    is labelled as ``lab``'s and removed, whether it started or not."""
    import docker

    client = engine.docker_client(timeout=120)
    request = docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])  # what `--gpus all` sends
    container = client.containers.create(image, command or ["true"], device_requests=[request],
                                         labels={labels.LAB: lab})
    try:
        container.start()
        status = container.wait(timeout=120)
        output = container.logs().decode(errors="replace")
        if status.get("StatusCode") == 0:
            return RequestResult(True, output)
        return RequestResult(False, output, explain(output))
    except docker.errors.APIError as exc:
        message = str(exc.explanation or exc)
        return RequestResult(False, message, explain(message))
    finally:
        container.remove(force=True)


@dataclass(frozen=True)
class Row:
    check: str
    ok: bool | None      # None: could not be checked here (the detail says why)
    detail: str
    fix: str = ""


def examine(image: str | None = None) -> list[Row]:
    """The three checks on this machine, as rows. ``image`` (built here) adds the CUDA verdict for it."""
    probes.refresh()
    rows = []
    found = toolkit()
    rows.append(Row("toolkit", found.reason is None, found.found or "not found", "" if found.reason is None else TOOLKIT_FIX))
    if reason := probes.docker_reason():
        rows.append(Row("--gpus all", None, f"not tried: {reason}"))
    else:
        result = request_gpus()
        if result.ok:
            rows.append(Row("--gpus all", True, "a container started with every GPU"))
        else:
            diagnosis = result.diagnosis
            fix = "see the message" if diagnosis is None else diagnosis.why + (
                "" if diagnosis.fix == rows[0].fix else f": {diagnosis.fix}")  # said once, on the toolkit row
            rows.append(Row("--gpus all", False, result.output.strip()[-300:], fix))
    info = probes.gpu_info()
    if info is None:
        rows.append(Row("driver", None, probes.gpu_reason() or "no GPU"))
    else:
        rows.append(Row("driver", True, f"{info.driver} (supports CUDA up to {info.cuda}); "
                                        + ", ".join(g.name for g in info.gpus)))
    if image:
        rows.append(_image_row(image, info.driver if info else None))
    return rows


def _image_row(image: str, host_driver: str | None) -> Row:
    try:
        attrs = engine.docker_client(timeout=engine.PROBE_TIMEOUT_S).images.get(image).attrs
    except Exception as exc:  # noqa: BLE001 - a doctor reports, it never raises
        return Row(f"CUDA of {image}", None, f"cannot read the image: {exc}")
    cuda = image_cuda(attrs)
    if cuda is None:
        return Row(f"CUDA of {image}", None, "the image declares no CUDA_VERSION (a CPU image?)")
    needed = min_driver(cuda) or "unknown"
    if host_driver is None:
        return Row(f"CUDA of {image}", None, f"CUDA {cuda}: needs driver {needed}+; no driver here to compare")
    verdict = driver_supports(host_driver, cuda)
    return Row(f"CUDA of {image}", verdict.ok, verdict.message, "" if verdict.ok else "upgrade the host driver")


def run_gpu_doctor(image: str | None = None, console=None) -> list[Row]:
    """Print the three checks (and the image's CUDA verdict) with their fixes; return the rows."""
    from rich.console import Console
    from rich.text import Text

    console = console or Console()
    rows = examine(image)
    console.print(Text("labkit doctor --gpu: the FAQ's three checks", style="bold"))
    for row in rows:
        status, style = {True: ("OK", "green"), False: ("FAIL", "bold red"), None: ("n/a", "cyan")}[row.ok]
        console.print(Text.assemble((f"{status:<6}", style), f"{row.check:<14}", row.detail), soft_wrap=True)
        if row.fix:
            console.print(Text.assemble(" " * 20, ("fix: ", "bold"), row.fix), soft_wrap=True)
    return rows
