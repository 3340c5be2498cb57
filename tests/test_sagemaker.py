"""labkit.sagemaker: the archive, the contract report on real containers (one that meets the
contract and one that does not), the start-up window, and moto answers taken from a container."""

from __future__ import annotations

import json
import shutil
import tarfile

import pytest

from labkit import contract, dockerlab, paths, probes, sagemaker, serving

LAB = "t5"
docker_only = pytest.mark.skipif(bool(probes.docker_reason()), reason=str(probes.docker_reason()))

SAGEMAKER_DOCKERFILE = """FROM python:3.11-slim
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY model_server/ model_server/
ENTRYPOINT ["python", "-m", "model_server"]
CMD ["serve"]
"""
# Starts by hand, but `serve` replaces its CMD and there is no ENTRYPOINT to receive it.
CMD_ONLY_DOCKERFILE = SAGEMAKER_DOCKERFILE.replace('ENTRYPOINT ["python", "-m", "model_server"]\n', "") \
    .replace('CMD ["serve"]', 'CMD ["python", "-m", "model_server", "http"]')
# Meets the contract on 8080, but with the port written into the image.
FIXED_PORT_DOCKERFILE = SAGEMAKER_DOCKERFILE.replace(
    'ENTRYPOINT ["python", "-m", "model_server"]',
    'ENTRYPOINT ["sh", "-c", "exec python -m model_server serve --port 8080", "--"]')
# Ignores the archive: its own model, pointed at by MODEL_DIR.
BAKED_DOCKERFILE = SAGEMAKER_DOCKERFILE.replace(
    "ENTRYPOINT", "RUN python -m model_server train --out /app/model\nENV MODEL_DIR=/app/model\nENTRYPOINT")


def test_package_model_puts_files_at_the_root(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.joblib").write_bytes(b"x")
    (tmp_path / "model" / "metadata.json").write_text("{}")
    tar = sagemaker.package_model(tmp_path / "model", tmp_path / "model.tar.gz")
    assert sorted(sagemaker.archive_members(tar)) == ["metadata.json", "model.joblib"]
    unpacked = sagemaker.unpack(tar, tmp_path / "opt-ml-model")
    assert (unpacked / "model.joblib").read_bytes() == b"x"


def test_unpack_refuses_paths_that_leave_the_folder(tmp_path):
    evil = tmp_path / "evil.tar.gz"
    (tmp_path / "x").write_text("x")
    with tarfile.open(evil, "w:gz") as tar:
        tar.add(tmp_path / "x", arcname="../escaped")
    with pytest.raises(tarfile.TarError):
        sagemaker.unpack(evil, tmp_path / "dest")
    assert not (tmp_path / "escaped").exists()


def test_startup_window_defaults_to_sagemakers():
    assert sagemaker.startup_timeout({"VariantName": "a"}) == sagemaker.DEFAULT_STARTUP_S
    assert sagemaker.startup_timeout({"ContainerStartupHealthCheckTimeoutInSeconds": 90}) == 90


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Three images of the app (contract met, CMD only, model baked in) and a model archive."""
    work = tmp_path_factory.mktemp("sagemaker")
    context = work / "app"
    shutil.copytree(paths.APP, context, ignore=shutil.ignore_patterns("Dockerfile*", ".dockerignore", "tests"))
    built = {}
    for name, text in (("good", SAGEMAKER_DOCKERFILE), ("cmd-only", CMD_ONLY_DOCKERFILE),
                       ("baked", BAKED_DOCKERFILE), ("fixed-port", FIXED_PORT_DOCKERFILE)):
        (context / f"Dockerfile.{name}").write_text(text)
        built[name] = f"labkit/{LAB}-{name}:v1"
        dockerlab.build(context, built[name], lab=LAB, dockerfile=f"Dockerfile.{name}", show=False)
    model = serving.train(built["good"], work / "model", lab=LAB)
    built["tar"] = sagemaker.package_model(model, work / "model.tar.gz")
    yield built
    dockerlab.cleanup(LAB, show=False)
    dockerlab.remove_images(LAB, show=False)


@docker_only
@pytest.mark.docker
def test_contract_report_passes_an_image_that_meets_it(images):
    report = sagemaker.contract_report(images["good"], images["tar"], lab=LAB)
    assert not contract.failed(report), contract.failed(report)
    assert len(report) == 10


@docker_only
@pytest.mark.docker
def test_contract_report_names_what_a_cmd_only_image_gets_wrong(images):
    report = sagemaker.contract_report(images["cmd-only"], images["tar"], lab=LAB, startup_s=10)
    assert [r.passed for r in report] == [False]
    assert "ENTRYPOINT" in report[0].detail and "serve" in report[0].detail


@docker_only
@pytest.mark.docker
def test_contract_report_sees_a_baked_model_ignore_the_archive(images):
    report = {r.name: r for r in sagemaker.contract_report(images["baked"], images["tar"], lab=LAB)}
    assert not report["serves the model from model.tar.gz"].passed
    assert report["POST /invocations (JSON) predicts"].passed


@docker_only
@pytest.mark.docker
def test_contract_report_sees_a_port_written_into_the_image(images):
    report = {r.name: r for r in sagemaker.contract_report(images["fixed-port"], images["tar"], lab=LAB,
                                                           startup_s=10)}
    assert report["POST /invocations (JSON) predicts"].passed
    assert not report["listens on SAGEMAKER_BIND_TO_PORT"].passed


@docker_only
@pytest.mark.docker
def test_host_locally_fails_a_window_shorter_than_the_start_up(images):
    variant = {"VariantName": "slow", "ContainerStartupHealthCheckTimeoutInSeconds": 3}
    hosted = sagemaker.host_locally(images["good"], images["tar"], variant, lab=LAB,
                                    environment={"MODEL_LOAD_DELAY_S": "5"}, observe_s=15, show=False)
    assert hosted.status == "Failed" and "did not pass the ping health check" in hosted.reason
    assert hosted.healthy_after and hosted.healthy_after > 3  # it did become healthy, too late
    assert any(p.reply.status == 503 for p in hosted.timeline), "the ping answered 503 while loading"
    wider = dict(variant, ContainerStartupHealthCheckTimeoutInSeconds=30)
    assert sagemaker.host_locally(images["good"], images["tar"], wider, lab=LAB,
                                  environment={"MODEL_LOAD_DELAY_S": "5"}, show=False).status == "InService"
    assert not dockerlab.client().containers.list(all=True, filters={"label": f"labkit.lab={LAB}"})


@docker_only
@pytest.mark.docker
def test_an_instance_too_small_for_the_model_is_killed_and_probing_stops(images):
    hosted = sagemaker.host_locally(images["good"], images["tar"], {"VariantName": "tight"}, lab=LAB,
                                    observe_s=60, memory_mb=40, show=False)
    assert hosted.status == "Failed" and hosted.oom_killed and "OOMKilled" in hosted.reason
    assert hosted.healthy_after is None and hosted.memory_mb is None
    assert hosted.timeline[-1].at < 30, "probing went on after the server's process had ended"
    assert not dockerlab.client().containers.list(all=True, filters={"label": f"labkit.lab={LAB}"})


@docker_only
@pytest.mark.docker
def test_a_request_that_finds_no_instance_waits_for_the_start(images):
    cold = sagemaker.cold_and_warm(images["good"], images["tar"], lab=LAB, requests=5,
                                   environment={"MODEL_LOAD_DELAY_S": "3"})
    assert cold.cold_s > 3, "the first request was answered before the model could have loaded"
    assert len(cold.warm_ms) == 5 and cold.warm_median_ms < 1000 < cold.cold_s * 1000
    assert not dockerlab.client().containers.list(all=True, filters={"label": f"labkit.lab={LAB}"})


@docker_only
@pytest.mark.docker
def test_moto_returns_the_containers_real_answers(images, moto):
    container = sagemaker.run_like_sagemaker(images["good"], images["tar"], lab=LAB)
    try:
        port = dockerlab.host_port(container, sagemaker.PORT)
        assert contract.first_ok(contract.poll(port, "/ping", until=30)) is not None
        body = json.dumps({"instances": serving.IRIS_ROWS}).encode()
        sagemaker.seed_from_container(moto.url, port, [body], variant="current")
        answer = moto.client("sagemaker-runtime").invoke_endpoint(
            EndpointName="any", Body=body, ContentType="application/json")
        assert json.loads(answer["Body"].read())["predictions"] == serving.IRIS_CLASSES
        assert answer["InvokedProductionVariant"] == "current"
    finally:
        container.remove(force=True)

