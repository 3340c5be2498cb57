"""Lab 04's reference files (environments/gpu) and the offline readers its checks use: the
Dockerfile's targets, the compose file's schema and GPU reservation, the Kubernetes GPU limits.
One docker test builds the cpu target and runs it: without a GPU it must serve on the CPU and say so."""

from __future__ import annotations

import re
import shutil

import pytest
import requests
import yaml

from labkit import compose, dockerlab, k8s, paths, probes
from labkit.core.errors import RequirementNotMet
from labkit.tools import dockerfile, lint

GPU = paths.ENVIRONMENTS / "gpu"
DOCKERFILE = GPU / "Dockerfile"


# ---------------------------------------------------------------- the Dockerfile

def test_the_cpu_target_comes_before_the_gpu_stages_and_the_gpu_target_extends_it():
    assert [(s.name, s.base) for s in dockerfile.stages(DOCKERFILE)] == [
        ("builder", "python:3.11"), ("cpu", "python:3.11-slim"), ("gpu-libs", "python:3.11"), ("gpu", "cpu")]
    assert dockerfile.base_chain(DOCKERFILE, "cpu") == ["python:3.11-slim"]
    assert dockerfile.base_chain(DOCKERFILE, "gpu") == ["cpu", "python:3.11-slim"]  # a runtime, not a devel image
    assert dockerfile.stage_user(DOCKERFILE, "cpu") == dockerfile.stage_user(DOCKERFILE, "gpu") == "10001"
    assert dockerfile.stage_env(DOCKERFILE, "cpu") == {"MODEL_DEVICE": "auto"}
    assert dockerfile.stage_env(DOCKERFILE, "gpu") == {
        "MODEL_DEVICE": "auto", "NVIDIA_VISIBLE_DEVICES": "all", "NVIDIA_DRIVER_CAPABILITIES": "compute,utility",
        "CUDA_VERSION": "12.9", "NVIDIA_REQUIRE_CUDA": "cuda>=12.0"}
    assert lint.hadolint(DOCKERFILE) == []


def test_the_cpu_target_is_lab_01s_final_image_plus_model_device():
    """The stages repeat lab 01's Dockerfile (a Dockerfile cannot include another): held equal here."""
    lab01 = dockerfile.stages(paths.APP / "Dockerfile")
    builder, cpu = dockerfile.stages(DOCKERFILE)[:2]
    assert [c.original for c in builder.instructions] == [c.original for c in lab01[0].instructions]
    assert [c.original for c in cpu.instructions if c.cmd != "ENV"] == \
        [c.original.replace("USER app", "USER 10001") for c in lab01[1].instructions]


def test_gpu_requirements_are_pinned_and_match_the_cuda_version_the_image_states():
    lines = [line.split("#")[0].strip() for line in (GPU / "requirements-gpu.txt").read_text().splitlines()]
    pins = dict(line.split("==") for line in lines if line)  # every line NAME==VERSION: installed --no-deps
    assert set(pins) >= {"cupy-cuda12x", "nvidia-cuda-nvrtc-cu12", "nvidia-cublas-cu12", "nvidia-cuda-runtime-cu12"}
    cuda = dockerfile.stage_env(DOCKERFILE, "gpu")["CUDA_VERSION"]
    assert all(pins[name].startswith(cuda + ".") for name in ("nvidia-cuda-runtime-cu12", "nvidia-cuda-nvrtc-cu12"))


def test_the_reader_follows_stages_and_says_what_is_wrong(tmp_path):
    path = tmp_path / "Dockerfile"
    path.write_text('ARG PY=3.11\nfrom python:${PY} as Base\nENV A=1 B="two words"\nUSER 1000\n'
                    "FROM base AS mid\nENV A 2\nFROM --platform=linux/amd64 mid AS top\nUSER app\nFROM python:3.11\n")
    assert [s.name for s in dockerfile.stages(path)] == ["Base", "mid", "top", None]
    assert dockerfile.base_chain(path, "top") == ["mid", "base", "python:${PY}"]
    assert dockerfile.stage_env(path, "top") == {"A": "2", "B": "two words"}
    assert (dockerfile.stage_user(path, "top"), dockerfile.stage_user(path, "BASE")) == ("app", "1000")
    with pytest.raises(RequirementNotMet, match=r"has no stage named 'gpu' \(it has \['base', 'mid', 'top'\]\): "
                                                r"name one with `FROM image AS gpu`"):
        dockerfile.base_chain(path, "gpu")
    for text, says in [("FROM x\nRUN <<EOF\n", "does not parse: unterminated heredoc"),
                       ("FROM x\nRUNN pip install\n", "line 2: unknown instruction 'RUNN'"),
                       ("ENV A=1\nFROM x\n", "line 1: ENV before the first FROM"),
                       ("# nothing yet\n", "does not parse: file with no instructions")]:
        path.write_text(text)
        with pytest.raises(RequirementNotMet, match=says):
            dockerfile.stages(path)
    with pytest.raises(RequirementNotMet, match="does not exist"):
        dockerfile.stages(tmp_path / "missing")


# ---------------------------------------------------------------- compose

def test_the_compose_file_is_valid_and_only_app_gpu_reserves_gpus():
    assert compose.schema_problems(GPU / "compose.yaml") == []
    doc = yaml.safe_load((GPU / "compose.yaml").read_text())
    assert compose.gpu_reservation_problems(doc, "app-gpu") == []
    assert doc["services"]["app-gpu"]["profiles"] == ["gpu"] and "profiles" not in doc["services"]["app"]
    assert compose.gpu_reservation_problems(doc, "app") == [
        "service app asks for no GPU: add deploy.resources.reservations.devices"]


def test_the_schema_check_names_the_key_that_is_wrong(tmp_path):
    doc = yaml.safe_load((GPU / "compose.yaml").read_text())
    device = doc["services"]["app-gpu"]["deploy"]["resources"]["reservations"]["devices"][0]
    device["gpus"] = device.pop("capabilities")
    doc["services"]["app"]["helthcheck"] = doc["services"]["app"].pop("healthcheck")
    doc["services"]["app"]["ports"] = 8080
    (tmp_path / "compose.yaml").write_text(yaml.safe_dump(doc))
    where = "services.app-gpu.deploy.resources.reservations.devices.0"
    assert compose.schema_problems(tmp_path / "compose.yaml") == [
        "services.app: unknown key(s) 'helthcheck': check the spelling and the indentation",  # not 'build', 'ports'
        "services.app.ports: 8080 is not of type 'array'",
        f"{where}: unknown key(s) 'gpus': check the spelling and the indentation; the keys allowed here are "
        "capabilities, count, device_ids, driver, options",
        f"{where}: 'capabilities' is a required property"]
    (tmp_path / "compose.yaml").write_text("services: [app\n")
    assert compose.schema_problems(tmp_path / "compose.yaml")[0].startswith(f"{tmp_path}/compose.yaml is not valid YAML")


@pytest.mark.parametrize("service, says", [
    ({"runtime": "nvidia"}, r"`runtime: nvidia` only picks a container runtime \(nvidia: the legacy one"),
    ({"gpus": "all"}, "`gpus:` is read only by recent Compose releases"),
    ({"devices": ["/dev/nvidia0"]}, "the service's own `devices:` maps device files"),
    ({"deploy": {"resources": {"limits": {"devices": [{"capabilities": ["gpu"]}]}}}},
     "devices go under reservations, not limits"),
    ({"deploy": {"resources": {"reservations": {"devices": [{"driver": "nvidia", "count": 1}]}}}},
     r"capabilities None lack gpu: set capabilities: \[gpu\]"),
    ({"deploy": {"resources": {"reservations": {"devices": [{"capabilities": ["gpu"], "count": 1}]}}}},
     "no driver: set driver: nvidia"),
    ({"deploy": {"resources": {"reservations": {"devices": [{"driver": "nvidia", "capabilities": ["gpu"],
                                                            "count": 0}]}}}}, "say how many GPUs: count: 1"),
    ({"deploy": {"resources": {"reservations": {"devices": [{"driver": "nvidia", "capabilities": ["gpu"],
                                                            "count": 1, "device_ids": ["0"]}]}}}},
     "count and device_ids together"),
])
def test_a_wrong_gpu_request_in_compose_is_explained(service, says):
    problems = compose.gpu_reservation_problems({"services": {"app-gpu": {"image": "x", **service}}}, "app-gpu")
    assert len(problems) == 1 and problems[0].startswith("service app-gpu")
    assert re.search(says, problems[0]), problems


def test_a_gpu_request_by_device_id_passes_and_a_missing_service_is_named():
    devices = [{"driver": "nvidia", "capabilities": ["gpu", "utility"], "device_ids": ["0", "1"]}]
    doc = {"services": {"g": {"deploy": {"resources": {"reservations": {"devices": devices}}}}}}
    assert compose.gpu_reservation_problems(doc, "g") == []
    assert compose.gpu_reservation_problems(doc, "app-gpu") == ["there is no service 'app-gpu' under services:"]


# ---------------------------------------------------------------- Kubernetes

def manifest() -> list[dict]:
    return k8s.load(GPU / "k8s" / "deployment.yaml")


def resources(docs: list[dict]) -> dict:
    return k8s.workload(docs)["spec"]["template"]["spec"]["containers"][0]["resources"]


def test_the_gpu_manifest_is_valid_linted_and_asks_for_one_whole_gpu():
    docs = manifest()
    assert k8s.validate(docs) == [] and k8s.lint(docs) == [] and k8s.gpu_limit_problems(docs) == []
    assert resources(docs)["limits"]["nvidia.com/gpu"] == 1 and "nvidia.com/gpu" not in resources(docs)["requests"]
    spec = k8s.workload(docs)["spec"]["template"]["spec"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    assert not k8s.image_problems(spec["containers"][0]["image"])


@pytest.mark.parametrize("change, says", [
    (lambda r: r["requests"].update({"nvidia.com/gpu": r["limits"].pop("nvidia.com/gpu")}),
     "nvidia.com/gpu in requests only: put it in resources.limits"),
    (lambda r: r["limits"].update({"nvidia.com/gpu": "500m"}), "'500m': GPUs are not shared, ask for a whole number"),
    (lambda r: r["limits"].update({"nvidia.com/gpu": 0}), "0: GPUs are not shared"),
    (lambda r: r["requests"].update({"nvidia.com/gpu": 2}), r"requests nvidia.com/gpu \(2\) differs from its limit"),
    (lambda r: r["limits"].update({"nvidia/gpu": r["limits"].pop("nvidia.com/gpu")}),
     "nvidia/gpu is not NVIDIA's GPU resource: it is nvidia.com/gpu"),
    (lambda r: r["limits"].pop("nvidia.com/gpu"), "asks for a GPU: add resources.limits nvidia.com/gpu: 1"),
])
def test_a_wrong_gpu_limit_is_explained(change, says):
    docs = manifest()
    change(resources(docs))
    problems = k8s.gpu_limit_problems(docs)
    assert len(problems) == 1 and re.search(says, problems[0]), problems
    assert problems[0].startswith(("Deployment/model-server-gpu container model-server", "no container of"))


def test_a_misplaced_gpu_field_fails_strict_validation_and_no_deployment_is_named():
    docs = manifest()
    spec = k8s.workload(docs)["spec"]["template"]["spec"]
    spec["containers"][0]["gpus"] = 1
    assert any("gpus" in p for p in k8s.validate(docs))
    assert k8s.gpu_limit_problems([d for d in docs if d["kind"] == "Service"]) == ["no Deployment in the manifests"]


def test_unschedulable_reason_is_the_newest_failed_scheduling_message_of_the_selected_pods(monkeypatch):
    def event(pod: str, at: str, message: str) -> dict:
        return {"involvedObject": {"kind": "Pod", "name": pod}, "lastTimestamp": at, "message": message}

    asked = []
    monkeypatch.setattr(k8s, "pods", lambda selector, **kw: [{"metadata": {"name": "gpu-1"}}])
    monkeypatch.setattr(k8s, "kubectl_json", lambda *args, **kw: asked.append(args) or {"items": [
        event("gpu-1", "2026-12-04T10:00:05Z", "0/1 nodes are available: 1 Insufficient nvidia.com/gpu."),
        event("gpu-1", "2026-12-04T10:00:00Z", "0/1 nodes are available: 1 node(s) had untolerated taint."),
        event("other-1", "2026-12-04T10:00:09Z", "0/1 nodes are available: 1 Insufficient memory.")]})
    assert k8s.unschedulable_reason("app=gpu") == "0/1 nodes are available: 1 Insufficient nvidia.com/gpu."
    assert "--field-selector" in asked[0] and "reason=FailedScheduling" in asked[0]
    monkeypatch.setattr(k8s, "pods", lambda selector, **kw: [])
    assert k8s.unschedulable_reason("app=gpu") is None


# ---------------------------------------------------------------- the cpu target, built and run

@pytest.mark.docker
@pytest.mark.skipif(bool(probes.docker_reason()), reason=str(probes.docker_reason()))
def test_the_cpu_target_builds_runs_non_root_and_falls_back_to_the_cpu(tmp_path):
    context = tmp_path / "app"
    shutil.copytree(paths.APP / "model_server", context / "model_server",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for source in (paths.APP / "requirements.txt", DOCKERFILE, GPU / "requirements-gpu.txt"):
        shutil.copy(source, context)
    tag = "labkit/04-test-gpu-cpu:v1"
    image = dockerlab.build(context, tag, lab="04", target="cpu", show=False)
    try:
        assert image.attrs["Config"]["User"] == "10001"
        with dockerlab.running(tag, lab="04", ports={8080: None}) as container:
            dockerlab.wait_healthy(container, timeout=90, show=False)
            assert container.exec_run(["id", "-u"]).output.decode().strip() == "10001"
            url = f"http://127.0.0.1:{dockerlab.host_port(container, 8080)}"
            answer = requests.post(f"{url}/predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]]}, timeout=10)
            assert answer.json()["predictions"] == ["setosa"]
            assert requests.get(f"{url}/version", timeout=10).json()["device"] == "cpu"
            logs = container.logs().decode(errors="replace")
            assert "no GPU: CuPy is not installed (a CPU-only image); predicting on the CPU" in logs
    finally:
        dockerlab.client().images.remove(tag, force=True)
