"""Lab 06's Vertex side for real: the aiplatform SDK against the stand-in with real containers,
the serving-contract report, the SDK's local endpoint, and the emulator/real-project target."""

import io
import json
import shutil
import tarfile
import types

import pytest

from labkit import contract, dockerlab, paths, probes, serving, spend, vertex
from labkit.core.labels import VERTEX_DEPLOYED_MODEL

LAB = "t6"
APP = f"labkit/{LAB}-app:v1"
needs_docker = pytest.mark.skipif(bool(probes.docker_reason()), reason=str(probes.docker_reason()))


@pytest.fixture(scope="module")
def app_image():
    dockerlab.build(paths.APP, APP, lab=LAB, show=False)
    yield APP
    dockerlab.cleanup(LAB, show=False)
    dockerlab.remove_images(LAB, show=False)


@pytest.fixture(scope="module")
def model_dir(app_image, tmp_path_factory):
    """The image's trained model, copied out: a local artifact directory."""
    out = tmp_path_factory.mktemp("artifacts")
    container = dockerlab.client().containers.create(app_image, command=["true"], labels=dockerlab.labels(LAB))
    try:
        stream, _ = container.get_archive("/opt/ml/model")
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            tar.extractall(out, filter="data")
    finally:
        container.remove(force=True)
    for path in [out, *out.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)  # the container's user 10001 reads the mount
    return out / "model"


@pytest.fixture(scope="module")
def standin():
    server = vertex.start_standin(LAB, show=False)
    yield server
    server.stop()


def lab_containers() -> list:
    return dockerlab.client().containers.list(all=True, filters={"label": f"{dockerlab.LABEL}={LAB}"})


def upload(aiplatform, version: str, labels: dict, **kwargs):
    return aiplatform.Model.upload(
        display_name=f"iris-{version}", serving_container_image_uri=APP, serving_container_predict_route="/predict",
        serving_container_health_route="/health", serving_container_ports=[7080],
        serving_container_environment_variables={"APP_VERSION": version}, labels=labels, **kwargs)


@pytest.mark.docker
@needs_docker
@pytest.mark.usefixtures("app_image")
def test_the_sdk_deploys_splits_predicts_and_cleans_up_on_the_standin(standin, model_dir):
    from google.api_core import exceptions
    from google.cloud import aiplatform
    standin.init_sdk()
    labels = spend.resource_tags(LAB, spend.run_id())
    a = upload(aiplatform, "a", labels, artifact_uri=str(model_dir))  # a local directory: mounted, not staged
    b = upload(aiplatform, "b", labels, parent_model=a.resource_name)  # version 2 of the same model
    assert a.uri == str(model_dir.resolve()) and (a.version_id, b.version_id) == ("1", "2")
    assert b.resource_name == a.resource_name and "default" in b.version_aliases
    listed = aiplatform.Model.list(filter=f'labels.labkit-run="{labels["labkit-run"]}"')
    assert [(m.display_name, m.version_id) for m in listed] == [("iris-b", "2")]  # the default version
    endpoint = aiplatform.Endpoint.create(display_name="iris", labels=labels)
    assert endpoint.labels == labels and endpoint.create_time
    endpoint.deploy(a, traffic_percentage=100, machine_type="n1-standard-2", min_replica_count=1, max_replica_count=2)
    endpoint.deploy(b, traffic_percentage=30, machine_type="n1-standard-4")
    ids = {d.model_version_id: d.id for d in endpoint.list_models()}
    assert endpoint.traffic_split == {ids["1"]: 70, ids["2"]: 30}
    resources = {d.id: d.dedicated_resources for d in endpoint.list_models()}
    assert resources[ids["1"]].machine_spec.machine_type == "n1-standard-2"
    assert (resources[ids["1"]].min_replica_count, resources[ids["1"]].max_replica_count) == (1, 2)

    prediction = endpoint.predict(instances=serving.IRIS_ROWS)
    assert prediction.predictions == serving.IRIS_CLASSES
    assert prediction.deployed_model_id in ids.values() and prediction.model_resource_name == a.resource_name
    answers = {(p.deployed_model_id, p.model_version_id) for p in
               (endpoint.predict(instances=serving.IRIS_ROWS[:1]) for _ in range(40))}
    assert answers == {(ids["1"], "1"), (ids["2"], "2")}  # both versions get traffic
    logged = standin.predictions()
    assert len(logged) == 41 and logged[0]["instances"] == serving.IRIS_ROWS
    assert {p["endpoint"] for p in logged} == {endpoint.resource_name}
    assert {p["deployedModelId"] for p in logged} == set(ids.values())

    containers = {c.labels[VERTEX_DEPLOYED_MODEL]: c for c in lab_containers()}
    assert set(containers) == set(ids.values())
    env = dict(e.split("=", 1) for e in containers[ids["1"]].attrs["Config"]["Env"])
    assert env["AIP_HTTP_PORT"] == "7080" and env["AIP_STORAGE_URI"] == vertex.ARTIFACT_MOUNT
    assert env["APP_VERSION"] == "a" and env["AIP_ENDPOINT_ID"] == endpoint.name and env["AIP_MODE"] == "PREDICTION"

    with pytest.raises(exceptions.FailedPrecondition, match="deployed models"):
        endpoint.delete()
    with pytest.raises(exceptions.FailedPrecondition, match="undeploy it first"):
        a.delete()
    endpoint.undeploy(ids["2"])
    assert endpoint.traffic_split == {ids["1"]: 100}
    endpoint.undeploy(ids["1"])
    endpoint.delete()
    a.delete()  # every version
    assert standin.resources() == {"models": [], "endpoints": [], "containers": []}
    assert lab_containers() == []


@pytest.mark.docker
@needs_docker
@pytest.mark.usefixtures("app_image")
def test_deploy_refuses_cloud_artifacts_and_missing_images_clearly(standin):
    from google.api_core import exceptions
    from google.cloud import aiplatform
    standin.init_sdk()
    labels = spend.resource_tags(LAB, spend.run_id())
    endpoint = aiplatform.Endpoint.create(display_name="refusals", labels=labels)
    in_gcs = upload(aiplatform, "gcs", labels, artifact_uri="gs://some-bucket/model")
    missing = aiplatform.Model.upload(display_name="missing", serving_container_image_uri=f"labkit/{LAB}-nope:v9")
    with pytest.raises(exceptions.FailedPrecondition, match="local directories only"):
        endpoint.deploy(in_gcs)
    with pytest.raises(exceptions.FailedPrecondition, match="never pulls"):
        endpoint.deploy(missing)
    crashing = aiplatform.Model.upload(display_name="crash", serving_container_image_uri=APP,
                                       serving_container_command=["python", "-c", "print('boom'); exit(3)"])
    with pytest.raises(exceptions.FailedPrecondition, match=r"(?s)exited \(code 3\).*boom"):
        endpoint.deploy(crashing)
    with pytest.raises(exceptions.NotFound):
        _ = aiplatform.Endpoint("projects/labkit-local/locations/us-central1/endpoints/123").display_name
    for resource in (endpoint, in_gcs, missing, crashing):
        resource.delete()
    assert lab_containers() == []


@pytest.mark.docker
@needs_docker
def test_contract_report_passes_for_the_app_and_fails_for_a_hard_coded_port(app_image, tmp_path, model_dir):
    good = vertex.contract_report(app_image, lab=LAB, model_dir=model_dir)
    assert all(r.passed for r in good), contract.table(good)
    assert "7/7 requirements met" in contract.table(good)
    (tmp_path / "Dockerfile").write_text(f'FROM {app_image}\nCMD ["http", "--model-dir", "/opt/ml/model"]\n')
    dockerlab.build(tmp_path, f"labkit/{LAB}-baked:v1", lab=LAB, show=False)
    retrained = tmp_path / "retrained"  # the same model, as if trained again: another training time
    shutil.copytree(model_dir, retrained)
    meta = json.loads((retrained / "metadata.json").read_text())
    (retrained / "metadata.json").write_text(json.dumps({**meta, "trained_at": "2000-01-01T00:00:00Z"}))
    baked = {r.name: r for r in vertex.contract_report(f"labkit/{LAB}-baked:v1", lab=LAB, model_dir=retrained)}
    assert not baked["serves the model from AIP_STORAGE_URI"].passed  # its own model, not the artifacts
    assert baked["listens on AIP_HTTP_PORT=7080"].passed
    (tmp_path / "Dockerfile").write_text(f'FROM {app_image}\nCMD ["http", "--port", "8080"]\n')
    dockerlab.build(tmp_path, f"labkit/{LAB}-port8080:v1", lab=LAB, show=False)
    bad = vertex.contract_report(f"labkit/{LAB}-port8080:v1", lab=LAB, timeout=8)
    assert not bad[0].passed and "answers on 8080" in bad[0].detail
    assert not any(r.passed for r in bad[1:-1]) and bad[-1].passed  # it still stops on SIGTERM
    assert lab_containers() == []


@pytest.mark.docker
@needs_docker
def test_the_sdk_local_endpoint_predicts_and_leaves_only_a_stopped_container_that_cleanup_removes(
        app_image, model_dir, caplog):
    import time

    import docker.errors
    since = time.time() - 1
    with vertex.local_endpoint(app_image, lab=LAB, model_dir=model_dir) as endpoint:
        container_id = endpoint.container.id
        assert endpoint.run_health_check().status_code == 200
        response = endpoint.predict(request=json.dumps({"instances": serving.IRIS_ROWS}),
                                    headers={"Content-Type": "application/json"})
        assert response.json()["predictions"] == serving.IRIS_CLASSES
        with caplog.at_level("INFO"):
            endpoint.print_container_logs(show_all=True)
    assert "listening" in caplog.text  # the SDK logs the container's output
    [opened] = vertex.local_endpoint_containers(LAB, since=since)  # named for the lab, stopped, its log kept
    assert opened.id == container_id and opened.status == "exited"
    assert serving.rows_digest(serving.IRIS_ROWS) in serving.predicted_digests(opened.logs().decode())
    assert dockerlab.cleanup(LAB, show=False)["containers"] >= 1
    with pytest.raises(docker.errors.NotFound):
        dockerlab.client().containers.get(container_id)
    with pytest.raises(vertex.VertexError, match="does not exist locally"):
        vertex.local_endpoint(f"labkit/{LAB}-nope:v9", lab=LAB)


def test_a_real_project_is_refused_without_credentials_or_confirmation(monkeypatch):
    def must_not_run(*_, **__):
        raise AssertionError("nothing may be created or contacted")

    for module in (vertex.targets, vertex.leftovers):
        monkeypatch.setattr(module, "init_gcp_sdk", must_not_run)
    monkeypatch.setattr(vertex.targets, "start_standin", must_not_run)
    monkeypatch.setattr(probes, "gcp_credentials_reason", lambda: "no GCP credentials (test)")
    with pytest.raises(spend.SpendNotConfirmed, match="credentials"):
        vertex.target("gcp", lab=LAB, project="p", confirm_spend=True)
    monkeypatch.setattr(probes, "gcp_credentials_reason", lambda: None)
    with pytest.raises(spend.SpendNotConfirmed, match="CONFIRM_SPEND"):
        vertex.target("gcp", lab=LAB, project="p")
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    with pytest.raises(vertex.VertexError, match="GOOGLE_CLOUD_PROJECT"):
        vertex.target("gcp", lab=LAB, confirm_spend=True)
    with pytest.raises(ValueError, match="unknown target kind"):
        vertex.target("aws", lab=LAB)
    with pytest.raises(vertex.VertexError, match="credentials"):
        monkeypatch.setattr(probes, "gcp_credentials_reason", lambda: "no GCP credentials (test)")
        vertex.sweep(project="p")


def test_preflight_prints_the_cost(capsys, standin):
    emulator = vertex.target("emulator", lab=LAB, standin=standin)
    assert emulator.preflight("n1-standard-2", 2) is None and "$0" in capsys.readouterr().out
    estimate = vertex.Target.preflight(types.SimpleNamespace(kind="gcp"), "n1-standard-2", 2)
    assert estimate.per_hour == pytest.approx(2 * spend.PRICES["vertex"]["n1-standard-2"])
    assert "n1-standard-2" in capsys.readouterr().out
    assert emulator.image_uri(APP) == APP
    emulator.teardown.run()


@pytest.mark.docker
@needs_docker
@pytest.mark.usefixtures("app_image")
def test_delete_all_sweep_and_teardown_touch_only_labelled_resources(standin, model_dir):
    from google.cloud import aiplatform
    mine = vertex.target("emulator", lab=LAB, standin=standin)
    other = vertex.target("emulator", lab=LAB, standin=standin)
    mine.init_sdk()
    assert mine.artifacts(model_dir) == str(model_dir.resolve())
    model = upload(aiplatform, "mine", mine.labels, artifact_uri=mine.artifacts(model_dir))
    endpoint = aiplatform.Endpoint.create(display_name="mine", labels=mine.labels)
    endpoint.deploy(model, machine_type="n1-standard-2")
    upload(aiplatform, "other", other.labels)
    unlabelled = aiplatform.Model.upload(display_name="unlabelled", serving_container_image_uri=APP)

    done = mine.delete_all()
    assert done.failed == []
    gone = done.found
    assert sorted(g.kind for g in gone) == ["deployed model", "endpoint", "model"]
    deployed = next(g for g in gone if g.kind == "deployed model")
    assert "n1-standard-2" in deployed.detail and deployed.run == mine.run and deployed.lab == LAB
    assert f"run {mine.run}" in deployed.describe() and "h old" in deployed.describe()
    assert {m["displayName"] for m in standin.resources()["models"]} == {"iris-other", "unlabelled"}
    assert lab_containers() == []

    assert [g.display_name for g in vertex.sweep(lab=LAB, standin=standin)] == ["iris-other"]
    assert [g.display_name for g in mine.sweep()] == ["iris-other"]  # every run of the lab, listed only
    assert [g.display_name for g in vertex.sweep(standin=standin, delete=True)] == ["iris-other"]
    assert vertex.sweep(standin=standin) == []
    assert {m["displayName"] for m in standin.resources()["models"]} == {"unlabelled"}
    unlabelled.delete()
    other.teardown.run()

    failing = vertex.target("emulator", lab=LAB, standin=standin)
    with pytest.raises(RuntimeError, match="cell failed"), failing.teardown:
        failing.init_sdk()
        aiplatform.Endpoint.create(display_name="doomed", labels=failing.labels)
        raise RuntimeError("the cell failed")
    assert standin.resources()["endpoints"] == []


@pytest.mark.docker
@needs_docker
def test_standin_stop_removes_its_containers(app_image):
    from google.cloud import aiplatform
    server = vertex.start_standin(LAB, show=False)
    try:
        server.init_sdk()
        endpoint = aiplatform.Endpoint.create(display_name="left")
        endpoint.deploy(upload(aiplatform, "left", {}))
        assert len(server.resources()["containers"]) == 1 and len(lab_containers()) == 1
    finally:
        server.stop()
    assert not server.running() and lab_containers() == []
    assert "removed 1 model container" in server.log_tail()


def test_local_endpoint_containers_list_only_the_labs_and_skip_one_removed_meanwhile(monkeypatch):
    """Other labs' containers come and go while a check lists these (the graded runs share the
    engine): listing every container, then inspecting each, failed on one removed in between."""
    asked = []

    def listed(**kwargs):
        asked.append(kwargs)
        return [types.SimpleNamespace(name=f"labkit-{LAB}-local-endpoint-{n}", attrs={"Created": created})
                for n, created in ((1, "2026-12-05T10:00:00.5Z"), (2, "2026-12-05T09:00:00Z"))]

    client = types.SimpleNamespace(containers=types.SimpleNamespace(list=listed))
    monkeypatch.setattr(dockerlab, "client", lambda: client)
    since = dockerlab.created_at(types.SimpleNamespace(attrs={"Created": "2026-12-05T10:00:00Z"}))
    assert [c.name for c in vertex.local_endpoint_containers(LAB, since=since)] == [f"labkit-{LAB}-local-endpoint-1"]
    assert asked == [{"all": True, "filters": {"name": f"labkit-{LAB}-local-endpoint-"}, "ignore_removed": True}]
