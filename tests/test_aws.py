"""labkit.aws against moto (the emulator path, and the "aws" path pointed at moto) and botocore's Stubber.

No test here reaches a real account: "aws" targets get fake credentials and either
AWS_ENDPOINT_URL=moto or a Stubber on the client they use.
"""

import base64
import datetime
import os
import re

import pytest
from botocore.stub import Stubber
from botocore.validate import validate_parameters

from labkit import aws, dockerlab, emulators, probes, spend

ROLE = "arn:aws:iam::123456789012:role/labkit-test"
PUSH_PASSWORD = "not-a-real-password"  # pragma: allowlist secret
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:v1"


@pytest.fixture(autouse=True)
def empty(moto, monkeypatch):
    """A clean emulator per test (the shared ``moto`` fixture resets it); the targets' exit-time
    teardowns are not registered (moto stops first)."""
    monkeypatch.setattr(spend.atexit, "register", lambda fn: fn)


@pytest.fixture
def no_creds(monkeypatch):
    monkeypatch.setattr(probes, "aws_credentials_reason", lambda: "no AWS credentials — run `aws configure`")


@pytest.fixture
def fake_account(monkeypatch, moto):
    """An "aws" target passes the opt-in gate and talks to moto with fake credentials."""
    monkeypatch.setattr(probes, "aws_credentials_reason", lambda: None)
    for key, value in moto.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("SAGEMAKER_ROLE_ARN", raising=False)


def _emulator(moto, lab="05"):
    return aws.target("emulator", lab=lab, moto=moto)


def _create(t, model, config=None, endpoint=None, image="local/app:v1", model_data="s3://b/model.tar.gz",
            instances=1, environment=None):
    """Lab 05's three calls, as its solution makes them: tagged with the target's tags."""
    sm = t.sagemaker
    sm.create_model(ModelName=model, ExecutionRoleArn=t.role_arn, Tags=t.tags,
                    PrimaryContainer={"Image": image, "ModelDataUrl": model_data, "Environment": environment or {}})
    if config:
        sm.create_endpoint_config(EndpointConfigName=config, Tags=t.tags, ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": model, "InstanceType": "ml.m5.large",
             "InitialInstanceCount": instances, "InitialVariantWeight": 1.0}])
    if endpoint:
        sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config, Tags=t.tags)


def _deploy(t, suffix="iris", image="local/app:v1", model_data="s3://b/model.tar.gz"):
    model, config, endpoint = (aws.name(t, f"{suffix}-{what}") for what in ("model", "config", "endpoint"))
    _create(t, model, config, endpoint, image=image, model_data=model_data)
    return model, config, endpoint


def _inventory(moto):
    sm, s3, ecr = moto.client("sagemaker"), moto.client("s3"), moto.client("ecr")
    return {"models": [m["ModelName"] for m in sm.list_models()["Models"]],
            "configs": [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]],
            "endpoints": [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]],
            "buckets": [b["Name"] for b in s3.list_buckets()["Buckets"]],
            "repositories": [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]]}


def _nothing(moto):
    return all(not v for v in _inventory(moto).values())


# --- the opt-in gate ----------------------------------------------------------------------------

@pytest.mark.parametrize("confirm", [True, False])
def test_aws_target_refuses_without_credentials_and_creates_nothing(moto, no_creds, monkeypatch, confirm):
    with monkeypatch.context() as patch, pytest.raises(spend.SpendNotConfirmed, match="aws configure"):
        patch.setattr(aws.boto3, "Session", lambda *a, **k: pytest.fail("a session was made"))
        aws.target("aws", lab="05", confirm_spend=confirm, role_arn=ROLE)
    assert _nothing(moto)


def test_aws_target_refuses_without_confirm_spend(moto, fake_account, monkeypatch):
    with monkeypatch.context() as patch, pytest.raises(spend.SpendNotConfirmed, match="CONFIRM_SPEND = True"):
        patch.setattr(aws.boto3, "Session", lambda *a, **k: pytest.fail("a session was made"))
        aws.target("aws", lab="05", role_arn=ROLE)
    assert _nothing(moto)


def test_aws_target_needs_a_role(fake_account, monkeypatch):
    with pytest.raises(aws.TargetError, match="SAGEMAKER_ROLE_ARN"):
        aws.target("aws", lab="05", confirm_spend=True)
    monkeypatch.setenv("SAGEMAKER_ROLE_ARN", ROLE)
    t = aws.target("aws", lab="05", confirm_spend=True)
    assert t.kind == "aws" and t.role_arn == ROLE


def test_the_emulator_target_starts_moto_and_points_the_sdk_at_it(monkeypatch):
    monkeypatch.delenv(emulators.MOTO_URL_ENV, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://elsewhere.invalid")
    t = aws.target("emulator", lab="05")
    try:
        assert t.moto.running() and os.environ["AWS_ENDPOINT_URL"] == t.moto.url
        assert t.client("sagemaker").list_endpoints()["Endpoints"] == []
    finally:
        t.moto.stop()
    assert os.environ["AWS_ENDPOINT_URL"] == "http://elsewhere.invalid", "stop() puts the old values back"


def test_bad_kinds():
    with pytest.raises(aws.TargetError, match="unknown target kind"):
        aws.target("gcp", lab="05")


# --- names, tags, artefacts ------------------------------------------------------------------------

def test_names_and_tags(moto):
    t = _emulator(moto)
    assert t.tags == [{"Key": "labkit-lab", "Value": "05"}, {"Key": "labkit-run", "Value": t.run}]
    assert aws.name(t, "iris") == f"labkit-05-iris-{t.run}"
    long = aws.name(t, "A very_long suffix " * 10)
    assert 60 <= len(long) <= 63 and long.endswith(f"-{t.run}") and "--" not in long
    assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", long)  # SageMaker's name pattern


def test_emulator_role_model_data_and_image(moto, tmp_path, capsys):
    t = _emulator(moto)
    assert t.image_uri("labkit/test-app:v1") == "labkit/test-app:v1"
    assert t.role_arn.endswith(":role/labkit-05-sagemaker")
    assert _emulator(moto).role_arn == t.role_arn  # made once, reused
    tar = tmp_path / "model.tar.gz"
    tar.write_bytes(b"not really a tarball")
    uri = t.model_data(tar)
    bucket = aws.name(t, "model")
    assert uri == f"s3://{bucket}/05/model.tar.gz" and "uploaded model.tar.gz" in capsys.readouterr().out
    s3 = moto.client("s3")
    assert s3.get_object(Bucket=bucket, Key="05/model.tar.gz")["Body"].read() == tar.read_bytes()
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == t.tags
    t.delete_all()
    assert bucket not in _inventory(moto)["buckets"]


def test_request_shapes_pass_botocore_validation(moto):
    t = aws.target("emulator", lab="05", moto=moto, role_arn=ROLE)
    variants = [{"VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.m5.large",
                 "InitialInstanceCount": 2, "InitialVariantWeight": 1.0}]
    expected = {
        "create_model": ({"ModelName": "m", "ExecutionRoleArn": ROLE, "Tags": t.tags,
                          "PrimaryContainer": {"Image": IMAGE, "ModelDataUrl": "s3://b/k", "Environment": {"A": "1"}}},
                         {"ModelArn": "arn:aws:sagemaker:us-east-1:123456789012:model/m"}),
        "create_endpoint_config": ({"EndpointConfigName": "c", "ProductionVariants": variants, "Tags": t.tags},
                                   {"EndpointConfigArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/c"}),
        "create_endpoint": ({"EndpointName": "e", "EndpointConfigName": "c", "Tags": t.tags},
                            {"EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/e"}),
    }
    model = t.sagemaker.meta.service_model
    for operation, (params, _) in expected.items():  # botocore's own validator, stated explicitly
        camel = "".join(part.title() for part in operation.split("_"))
        validate_parameters(params, model.operation_model(camel).input_shape)
    with Stubber(t.sagemaker) as stub:  # the client validates, then the stub compares
        for operation, (params, response) in expected.items():
            stub.add_response(operation, response, params)
        _create(t, "m", "c", "e", image=IMAGE, model_data="s3://b/k", instances=2, environment={"A": "1"})
        stub.assert_no_pending_responses()


# --- preflight: estimate and quota --------------------------------------------------------------

def test_emulator_preflight_prints_the_estimate_and_zero(moto, capsys):
    est = _emulator(moto).preflight("ml.m5.large", 2)
    assert est.per_hour == pytest.approx(0.23)
    out = capsys.readouterr().out
    assert est.describe() in out and "emulator this costs $0" in out
    with pytest.raises(ValueError, match="known types"):
        _emulator(moto).preflight("ml.x1.weird", 1)


def _quota(name, value, code="L-1234ABCD"):
    return {"ServiceCode": "sagemaker", "QuotaCode": code, "QuotaName": name, "Value": value,
            "QuotaArn": f"arn:aws:servicequotas:us-east-1:123456789012:sagemaker/{code}"}


def test_preflight_raises_quota_error_after_printing_the_estimate(moto, fake_account, capsys):
    t = aws.target("aws", lab="05", confirm_spend=True, role_arn=ROLE)
    sq = t.client("service-quotas")
    with Stubber(sq) as stub:
        stub.add_response("list_service_quotas", {"Quotas": [_quota("ml.m5.large for training job usage", 9)],
                                                  "NextToken": "page2"}, {"ServiceCode": "sagemaker"})
        stub.add_response("list_service_quotas", {"Quotas": [_quota("ml.m5.large for endpoint usage", 1)]},
                          {"ServiceCode": "sagemaker", "NextToken": "page2"})
        with pytest.raises(aws.QuotaError) as info:
            t.preflight("ml.m5.large", 2)
    message = str(info.value)
    assert "'ml.m5.large for endpoint usage' is 1" in message and "needs 2" in message
    assert "request-service-quota-increase" in message and "L-1234ABCD" in message
    assert spend.estimate("sagemaker", "ml.m5.large", 2).describe() in capsys.readouterr().out
    assert _nothing(moto)


def test_preflight_passes_on_the_default_quota(fake_account, capsys):
    t = aws.target("aws", lab="05", confirm_spend=True, role_arn=ROLE)
    with Stubber(t.client("service-quotas")) as stub:
        stub.add_response("list_service_quotas", {"Quotas": []}, {"ServiceCode": "sagemaker"})
        stub.add_response("list_aws_default_service_quotas",
                          {"Quotas": [_quota("ml.m5.large for endpoint usage", 4)]}, {"ServiceCode": "sagemaker"})
        t.preflight("ml.m5.large", 2)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("2 × ml.m5.large") and "4 ≥ 2" in out[1]


def test_preflight_goes_on_when_quotas_cannot_be_read(fake_account, capsys):
    t = aws.target("aws", lab="05", confirm_spend=True, role_arn=ROLE)
    with Stubber(t.client("service-quotas")) as stub:
        stub.add_client_error("list_service_quotas", "AccessDeniedException", "not allowed")
        t.preflight("ml.t2.medium", 1)
    assert "could not read quota 'ml.t2.medium for endpoint usage' (AccessDeniedException)" in capsys.readouterr().out


# --- teardown and delete_all ----------------------------------------------------------------------

def test_a_failing_step_inside_teardown_deletes_what_was_made(moto, tmp_path, capsys):
    t = _emulator(moto)
    tar = tmp_path / "model.tar.gz"
    tar.write_bytes(b"x")
    with pytest.raises(RuntimeError, match="step failed"), t.teardown:
        t.preflight("ml.m5.large", 1)
        data = t.model_data(tar)
        model = aws.name(t, "model")
        _create(t, model, aws.name(t, "config"), model_data=data)
        raise RuntimeError("step failed")
    out = capsys.readouterr().out
    assert out.index("emulator this costs $0") < out.index("uploaded")  # the estimate comes first
    assert "deleted endpoint-config" in out and "deleted model" in out and "deleted bucket" in out
    assert _nothing(moto)


def test_delete_all_removes_only_this_run(moto, capsys):
    mine, other = _emulator(moto), _emulator(moto)
    made = _deploy(mine)
    kept = _deploy(other)
    # made by hand in another cell, found by its run tag like the rest
    mine.sagemaker.create_model(ModelName=aws.name(mine, "extra"), ExecutionRoleArn=mine.role_arn,
                                PrimaryContainer={"Image": "local/app:v1"}, Tags=mine.tags)
    done = mine.delete_all()
    assert done.failed == [] and {r.run for r in done.found} == {mine.run}
    assert {(r.kind, r.name) for r in done.found} == {("model", made[0]), ("endpoint-config", made[1]),
                                                      ("endpoint", made[2]), ("model", aws.name(mine, "extra"))}
    out = capsys.readouterr().out
    assert f"deleted model {aws.name(mine, 'extra')}" in out and "deleted endpoint labkit-05-iris-endpoint" in out
    left = _inventory(moto)
    assert (left["models"], left["configs"], left["endpoints"]) == ([kept[0]], [kept[1]], [kept[2]])
    assert mine.delete_all() == aws.Deletion([], [])  # again: nothing to do, no error
    assert "nothing else tagged" in capsys.readouterr().out
    other.delete_all()
    assert _nothing(moto)


def test_aws_delete_waits_for_a_creating_endpoint(fake_account, capsys):
    t = aws.target("aws", lab="05", confirm_spend=True, role_arn=ROLE)
    t.poll_s = 0
    ep = {"EndpointName": "e", "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/e",
          "CreationTime": datetime.datetime(2026, 1, 1), "LastModifiedTime": datetime.datetime(2026, 1, 1)}
    with Stubber(t.sagemaker) as stub:
        stub.add_response("describe_endpoint", {**ep, "EndpointStatus": "Creating"}, {"EndpointName": "e"})
        stub.add_response("describe_endpoint", {**ep, "EndpointStatus": "InService"}, {"EndpointName": "e"})
        stub.add_response("delete_endpoint", {}, {"EndpointName": "e"})
        t._delete("endpoint", "e")
        stub.add_client_error("describe_endpoint", "ValidationException", "Could not find endpoint 'e'.")
        stub.add_client_error("delete_endpoint", "ValidationException", "Could not find endpoint 'e'.")
        t._delete("endpoint", "e")  # already gone: fine
        stub.assert_no_pending_responses()
    assert "is Creating: waiting" in capsys.readouterr().out
    t.settle_s = 0  # an endpoint that never settles is given up, with what to do, not waited on for ever
    with Stubber(t.sagemaker) as stub:
        stub.add_response("describe_endpoint", {**ep, "EndpointStatus": "Updating"}, {"EndpointName": "e"})
        with pytest.raises(aws.TargetError, match=r"endpoint e to finish .* `labkit sweep --aws --delete`\): not within 0s"):
            t._delete("endpoint", "e")


def test_aws_target_on_moto_end_to_end(moto, fake_account, tmp_path):
    t = aws.target("aws", lab="05", confirm_spend=True, role_arn=ROLE)
    tar = tmp_path / "model.tar.gz"
    tar.write_bytes(b"x")
    _deploy(t, model_data=t.model_data(tar))
    assert len(_inventory(moto)["endpoints"]) == 1
    t.delete_all()
    assert _nothing(moto)


# --- sweep ------------------------------------------------------------------------------------------

def test_sweep_lists_and_deletes_tagged_leftovers_only(moto, tmp_path, capsys):
    five, six = _emulator(moto, "05"), _emulator(moto, "06")
    tar = tmp_path / "model.tar.gz"
    tar.write_bytes(b"x")
    _deploy(five, model_data=five.model_data(tar))
    _deploy(six)
    moto.client("ecr").create_repository(repositoryName=aws.name(five, "app"), tags=five.tags)
    sm, s3 = moto.client("sagemaker"), moto.client("s3")
    sm.create_model(ModelName="labkit-05-untagged", ExecutionRoleArn=five.role_arn,
                    PrimaryContainer={"Image": "local/app:v1"})
    s3.create_bucket(Bucket="labkit-05-untagged")

    found = aws.sweep(moto=moto)
    assert sorted(f.kind for f in found) == sorted(["endpoint", "endpoint-config", "model"] * 2
                                                   + ["bucket", "repository"])
    assert {(f.lab, f.run) for f in found} == {("05", five.run), ("06", six.run)}
    assert all(f.age_hours is not None and f.age_hours < 1 for f in found)
    assert all(re.fullmatch(r"[-a-z]+ labkit-0[56]-\S+ \(lab 0[56], run r[-0-9a-f]+, 0\.\d h old\)", f.describe())
               for f in found)

    only_six = aws.sweep(moto=moto, lab="06", delete=True)
    assert {f.lab for f in only_six} == {"06"} and len(only_six) == 3
    assert capsys.readouterr().out.count("deleted ") == 3
    aws.sweep(moto=moto, delete=True)
    assert aws.sweep(moto=moto) == []
    left = _inventory(moto)
    assert left["models"] == ["labkit-05-untagged"] and left["buckets"] == ["labkit-05-untagged"]
    assert not left["configs"] and not left["endpoints"] and not left["repositories"]


def test_a_targets_sweep_lists_every_run_of_its_lab_with_the_command_and_deletes_nothing(moto, capsys):
    earlier, now, other = _emulator(moto, "05"), _emulator(moto, "05"), _emulator(moto, "06")
    _deploy(earlier)  # a run a dead kernel cut short
    _deploy(other)
    found = now.sweep()
    out = capsys.readouterr().out
    assert {(f.lab, f.run) for f in found} == {("05", earlier.run)} and len(found) == 3
    assert out.startswith("$ labkit sweep --aws --lab 05\n") and "--delete` removes them" in out
    assert len(now.sweep()) == 3  # nothing was deleted
    aws.sweep(moto=moto, delete=True)
    capsys.readouterr()
    assert now.sweep() == [] and "nothing tagged by this lab was found" in capsys.readouterr().out


# --- ECR push (Stubber + a fake Docker client; no registry is contacted) ---------------------------

class FakeImage:
    def __init__(self, calls):
        self.calls = calls

    def tag(self, repository, tag):
        self.calls.append(("tag", repository, tag))
        return True


class FakeDocker:
    def __init__(self):
        self.calls = []
        docker = self

        class Images:
            def get(self, ref):
                docker.calls.append(("get", ref))
                return FakeImage(docker.calls)

        class Api:
            def push(self, repository, tag, stream, decode, auth_config):
                docker.calls.append(("push", repository, tag, auth_config))
                yield {"status": f"The push refers to repository [{repository}]"}
                yield {"status": "Pushing", "id": "abc", "progressDetail": {}}
                yield {"status": "Pushed", "id": "abc"}
                yield {"status": "Pushed", "id": "abc"}
                yield {"status": "v1: digest: sha256:00ff size: 1234"}

        self.images, self.api = Images(), Api()


def test_image_uri_pushes_to_a_tagged_scanned_repository(fake_account, monkeypatch, capsys):
    fake = FakeDocker()
    monkeypatch.setattr(dockerlab.engine, "client", lambda: fake)
    t = aws.target("aws", lab="05", confirm_spend=True, role_arn=ROLE)
    repo = aws.name(t, "test-app")
    uri = f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{repo}"
    token = base64.b64encode(f"AWS:{PUSH_PASSWORD}".encode()).decode()
    with Stubber(t.client("ecr")) as stub:
        stub.add_response("create_repository",
                          {"repository": {"repositoryName": repo, "repositoryUri": uri,
                                          "repositoryArn": f"arn:aws:ecr:us-east-1:123456789012:repository/{repo}"}},
                          {"repositoryName": repo, "tags": t.tags, "imageScanningConfiguration": {"scanOnPush": True}})
        stub.add_response("get_authorization_token",
                          {"authorizationData": [{"authorizationToken": token,
                                                  "proxyEndpoint": "https://123456789012.dkr.ecr.us-east-1.amazonaws.com",
                                                  "expiresAt": datetime.datetime(2030, 1, 1)}]}, {})
        assert t.image_uri("labkit/test-app:v1") == f"{uri}:v1"
        stub.add_response("delete_repository", {}, {"repositoryName": repo, "force": True})
        assert t.teardown.run() == []
        stub.assert_no_pending_responses()
    assert fake.calls == [("get", "labkit/test-app:v1"), ("tag", uri, "v1"),
                          ("push", uri, "v1", {"username": "AWS", "password": PUSH_PASSWORD})]
    out = capsys.readouterr().out
    assert out.count("abc: Pushed") == 1 and "digest: sha256:00ff" in out and f"deleted repository {repo}" in out
    assert PUSH_PASSWORD not in out


def test_image_push_error_is_explained(fake_account, monkeypatch):
    fake = FakeDocker()
    fake.api.push = lambda *a, **k: iter([{"error": "denied: not authorized"}])
    monkeypatch.setattr(dockerlab.engine, "client", lambda: fake)
    t = aws.target("aws", lab="05", confirm_spend=True, role_arn=ROLE)
    with Stubber(t.client("ecr")) as stub:
        stub.add_response("create_repository", {"repository": {"repositoryUri": "1.dkr.ecr/x"}})
        stub.add_response("get_authorization_token",
                          {"authorizationData": [{"authorizationToken": base64.b64encode(b"AWS:p").decode()}]})
        with pytest.raises(aws.TargetError, match="denied: not authorized"):
            t.image_uri("app")
    assert len(t.teardown) == 2  # the repository it made is still deleted later (after the tagged sweep)
