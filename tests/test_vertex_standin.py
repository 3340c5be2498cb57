"""The Vertex stand-in's bookkeeping through the real SDK, without Docker: filters, versions,
operations and Google-shaped errors."""

import importlib.util
import json
import urllib.request

import pytest
from google.api_core import exceptions

from labkit import aws, spend, vertex
from labkit.cloud import target
from labkit.core.labels import LAB, VERTEX_DEPLOYED_MODEL, VERTEX_ENDPOINT, VERTEX_SERVER


@pytest.fixture(scope="module")
def standin():
    server = vertex.start_standin("t6s", show=False)
    yield server
    server.stop()
    assert not server.running()


@pytest.fixture(scope="module")
def aiplatform(standin):
    standin.init_sdk()
    from google.cloud import aiplatform
    return aiplatform


def upload(aiplatform, name, labels=None, **kwargs):
    return aiplatform.Model.upload(display_name=name, serving_container_image_uri="labkit/t6s-none:v1",
                                   labels=labels or {}, **kwargs)


def test_models_versions_filters_and_deletes(aiplatform):
    first = upload(aiplatform, "one", {"labkit-lab": "t6s", "labkit-run": "r1"})
    second = upload(aiplatform, "two", {"labkit-lab": "t6s", "labkit-run": "r2"})
    newer = upload(aiplatform, "one-v2", {"labkit-lab": "t6s", "labkit-run": "r1"}, parent_model=first.resource_name,
                   is_default_version=False)
    assert newer.version_id == "2" and "default" not in newer.version_aliases
    names = lambda f: sorted(m.display_name for m in aiplatform.Model.list(filter=f))
    assert names("labels.labkit-run=r1") == ["one"]  # the default version stands for the model
    assert names('labels.labkit-lab="t6s" AND labels.labkit-run="r2"') == ["two"]
    assert names("labels.labkit-lab:*") == ["one", "two"] and names('display_name="two"') == ["two"]
    assert aiplatform.Model(first.resource_name, version="2").display_name == "one-v2"
    with pytest.raises(exceptions.BadRequest, match="unsupported filter"):
        aiplatform.Model.list(filter="create_time>2020")
    first.delete()
    second.delete()
    assert aiplatform.Model.list() == []


def test_endpoints_and_errors_come_back_the_google_way(aiplatform):
    endpoint = aiplatform.Endpoint.create(display_name="e", labels={"labkit-lab": "t6s"})
    assert [e.display_name for e in aiplatform.Endpoint.list(filter="labels.labkit-lab=t6s")] == ["e"]
    assert endpoint.traffic_split == {} and endpoint.list_models() == []
    with pytest.raises(exceptions.BadRequest, match="deploy a model first"):  # REST: chosen by HTTP status
        endpoint.predict(instances=[[1, 2, 3, 4]])
    with pytest.raises(exceptions.NotFound, match="not found"):
        endpoint.undeploy("12345")
    endpoint.delete()
    with pytest.raises(exceptions.NotFound):
        _ = aiplatform.Endpoint(endpoint.resource_name).display_name
    url = f"{aiplatform.initializer.global_config.api_endpoint}/v1/projects/p/locations/l/batchPredictionJobs"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url)
    error = json.load(refused.value)["error"]
    assert refused.value.code == 501 and error["status"] == "UNIMPLEMENTED" and "teaching stand-in" in error["message"]


def test_local_artifacts_are_kept_only_while_the_sdk_points_at_a_standin(aiplatform, tmp_path):
    from google.cloud.aiplatform.utils import gcs_utils
    model = upload(aiplatform, "local", artifact_uri=str(tmp_path))
    assert model.uri == str(tmp_path.resolve())
    model.delete()
    assert gcs_utils.stage_local_data_in_gcs.labkit_shim


def test_the_standin_spells_labkit_s_mount_and_labels_the_same():
    """standin.py runs without labkit, so it spells these itself: they must stay equal."""
    spec = importlib.util.spec_from_file_location("vertex_standin_script", vertex.STANDIN_SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.ARTIFACT_MOUNT == vertex.ARTIFACT_MOUNT
    assert (script.LAB_LABEL, script.ROLE_LABEL, script.ENDPOINT_LABEL, script.DEPLOYED_MODEL_LABEL) == (
        LAB, VERTEX_SERVER, VERTEX_ENDPOINT, VERTEX_DEPLOYED_MODEL)


def test_the_target_finds_and_deletes_only_what_its_run_labelled(standin, aiplatform, monkeypatch):
    """Through the interface both platforms share: leftovers() and delete_all()'s Deletion."""
    assert issubclass(vertex.Target, target.Target) and issubclass(aws.Target, target.Target)
    monkeypatch.setattr(spend.atexit, "register", lambda fn: fn)  # the stand-in stops before exit
    mine, other = (vertex.target("emulator", lab="t6s", standin=standin) for _ in range(2))
    mine.init_sdk()
    aiplatform.Endpoint.create(display_name="mine-endpoint", labels=mine.labels)
    upload(aiplatform, "mine-model", mine.labels)
    upload(aiplatform, "other-model", other.labels)
    made = mine.leftovers()
    assert sorted((r.kind, r.display_name) for r in made) == [("endpoint", "mine-endpoint"), ("model", "mine-model")]
    assert {(r.lab, r.run) for r in made} == {("t6s", mine.run)}
    assert all(r.describe().startswith(f"{r.kind} {r.name} ({r.display_name!r}, lab t6s, run {mine.run}, ")
               for r in made)
    assert mine.delete_all() == target.Deletion(made, [])
    assert mine.leftovers() == [] and [r.display_name for r in other.leftovers()] == ["other-model"]
    assert other.delete_all().failed == [] and other.leftovers() == []
