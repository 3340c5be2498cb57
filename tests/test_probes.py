"""Each probe, both ways: the capability present and absent (simulated with fake tools and modules)."""
import json
import shutil
import sys
import types

import pynvml
import pytest

from labkit import probes
from labkit.core import engine


@pytest.fixture(autouse=True)
def fresh_probes():
    probes.refresh()
    yield
    probes.refresh()


@pytest.fixture
def bin_dir(tmp_path, monkeypatch):
    """An empty folder that is the whole PATH; `tool(name, script)` puts a fake command in it."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    return folder


def tool(folder, name, body):
    path = folder / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return str(path)


# --- Docker engine ---------------------------------------------------------------------------

def test_docker_reachable_gives_no_reason():
    if probes.docker_info() is None:
        pytest.skip("no Docker engine here")
    assert probes.docker_reason() is None
    assert "Docker Engine" in probes.docker_engine().found


def test_dead_socket_says_how_to_start_the_engine(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/dead.sock")
    reason = probes.docker_reason()
    assert "not reachable" in reason and "start it" in reason and "dead.sock" in reason
    assert probes.docker_info() is None


def test_permission_denied_suggests_docker_group(monkeypatch):
    def refuse(timeout):
        try:
            raise PermissionError(13, "Permission denied")
        except PermissionError as exc:
            raise RuntimeError("Error while fetching server API version") from exc
    monkeypatch.setattr(engine, "docker_client", refuse)
    assert "usermod -aG docker" in probes.docker_reason()


# --- BuildKit --------------------------------------------------------------------------------

def test_buildx_plugin_is_used_when_it_works(bin_dir):
    client = tool(bin_dir, "docker", '[ "$1" = buildx ] && echo "github.com/docker/buildx v0.14.0" && exit 0; exit 1')
    command = probes.buildkit_command()
    assert command.argv == [client, "buildx", "build"] and command.env == {}
    assert command.found == f"{client} buildx (github.com/docker/buildx v0.14.0)"
    assert probes.buildkit_reason() is None


def test_new_client_without_buildx_has_no_buildkit(bin_dir):
    tool(bin_dir, "docker", '[ "$1" = --version ] && echo "Docker version 28.2.2, build e6534b4" && exit 0; exit 1')
    assert probes.buildkit_command() is None
    assert "28.2.2 (no buildx)" in probes.buildkit_reason() and "docs.docker.com/go/buildx" in probes.buildkit_reason()


def test_old_client_builds_with_docker_buildkit_env(bin_dir, monkeypatch):
    monkeypatch.setattr(probes, "docker_reason", lambda: None)
    client = tool(bin_dir, "docker", """
case "$1" in --version) echo "Docker version 20.10.24+dfsg1, build 297e128"; exit 0;; esac
[ "$1" = build ] && [ "$DOCKER_BUILDKIT" = 1 ] && exit 0
exit 1""")
    command = probes.buildkit_command()
    assert command.argv == [client, "build"] and command.env == {"DOCKER_BUILDKIT": "1"}


def test_old_client_with_failing_trial_build(bin_dir, monkeypatch):
    monkeypatch.setattr(probes, "docker_reason", lambda: None)
    tool(bin_dir, "docker", '[ "$1" = --version ] && echo "Docker version 20.10.24, build x" && exit 0; exit 1')
    assert "DOCKER_BUILDKIT=1 build failed" in probes.buildkit_reason()


def test_old_client_needs_the_engine_to_be_tried(bin_dir, monkeypatch):
    monkeypatch.setattr(probes, "docker_reason", lambda: "engine down")
    tool(bin_dir, "docker", '[ "$1" = --version ] && echo "Docker version 20.10.24, build x" && exit 0; exit 1')
    assert "start the engine first" in probes.buildkit_reason()


def test_no_docker_client_at_all(bin_dir):
    assert "no docker client on PATH" in probes.buildkit_reason()


# --- Compose -------------------------------------------------------------------------------

def test_compose_v2_plugin_preferred(bin_dir):
    tool(bin_dir, "docker", '[ "$1 $2" = "compose version" ] && echo 2.27.0 && exit 0; exit 1')
    tool(bin_dir, "docker-compose", "echo 1.29.2")
    assert probes.compose_command() == ["docker", "compose"]
    assert probes.compose().found == "docker compose 2.27.0 (v2 plugin)"


def test_compose_v1_fallback(bin_dir):
    tool(bin_dir, "docker", "exit 1")
    tool(bin_dir, "docker-compose", "echo 1.29.2")
    assert probes.compose_command() == ["docker-compose"]
    assert probes.compose_reason() is None


def test_no_compose(bin_dir):
    assert probes.compose_command() is None
    assert "docs.docker.com/compose/install" in probes.compose_reason()


# --- kind and kubectl ------------------------------------------------------------------------

def test_kind_absent(bin_dir):
    assert probes.kind_reason() == ("kind not found on PATH — install it: "
                                    "https://kind.sigs.k8s.io/docs/user/quick-start/#installation")


def test_kind_present(bin_dir):
    tool(bin_dir, "kind", 'echo "kind v0.23.0 go1.22.2 linux/amd64"')
    assert probes.kind_reason() is None and probes.kind().found == "kind v0.23.0"


def test_kind_broken(bin_dir):
    tool(bin_dir, "kind", "exit 3")
    assert "`kind version` failed" in probes.kind_reason()


def test_kubectl_absent(bin_dir):
    assert "kubernetes.io/docs/tasks/tools" in probes.kubectl_reason()


def test_kubectl_present(bin_dir):
    tool(bin_dir, "kubectl", """echo '{"clientVersion": {"gitVersion": "v1.31.0"}}'""")
    assert probes.kubectl_reason() is None and probes.kubectl().found == "kubectl v1.31.0"


# --- GPU -------------------------------------------------------------------------------------

def test_no_nvidia_driver(monkeypatch):
    def no_library():
        raise pynvml.NVMLError_LibraryNotFound(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
    monkeypatch.setattr(pynvml, "nvmlInit", no_library)
    assert probes.gpu_reason().startswith("NVML not found: no NVIDIA driver on this machine")
    assert probes.gpu_info() is None


def test_gpu_present(monkeypatch):
    fake = {
        "nvmlInit": lambda: None, "nvmlShutdown": lambda: None,
        "nvmlSystemGetDriverVersion": lambda: "550.54.15", "nvmlSystemGetCudaDriverVersion": lambda: 12040,
        "nvmlDeviceGetCount": lambda: 1, "nvmlDeviceGetHandleByIndex": lambda i: i,
        "nvmlDeviceGetName": lambda h: b"NVIDIA H200",
        "nvmlDeviceGetMemoryInfo": lambda h: types.SimpleNamespace(total=141 * 2**30),
    }
    for name, value in fake.items():
        monkeypatch.setattr(pynvml, name, value)
    assert probes.gpu_info() == probes.GpuInfo("550.54.15", "12.4", (probes.Gpu("NVIDIA H200", 141 * 2**30),))
    assert probes.gpu_reason() is None
    assert probes.gpu().found == "NVIDIA H200 (141 GiB); driver 550.54.15, CUDA 12.4"


def test_gpu_probe_without_nvidia_ml_py(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    assert "pip install nvidia-ml-py" in probes.gpu_reason()


def test_toolkit_runtime_registered(monkeypatch, bin_dir):
    runtimes = {"runc": {}, "nvidia": {"path": "nvidia-container-runtime"}}
    monkeypatch.setattr(probes, "docker_info", lambda: {"Runtimes": runtimes})
    assert probes.nvidia_toolkit_reason() is None


def test_toolkit_cli_on_path(monkeypatch, bin_dir):
    monkeypatch.setattr(probes, "docker_info", lambda: {"Runtimes": {"runc": {}}})
    ctk = tool(bin_dir, "nvidia-ctk", "exit 0")
    assert probes.nvidia_toolkit().found == f"nvidia-ctk at {ctk}"


def test_toolkit_absent(monkeypatch, bin_dir):
    monkeypatch.setattr(probes, "docker_info", lambda: None)
    assert "nvidia-ctk runtime configure" in probes.nvidia_toolkit_reason()


# --- Cloud credentials -----------------------------------------------------------------------

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRET"


@pytest.fixture
def clean_cloud_env(monkeypatch, tmp_path):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
                "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


@pytest.fixture
def no_botocore(monkeypatch):
    monkeypatch.setitem(sys.modules, "botocore", None)
    monkeypatch.setitem(sys.modules, "botocore.session", None)


def shown(finding):
    return f"{finding.found} {finding.reason}"


def test_aws_absent(clean_cloud_env, no_botocore):
    assert "aws configure" in probes.aws_credentials_reason()


def test_aws_env_vars_without_botocore(clean_cloud_env, no_botocore, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    assert probes.aws_credentials_reason() is None
    assert SECRET not in shown(probes.aws_credentials()) and "AKIA" not in shown(probes.aws_credentials())


def test_aws_profile_file_without_botocore(clean_cloud_env, no_botocore, monkeypatch):
    (clean_cloud_env / ".aws").mkdir()
    (clean_cloud_env / ".aws" / "credentials").write_text(
        f"[lab]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = {SECRET}\n")
    assert probes.aws_credentials_reason() is not None  # the default profile has nothing
    probes.refresh()
    monkeypatch.setenv("AWS_PROFILE", "lab")
    assert probes.aws_credentials_reason() is None
    assert SECRET not in shown(probes.aws_credentials())


def test_aws_sso_profile_in_config_without_botocore(clean_cloud_env, no_botocore, monkeypatch):
    (clean_cloud_env / ".aws").mkdir()
    (clean_cloud_env / ".aws" / "config").write_text("[profile dev]\nsso_session = corp\nregion = eu-west-1\n")
    monkeypatch.setenv("AWS_PROFILE", "dev")
    assert probes.aws_credentials_reason() is None


def fake_botocore(monkeypatch, session_class):
    package = types.ModuleType("botocore")
    package.session = types.SimpleNamespace(Session=session_class)
    monkeypatch.setitem(sys.modules, "botocore", package)
    monkeypatch.setitem(sys.modules, "botocore.session", package.session)


def test_aws_with_botocore(monkeypatch):
    class Session:
        profile = None

        def get_credentials(self):
            return types.SimpleNamespace(method="shared-credentials-file", secret_key=SECRET)
    fake_botocore(monkeypatch, Session)
    assert probes.aws_credentials().found == "present: shared-credentials-file"


def test_aws_botocore_error_hides_its_message(monkeypatch):
    class Session:
        profile = "lab"

        def get_credentials(self):
            raise ValueError(f"credential_process printed {SECRET}")
    fake_botocore(monkeypatch, Session)
    reason = probes.aws_credentials_reason()
    assert "ValueError" in reason and SECRET not in reason


def test_aws_botocore_finds_nothing(monkeypatch):
    fake_botocore(monkeypatch, type("Session", (), {"profile": None, "get_credentials": lambda self: None}))
    assert "aws configure" in probes.aws_credentials_reason()


def test_gcp_absent(clean_cloud_env):
    assert "gcloud auth application-default login" in probes.gcp_credentials_reason()


def test_gcp_key_file(clean_cloud_env, monkeypatch):
    key = clean_cloud_env / "key.json"
    key.write_text(json.dumps({"type": "service_account", "private_key": SECRET}))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    finding = probes.gcp_credentials()
    assert finding.reason is None and "service_account" in finding.found and SECRET not in finding.found


def test_gcp_key_file_missing(clean_cloud_env, monkeypatch):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(clean_cloud_env / "gone.json"))
    assert "missing file" in probes.gcp_credentials_reason()


def test_gcp_adc_file(clean_cloud_env, monkeypatch):
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(clean_cloud_env / "gcloud"))
    (clean_cloud_env / "gcloud").mkdir()
    (clean_cloud_env / "gcloud" / "application_default_credentials.json").write_text(
        json.dumps({"type": "authorized_user", "refresh_token": SECRET}))
    assert probes.gcp_credentials_reason() is None and SECRET not in probes.gcp_credentials().found


def test_gcp_adc_file_garbled(clean_cloud_env):
    (clean_cloud_env / ".config" / "gcloud").mkdir(parents=True)
    (clean_cloud_env / ".config" / "gcloud" / "application_default_credentials.json").write_text("{not json")
    assert "not readable JSON" in probes.gcp_credentials_reason()


# --- Disk space ------------------------------------------------------------------------------

def test_disk_free_under_data_root(monkeypatch, tmp_path):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr(probes, "docker_info", lambda: {"DockerRootDir": str(tmp_path), "OperatingSystem": "Debian"})
    disk = probes.docker_disk_free()
    assert disk.where == str(tmp_path)
    assert abs(disk.free_bytes - shutil.disk_usage(tmp_path).free) < 2**30
    assert probes.docker_disk_free_bytes() == disk.free_bytes


def test_disk_free_docker_desktop_measures_home(monkeypatch, tmp_path):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    info = {"DockerRootDir": "/var/lib/docker", "OperatingSystem": "Docker Desktop"}
    monkeypatch.setattr(probes, "docker_info", lambda: info)
    assert "Docker Desktop" in probes.docker_disk_free().where


@pytest.mark.parametrize("info, host", [
    (None, None),                                                          # engine unreachable
    ({"DockerRootDir": "/no/such/dir", "OperatingSystem": "Debian"}, None),  # data root not visible here
    ({"DockerRootDir": "/", "OperatingSystem": "Debian"}, "tcp://10.0.0.5:2376"),  # remote engine
])
def test_disk_free_unknown(monkeypatch, info, host):
    if host:
        monkeypatch.setenv("DOCKER_HOST", host)
    else:
        monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr(probes, "docker_info", lambda: info)
    assert probes.docker_disk_free_bytes() is None


# --- Caching ---------------------------------------------------------------------------------

def test_results_are_cached_until_refresh(bin_dir):
    assert probes.kind_reason() is not None
    tool(bin_dir, "kind", 'echo "kind v0.23.0 go1.22.2 linux/amd64"')
    assert probes.kind_reason() is not None  # cached
    probes.refresh()
    assert probes.kind_reason() is None


def test_cloud_sdks_probe_names_the_fix_when_the_extra_is_missing(monkeypatch):
    import importlib.metadata

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    probes.refresh()
    with monkeypatch.context() as patch:
        patch.setattr(importlib.metadata, "version", missing)
        assert "make setup" in probes.cloud_sdks_reason()
    probes.refresh()
    assert probes.cloud_sdks_reason() is None  # installed here by `make setup`
