"""Probes: find out, for real, whether a capability the labs need is here.

Each capability has a probe returning a `Finding` (what was found, or why not) and a
`*_reason()` shortcut returning None when the capability is available, else a short
reason that says what is missing and how to get it. The grading contract skips a
check only with such a reason. Probes never raise (a failing probe is a reason) and
are cached; `refresh()` forgets the cache so the next call probes afresh.
"""
from __future__ import annotations

import configparser
import contextlib
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from ..core import engine

COMMAND_TIMEOUT_S = 15

DOCKER_INSTALL = "https://docs.docker.com/get-docker/"
BUILDX_INSTALL = "https://docs.docker.com/go/buildx/"
COMPOSE_INSTALL = "https://docs.docker.com/compose/install/"
KIND_INSTALL = "https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
KUBECTL_INSTALL = "https://kubernetes.io/docs/tasks/tools/"
TOOLKIT_INSTALL = "https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/install-guide.html"


@dataclass(frozen=True)
class Finding:
    found: str | None = None   # what is there (versions, where), None when absent
    reason: str | None = None  # None when available, else what is missing and how to get it


class BuildCommand(NamedTuple):
    """How to run a BuildKit build here: `env` added to the environment, then `argv` + build args."""
    argv: list[str]
    env: dict[str, str]
    found: str


class Gpu(NamedTuple):
    name: str
    memory_bytes: int


class GpuInfo(NamedTuple):
    driver: str            # NVIDIA driver version, e.g. "550.54.15"
    cuda: str              # highest CUDA version this driver supports, e.g. "12.4"
    gpus: tuple[Gpu, ...]


class DiskFree(NamedTuple):
    free_bytes: int
    where: str             # the path measured, and what it stands for


_cached: list = []


def _cache(fn):
    fn = functools.cache(fn)
    _cached.append(fn)
    return fn


def refresh() -> None:
    """Forget every cached probe result (e.g. after starting the engine)."""
    for fn in _cached:
        fn.cache_clear()


@_cache
def _run(*argv: str, env: tuple[tuple[str, str], ...] = (),
         stdin: str | None = None) -> subprocess.CompletedProcess | None:
    """Run a command quietly; None when it cannot be started or times out."""
    try:
        return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S,
                              env={**os.environ, **dict(env)} if env else None)
    except (OSError, subprocess.SubprocessError):
        return None


def _output(*argv: str) -> str | None:
    """Stripped stdout of a command that exits 0, else None."""
    proc = _run(*argv)
    return proc.stdout.strip() if proc is not None and proc.returncode == 0 else None


def _cause(exc: BaseException) -> str:
    """The innermost cause of an exception chain, briefly."""
    while (inner := exc.__cause__ or exc.__context__) is not None:
        exc = inner
    return getattr(exc, "strerror", None) or str(exc)[:160] or type(exc).__name__


# --- Docker engine ---------------------------------------------------------------------

def docker_info() -> dict | None:
    """`docker info` from the engine the docker SDK reaches (DOCKER_HOST or the default socket)."""
    return _engine()[0]


@_cache
def _engine() -> tuple[dict | None, str | None]:
    try:
        client = engine.docker_client(engine.PROBE_TIMEOUT_S)
        try:
            client.ping()
            return client.info(), None
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return None, _cause(exc)


def docker_engine() -> Finding:
    info, cause = _engine()
    if info is not None:
        return Finding(f"Docker Engine {info.get('ServerVersion', '?')} ({info.get('OperatingSystem', '?')})")
    host = os.environ.get("DOCKER_HOST") or "the default socket"
    if "permission denied" in cause.lower():
        fix = "let your user use it: `sudo usermod -aG docker $USER`, then log out and back in"
    else:
        fix = ("start it: Linux `sudo systemctl start docker` (or `sudo dockerd &`), macOS/Windows: open Docker "
               "Desktop; for a non-default socket set DOCKER_HOST, e.g. "
               "`export DOCKER_HOST=$(docker context inspect -f '{{.Endpoints.docker.Host}}')`; "
               f"no Docker yet? {DOCKER_INSTALL}")
    return Finding(reason=f"Docker engine not reachable at {host} ({cause}) — {fix}")


def docker_reason() -> str | None:
    return docker_engine().reason


# --- BuildKit ----------------------------------------------------------------------------

def _docker_clients() -> list[str]:
    """Every `docker` executable on PATH, in PATH order, without duplicates."""
    seen, found = set(), []
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        path = shutil.which("docker", path=folder) if folder else None
        if path and (real := os.path.realpath(path)) not in seen:
            seen.add(real)
            found.append(path)
    return found


def _client_version(client: str) -> str:
    match = re.search(r"version (\S+?),", _output(client, "--version") or "")
    return match.group(1) if match else "?"


@_cache
def _buildkit() -> tuple[BuildCommand | None, Finding]:
    clients = _docker_clients()
    if not clients:
        return None, Finding(reason=f"no docker client on PATH — install Docker: {DOCKER_INSTALL}")
    for client in clients:
        if buildx := _output(client, "buildx", "version"):
            cmd = BuildCommand([client, "buildx", "build"], {}, f"{client} buildx ({buildx})")
            return cmd, Finding(cmd.found)
    versions = {client: _client_version(client) for client in clients}
    # Clients before 23.0 have BuildKit built in (DOCKER_BUILDKIT=1); newer ones need buildx.
    old = [c for c, v in versions.items() if (major := re.match(r"\d+", v)) and int(major.group()) < 23]
    if old and docker_reason():
        return None, Finding(reason=f"cannot try BuildKit with {old[0]} {versions[old[0]]}: the Docker engine is not "
                                    "reachable — start the engine first (see the Docker engine item)")
    for client in old:
        trial = _run(client, "build", "-q", "-o", f"type=tar,dest={os.devnull}", "-",
                     env=(("DOCKER_BUILDKIT", "1"),), stdin="FROM scratch\n")
        if trial is not None and trial.returncode == 0:
            cmd = BuildCommand([client, "build"], {"DOCKER_BUILDKIT": "1"},
                               f"{client} {versions[client]} with DOCKER_BUILDKIT=1")
            return cmd, Finding(cmd.found)
    tried = ", ".join(f"{c} {v} ({'DOCKER_BUILDKIT=1 build failed' if c in old else 'no buildx'})"
                      for c, v in versions.items())
    return None, Finding(reason=f"no docker client here builds with BuildKit: {tried} — install the buildx plugin: "
                                f"{BUILDX_INSTALL}")


def buildkit() -> Finding:
    return _buildkit()[1]


def buildkit_command() -> BuildCommand | None:
    """How to build with BuildKit here: `docker buildx build`, or a pre-23 client with DOCKER_BUILDKIT=1."""
    return _buildkit()[0]


def buildkit_reason() -> str | None:
    return buildkit().reason


# --- Compose -----------------------------------------------------------------------------

@_cache
def _compose() -> tuple[list[str] | None, Finding]:
    if version := _output("docker", "compose", "version", "--short"):
        return ["docker", "compose"], Finding(f"docker compose {version} (v2 plugin)")
    if version := _output("docker-compose", "version", "--short"):
        return ["docker-compose"], Finding(f"docker-compose {version}")
    return None, Finding(reason=f"neither `docker compose` nor `docker-compose` works — install Compose: "
                                f"{COMPOSE_INSTALL}")


def compose() -> Finding:
    return _compose()[1]


def compose_command() -> list[str] | None:
    """The argv prefix for Compose: ["docker", "compose"], ["docker-compose"], or None."""
    return _compose()[0]


def compose_reason() -> str | None:
    return compose().reason


# --- kind and kubectl ----------------------------------------------------------------------

def _tool(name: str, version_argv: tuple[str, ...], parse, install: str) -> Finding:
    if not shutil.which(name):
        return Finding(reason=f"{name} not found on PATH — install it: {install}")
    out = _output(name, *version_argv)
    if out is None:
        return Finding(reason=f"`{name} {' '.join(version_argv)}` failed — reinstall it: {install}")
    try:
        return Finding(f"{name} {parse(out)}")
    except (ValueError, KeyError, IndexError):
        return Finding(f"{name} (version unknown)")


@_cache
def kind() -> Finding:
    return _tool("kind", ("version",), lambda out: out.split()[1], KIND_INSTALL)


@_cache
def kubectl() -> Finding:
    return _tool("kubectl", ("version", "--client", "-o", "json"),
                 lambda out: json.loads(out)["clientVersion"]["gitVersion"], KUBECTL_INSTALL)


def kind_reason() -> str | None:
    return kind().reason


def kubectl_reason() -> str | None:
    return kubectl().reason


# --- GPU -----------------------------------------------------------------------------------

def _text(value: str | bytes) -> str:
    """NVML strings are bytes in older nvidia-ml-py releases."""
    return value.decode() if isinstance(value, bytes) else value


@_cache
def _nvml() -> GpuInfo | str:
    """GPU facts from NVML, or the reason there are none."""
    try:
        import pynvml
    except ImportError:
        return "nvidia-ml-py is not installed — `pip install nvidia-ml-py`"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError_LibraryNotFound:
        return ("NVML not found: no NVIDIA driver on this machine — GPU steps need an NVIDIA GPU and its driver "
                "(https://www.nvidia.com/drivers)")
    except pynvml.NVMLError_DriverNotLoaded:
        return "NVIDIA driver installed but not loaded — reboot or `sudo modprobe nvidia`, then check `nvidia-smi`"
    except Exception as exc:  # noqa: BLE001
        return f"NVML could not start ({exc}) — check the driver with `nvidia-smi`"
    try:
        cuda = pynvml.nvmlSystemGetCudaDriverVersion()
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        gpus = tuple(Gpu(_text(pynvml.nvmlDeviceGetName(h)), pynvml.nvmlDeviceGetMemoryInfo(h).total) for h in handles)
        if not gpus:
            return "NVIDIA driver loaded but no GPU visible — check `nvidia-smi` and CUDA_VISIBLE_DEVICES"
        return GpuInfo(_text(pynvml.nvmlSystemGetDriverVersion()), f"{cuda // 1000}.{cuda % 1000 // 10}", gpus)
    except Exception as exc:  # noqa: BLE001
        return f"NVML error while reading the GPUs ({exc}) — check `nvidia-smi`"
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


def gpu_info() -> GpuInfo | None:
    """Driver, CUDA version and GPUs as NVML reports them; None without a usable NVIDIA GPU."""
    info = _nvml()
    return info if isinstance(info, GpuInfo) else None


def gpu() -> Finding:
    info = _nvml()
    if isinstance(info, str):
        return Finding(reason=info)
    names = ", ".join(f"{g.name} ({g.memory_bytes / 2**30:.0f} GiB)" for g in info.gpus)
    return Finding(f"{names}; driver {info.driver}, CUDA {info.cuda}")


def gpu_reason() -> str | None:
    return gpu().reason


@_cache
def nvidia_toolkit() -> Finding:
    if "nvidia" in ((docker_info() or {}).get("Runtimes") or {}):
        return Finding("nvidia runtime registered with the Docker engine")
    for tool in ("nvidia-ctk", "nvidia-container-cli"):
        if path := shutil.which(tool):
            return Finding(f"{tool} at {path}")
    return Finding(reason=f"NVIDIA Container Toolkit not found (no `nvidia` runtime in `docker info`, no nvidia-ctk "
                          f"on PATH) — install it: {TOOLKIT_INSTALL}, then "
                          "`sudo nvidia-ctk runtime configure --runtime=docker` and restart Docker")


def nvidia_toolkit_reason() -> str | None:
    return nvidia_toolkit().reason


# --- Cloud credentials (only where they come from is reported, never a value) ---------------

def _aws_source_without_botocore() -> str | None:
    if os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"):
        return "environment variables"
    if os.environ.get("AWS_WEB_IDENTITY_TOKEN_FILE") or os.environ.get("AWS_CONTAINER_CREDENTIALS_FULL_URI") \
            or os.environ.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        return "web identity / container role (environment)"
    profile = os.environ.get("AWS_PROFILE") or os.environ.get("AWS_DEFAULT_PROFILE") or "default"
    keys = ("aws_access_key_id", "sso_session", "sso_start_url", "role_arn", "credential_process")
    for var, default, sections in (("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials", [profile]),
                                   ("AWS_CONFIG_FILE", "~/.aws/config", [f"profile {profile}", profile])):
        path = Path(os.environ.get(var) or default).expanduser()
        parser = configparser.RawConfigParser()
        try:
            parser.read(path)
        except (configparser.Error, OSError, UnicodeDecodeError):
            continue
        if any(parser.has_option(s, k) for s in sections if parser.has_section(s) for k in keys):
            return f"profile {profile!r} in {path}"
    return None


@_cache
def aws_credentials() -> Finding:
    absent = Finding(reason="no AWS credentials (env vars, ~/.aws profile, SSO or instance role) — needed only for "
                            "the real-account steps: run `aws configure` or `aws sso login`; the emulator needs none")
    try:
        import botocore.session
    except ImportError:
        source = _aws_source_without_botocore()
        return Finding(f"present: {source}") if source else absent
    try:
        session = botocore.session.Session()
        credentials = session.get_credentials()
    except Exception as exc:  # noqa: BLE001 - the message may quote config; report only its kind
        return Finding(reason=f"AWS credentials configured but not loadable ({type(exc).__name__}) — "
                              "check with `aws sts get-caller-identity`")
    if credentials is None:
        return absent
    profile = f" (profile {session.profile!r})" if session.profile else ""
    return Finding(f"present: {credentials.method}{profile}")


def aws_credentials_reason() -> str | None:
    return aws_credentials().reason


@_cache
def cloud_sdks() -> Finding:
    """The optional `cloud` extra: lab 06 needs the Vertex AI SDK, lab 09 the billing budgets
    client (the AWS side is in the core)."""
    from importlib.metadata import PackageNotFoundError, version
    found = []
    for package, lab in (("google-cloud-aiplatform", "lab 06"), ("google-cloud-billing-budgets", "lab 09")):
        try:
            found.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            return Finding(reason=f"{package} is not installed — {lab} needs it: `make setup` installs it (or "
                                  "`pip install -e '.[cloud]'`)")
    return Finding(", ".join(found))


def cloud_sdks_reason() -> str | None:
    return cloud_sdks().reason


def _gcloud_config_dir() -> Path:
    if os.environ.get("CLOUDSDK_CONFIG"):
        return Path(os.environ["CLOUDSDK_CONFIG"])
    if sys.platform == "win32" and os.environ.get("APPDATA"):
        return Path(os.environ["APPDATA"]) / "gcloud"
    return Path("~/.config/gcloud").expanduser()


@_cache
def gcp_credentials() -> Finding:
    if env_path := os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
        path, source = Path(env_path).expanduser(), "GOOGLE_APPLICATION_CREDENTIALS"
        if not path.is_file():
            return Finding(reason=f"GOOGLE_APPLICATION_CREDENTIALS points to a missing file: {path}")
    else:
        path, source = _gcloud_config_dir() / "application_default_credentials.json", "gcloud ADC file"
        if not path.is_file():
            return Finding(reason="no GCP credentials (GOOGLE_APPLICATION_CREDENTIALS or gcloud ADC) — needed only "
                                  "for the real-project steps: run `gcloud auth application-default login`")
    try:
        kind_of = json.loads(path.read_text()).get("type", "unknown type")
    except (OSError, ValueError, AttributeError):
        return Finding(reason=f"{source} file {path} is not readable JSON — recreate it "
                              "(`gcloud auth application-default login` or a new service-account key)")
    return Finding(f"present: {source} {path} ({kind_of})")


def gcp_credentials_reason() -> str | None:
    return gcp_credentials().reason


# --- Disk space --------------------------------------------------------------------------

def _engine_is_local() -> bool:
    host = os.environ.get("DOCKER_HOST", "")
    return not host or host.startswith(("unix://", "npipe://"))


@_cache
def docker_disk_free() -> DiskFree | None:
    """Free space where the engine keeps images; None when the engine is unreachable or remote."""
    info = docker_info()
    if info is None or not _engine_is_local():
        return None
    if "Docker Desktop" in (info.get("OperatingSystem") or ""):
        # Images live on a VM disk stored under the user's home; its own size cap is set in Docker Desktop.
        path, where = str(Path.home()), f"{Path.home()} (holds Docker Desktop's VM disk)"
    else:
        path = where = info.get("DockerRootDir") or ""
    try:
        return DiskFree(shutil.disk_usage(path).free, where) if path else None
    except OSError:  # the data root is not visible from here (e.g. another machine or namespace)
        return None


def docker_disk_free_bytes() -> int | None:
    disk = docker_disk_free()
    return disk.free_bytes if disk else None


def vault() -> Finding:
    """A Vault server at VAULT_ADDR that answers its health endpoint, with VAULT_TOKEN set (not cached)."""
    addr = os.environ.get("VAULT_ADDR")
    if not addr:
        return Finding(reason="VAULT_ADDR is not set — the Vault steps need a Vault server: `vault server -dev` "
                              "locally (https://developer.hashicorp.com/vault/docs/concepts/dev-server), then export "
                              "VAULT_ADDR and VAULT_TOKEN")
    if not os.environ.get("VAULT_TOKEN"):
        return Finding(reason=f"VAULT_ADDR is {addr} but VAULT_TOKEN is not set — `vault login`, then export VAULT_TOKEN")
    try:
        # standbyok/uninitcode: any answer means a reachable server; sealed (503) is reported.
        with urllib.request.urlopen(f"{addr.rstrip('/')}/v1/sys/health?standbyok=true", timeout=3) as r:
            return Finding(f"Vault at {addr}") if r.status == 200 else \
                Finding(reason=f"Vault at {addr} answered HTTP {r.status}")
    except urllib.error.HTTPError as exc:
        return Finding(reason=f"Vault at {addr} is not ready (HTTP {exc.code}: sealed or not initialised) — "
                              "`vault operator unseal`")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return Finding(reason=f"no Vault server answers at {addr} ({getattr(exc, 'reason', exc)}) — start it or fix "
                              "VAULT_ADDR")


def vault_reason() -> str | None:
    """None when VAULT_ADDR is set and a Vault server answers its health endpoint, else why not."""
    return vault().reason
