"""labkit.autoscaling on the shared moto server: the target value from a measured capacity, a
variant's scaling configuration read back as data, clear messages for wrong ids, and the AWS
target's cleanup and sweep removing a run's scaling configuration before its endpoints."""

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from labkit import autoscaling, aws, spend
from labkit.core.errors import RequirementNotMet

VARIANT = "AllTraffic"


@pytest.fixture(autouse=True)
def empty(moto, monkeypatch):
    """A clean emulator per test; the targets' exit-time teardowns are not registered."""
    monkeypatch.setattr(spend.atexit, "register", lambda fn: fn)


@pytest.fixture
def fake_account(moto, monkeypatch):
    """Credentials pass the probe and boto3 follows AWS_ENDPOINT_URL to moto, as it would a region."""
    from labkit import probes
    for key, value in moto.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(probes, "aws_credentials_reason", lambda: None)


def _endpoint(t, suffix="iris", tags=True):
    """A model, config and endpoint with one variant, tagged with the run like lab 05's."""
    sm, names = t.sagemaker, [aws.name(t, f"{suffix}-{what}") for what in ("model", "config", "endpoint")]
    tagging = {"Tags": t.tags} if tags else {}
    sm.create_model(ModelName=names[0], ExecutionRoleArn=t.role_arn, PrimaryContainer={"Image": "local/app:v1"},
                    **tagging)
    sm.create_endpoint_config(EndpointConfigName=names[1], **tagging, ProductionVariants=[
        {"VariantName": VARIANT, "ModelName": names[0], "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName=names[2], EndpointConfigName=names[1], **tagging)
    return names[2]


def _autoscale(aas, endpoint, *, value=600.0, cooldowns=(600, 60), resource=None):
    """What lab 07's solution does: target (1-4), target tracking, a night-time floor."""
    keys = {"ServiceNamespace": "sagemaker", "ResourceId": resource or autoscaling.resource_id(endpoint, VARIANT),
            "ScalableDimension": autoscaling.DIMENSION}
    aas.register_scalable_target(**keys, MinCapacity=1, MaxCapacity=4)
    config = {"TargetValue": value, "PredefinedMetricSpecification": {"PredefinedMetricType": autoscaling.METRIC}}
    if cooldowns:
        config |= {"ScaleInCooldown": cooldowns[0], "ScaleOutCooldown": cooldowns[1]}
    aas.put_scaling_policy(PolicyName="invocations", PolicyType="TargetTrackingScaling",
                           TargetTrackingScalingPolicyConfiguration=config, **keys)
    aas.put_scheduled_action(ScheduledActionName="night-floor", Schedule="cron(0 22 * * ? *)", Timezone="Europe/Berlin",
                             ScalableTargetAction={"MinCapacity": 1, "MaxCapacity": 1}, **keys)


def _namespace(moto):
    """Every target, policy and scheduled action moto holds for SageMaker, as ResourceId[:name]."""
    aas = moto.client("application-autoscaling")
    return ({t["ResourceId"] for t in aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]},
            {f"{p['ResourceId']}:{p['PolicyName']}"
             for p in aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]},
            {f"{a['ResourceId']}:{a['ScheduledActionName']}"
             for a in aas.describe_scheduled_actions(ServiceNamespace="sagemaker")["ScheduledActions"]})


# --- the target value ------------------------------------------------------------------------------

def test_target_value_is_per_minute_with_the_safety_factor():
    assert autoscaling.target_value(20) == 600.0  # 20 req/s × 0.5 × 60 s
    assert autoscaling.target_value(12.5, safety_factor=0.8) == pytest.approx(600.0)
    assert autoscaling.safety_factor_of(900.0, max_rps=20) == pytest.approx(0.75)
    for bad in ({"max_rps": 0}, {"max_rps": -3}, {"max_rps": 20, "safety_factor": 0},
                {"max_rps": 20, "safety_factor": 1.5}):
        with pytest.raises(ValueError):
            autoscaling.target_value(**bad)


# --- what a student configured, as data ---------------------------------------------------------------

def test_target_policy_and_scheduled_action_read_back_as_data(moto):
    t = aws.target("emulator", lab="07", moto=moto)
    endpoint = _endpoint(t)
    _autoscale(t.autoscaling, endpoint, value=autoscaling.target_value(20))
    _autoscale(t.autoscaling, _endpoint(t, "other"), value=900.0)  # another endpoint's: not read
    got = autoscaling.variant_scaling(t.autoscaling, endpoint, VARIANT)
    assert len(got.policies) == 1
    rid = f"endpoint/{endpoint}/variant/{VARIANT}"
    assert (got.target.resource_id, got.target.dimension, got.target.min_capacity, got.target.max_capacity) == (
        rid, "sagemaker:variant:DesiredInstanceCount", 1, 4)
    policy = got.target_tracking()
    assert (policy.name, policy.target_value, policy.metric, policy.cooldowns_s, policy.disable_scale_in) == (
        "invocations", 600.0, "SageMakerVariantInvocationsPerInstance", (600, 60), False)
    assert policy.alarms == ()  # moto makes no alarm for a SageMaker policy (AWS makes two)
    [night] = got.scheduled
    assert (night.name, night.schedule, night.timezone, night.min_capacity, night.max_capacity) == (
        "night-floor", "cron(0 22 * * ? *)", "Europe/Berlin", 1, 1)


def test_unset_cooldowns_are_awss_default_and_one_tracking_policy_is_required(moto):
    t = aws.target("emulator", lab="07", moto=moto)
    endpoint = _endpoint(t)
    _autoscale(t.autoscaling, endpoint, cooldowns=None)
    policy = autoscaling.variant_scaling(t.autoscaling, endpoint, VARIANT).target_tracking()
    assert (policy.scale_in_cooldown_s, policy.scale_out_cooldown_s, policy.cooldowns_s) == (None, None, (300, 300))
    t.autoscaling.put_scaling_policy(
        PolicyName="second", ServiceNamespace="sagemaker", ResourceId=policy.resource_id,
        ScalableDimension=autoscaling.DIMENSION, PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={"TargetValue": 900.0, "PredefinedMetricSpecification": {
            "PredefinedMetricType": autoscaling.METRIC}})
    with pytest.raises(RequirementNotMet, match=r"one TargetTrackingScaling policy .* found 2: 'invocations'"):
        autoscaling.variant_scaling(t.autoscaling, endpoint, VARIANT).target_tracking()


# --- wrong ids ------------------------------------------------------------------------------------------

def test_wrong_dimension_or_resource_id_is_explained():
    assert autoscaling.check_ids("endpoint/ep-1/variant/AllTraffic") == ("ep-1", "AllTraffic")
    with pytest.raises(autoscaling.AutoscalingError, match="serverless variant's provisioned concurrency: an "
                                                           "endpoint variant's instance count is 'sagemaker:variant"):
        autoscaling.check_ids("endpoint/ep/variant/v", "sagemaker:variant:DesiredProvisionedConcurrency")
    with pytest.raises(autoscaling.AutoscalingError, match="'ecs:service:DesiredCount' is not a SageMaker dimension"):
        autoscaling.check_ids("endpoint/ep/variant/v", "ecs:service:DesiredCount")
    with pytest.raises(autoscaling.AutoscalingError, match="did you mean 'endpoint/ep/variant/AllTraffic'"):
        autoscaling.check_ids("endpoint/ep/AllTraffic")
    for bad in ("arn:aws:sagemaker:us-east-1:123456789012:endpoint/ep", "endpoint/ep/variant/", "ep/AllTraffic"):
        with pytest.raises(autoscaling.AutoscalingError, match="does not name a variant: it is 'endpoint/<endpoint") as info:
            autoscaling.check_ids(bad)
        assert "did you mean" not in str(info.value)


def test_a_missing_or_misnamed_target_says_what_is_registered(moto):
    t = aws.target("emulator", lab="07", moto=moto)
    endpoint, aas = _endpoint(t), t.autoscaling
    with pytest.raises(RequirementNotMet, match=f"nothing is registered for endpoint '{endpoint}'.*ResourceId="
                                                f"'endpoint/{endpoint}/variant/AllTraffic'"):
        autoscaling.variant_scaling(aas, endpoint, VARIANT)
    # moto stores both (AWS would refuse them: no such variant)
    for resource in (f"endpoint/{endpoint}/variant/alltraffic", f"endpoint/{endpoint}/variant/"):
        aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource,
                                     ScalableDimension=autoscaling.DIMENSION, MinCapacity=1, MaxCapacity=2)
    with pytest.raises(RequirementNotMet) as info:
        autoscaling.variant_scaling(aas, endpoint, VARIANT)
    message = str(info.value)
    assert "variant 'alltraffic', not 'AllTraffic' (names are case-sensitive" in message
    assert f"ResourceId 'endpoint/{endpoint}/variant/' does not name a variant" in message


# --- cleanup and sweep ------------------------------------------------------------------------------------

def test_delete_all_removes_scaling_before_the_endpoint(moto, capsys):
    mine, other = (aws.target("emulator", lab="07", moto=moto) for _ in range(2))
    endpoint, kept = _endpoint(mine), _endpoint(other)
    _autoscale(mine.autoscaling, endpoint)
    _autoscale(other.autoscaling, kept)
    done = mine.delete_all()
    assert done.failed == []
    rid = f"endpoint/{endpoint}/variant/{VARIANT}"
    assert {(r.kind, r.name) for r in done.found if r.kind in autoscaling.KINDS} == {
        ("scheduled-action", f"{rid}:night-floor"), ("scaling-policy", f"{rid}:invocations"), ("scalable-target", rid)}
    assert {r.run for r in done.found} == {mine.run}
    out = capsys.readouterr().out
    steps = [out.index(f"deleted {kind} {rid}") for kind in autoscaling.KINDS] + [out.index(f"deleted endpoint {endpoint}")]
    assert steps == sorted(steps), out
    other_rid = f"endpoint/{kept}/variant/{VARIANT}"
    assert _namespace(moto) == ({other_rid}, {f"{other_rid}:invocations"}, {f"{other_rid}:night-floor"})
    assert [e["EndpointName"] for e in moto.client("sagemaker").list_endpoints()["Endpoints"]] == [kept]
    assert mine.delete_all() == aws.Deletion([], [])


def test_leftovers_are_found_by_run_and_swept(moto, capsys):
    mine, other = (aws.target("emulator", lab="07", moto=moto) for _ in range(2))
    _autoscale(mine.autoscaling, _endpoint(mine))
    _autoscale(other.autoscaling, _endpoint(other))
    untagged = _endpoint(mine, "untagged", tags=False)
    _autoscale(mine.autoscaling, untagged)
    scaling = [r for r in mine.leftovers() if r.kind in autoscaling.KINDS]
    assert sorted(r.kind for r in scaling) == sorted(autoscaling.KINDS)
    assert {(r.lab, r.run) for r in scaling} == {("07", mine.run)} and all(r.age_hours < 1 for r in scaling)
    assert "(lab 07, run" in scaling[0].describe() and "cron(0 22 * * ? *)" in scaling[0].describe()
    swept = aws.sweep(moto=moto, lab="07", delete=True)
    assert sorted(r.kind for r in swept if r.kind in autoscaling.KINDS) == sorted(autoscaling.KINDS * 2)
    assert aws.sweep(moto=moto) == []
    rid = f"endpoint/{untagged}/variant/{VARIANT}"  # untagged: never ours to judge
    assert _namespace(moto) == ({rid}, {f"{rid}:invocations"}, {f"{rid}:night-floor"})


def test_an_aws_target_deregisters_before_deleting_its_endpoint(moto, fake_account, capsys):
    """The "aws" path (the endpoint-settling wait included), pointed at moto with fake credentials."""
    t = aws.target("aws", lab="07", confirm_spend=True, role_arn="arn:aws:iam::123456789012:role/labkit-test")
    endpoint = _endpoint(t)
    _autoscale(t.autoscaling, endpoint)
    assert t.delete_all().failed == []
    out = capsys.readouterr().out
    assert out.index(f"deleted scalable-target endpoint/{endpoint}/") < out.index(f"deleted endpoint {endpoint}")
    assert _namespace(moto) == (set(), set(), set())


def test_labkit_sweep_aws_lists_and_deletes_scaling(moto, fake_account, capsys):
    """The command, with boto3 following AWS_ENDPOINT_URL to moto as it would a real region."""
    from labkit import cli
    t = aws.target("emulator", lab="07", moto=moto)
    rid = autoscaling.resource_id(_endpoint(t), VARIANT)
    _autoscale(t.autoscaling, rid.split("/")[1])
    assert cli.main(["sweep", "--aws", "--lab", "07"]) == 0
    out = capsys.readouterr().out
    assert f"aws: scaling-policy {rid}:invocations (lab 07, run {t.run}" in out and "scalable-target" in out
    assert cli.main(["sweep", "--aws", "--delete"]) == 0
    assert _namespace(moto) == (set(), set(), set())


def test_scaling_left_by_an_endpoint_deleted_first_is_claimed_by_its_run_only(moto):
    t = aws.target("emulator", lab="07", moto=moto)
    endpoint = _endpoint(t)
    _autoscale(t.autoscaling, endpoint)
    t.sagemaker.delete_endpoint(EndpointName=endpoint)  # moto allows it and keeps the scaling configuration
    assert [r for r in aws.sweep(moto=moto, lab="07") if r.kind in autoscaling.KINDS] == []
    assert sorted(r.kind for r in t.leftovers() if r.kind in autoscaling.KINDS) == sorted(autoscaling.KINDS)
    t.delete_all()
    assert _namespace(moto) == (set(), set(), set())


def test_without_autoscaling_permission_the_endpoints_are_still_deleted(moto, capsys):
    t = aws.target("emulator", lab="07", moto=moto)
    endpoint = _endpoint(t)
    with Stubber(t.autoscaling) as stub:
        stub.add_client_error("describe_scheduled_actions", "AccessDeniedException", "not allowed")
        t.delete_all()
    assert "could not list Application Auto Scaling (AccessDeniedException)" in capsys.readouterr().out
    assert endpoint not in [e["EndpointName"] for e in moto.client("sagemaker").list_endpoints()["Endpoints"]]


def test_paging_follows_tokens_and_stops_on_a_repeated_one(moto):
    aas = moto.client("application-autoscaling")
    item = {"ResourceId": "endpoint/e/variant/v", "ScalableDimension": autoscaling.DIMENSION,
            "ServiceNamespace": "sagemaker", "MinCapacity": 1, "MaxCapacity": 2,
            "RoleARN": "arn:aws:iam::123456789012:role/x", "CreationTime": "2026-01-01T00:00:00Z"}
    with Stubber(aas) as stub:
        stub.add_response("describe_scalable_targets", {"ScalableTargets": [item], "NextToken": "a"})
        stub.add_response("describe_scalable_targets", {"ScalableTargets": [item]},
                          {"ServiceNamespace": "sagemaker", "NextToken": "a"})
        assert len(autoscaling._pages(aas, "describe_scalable_targets", "ScalableTargets")) == 2
        for _ in range(3):
            stub.add_response("describe_scalable_targets", {"ScalableTargets": [item], "NextToken": "49"})
        with pytest.raises(autoscaling.AutoscalingError, match="NextToken '49' twice"):
            autoscaling._pages(aas, "describe_scalable_targets", "ScalableTargets")


def test_moto_does_what_the_module_docstring_says(moto):
    """The rows of the table the lab's text relies on; a moto upgrade that changes one fails here."""
    t = aws.target("emulator", lab="07", moto=moto)
    endpoint = _endpoint(t)
    _autoscale(t.autoscaling, endpoint)
    assert moto.client("cloudwatch").describe_alarms()["MetricAlarms"] == []
    with pytest.raises(ClientError) as info:
        t.autoscaling.describe_scaling_activities(ServiceNamespace="sagemaker")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    rid = autoscaling.resource_id(endpoint, VARIANT)
    t.autoscaling.deregister_scalable_target(ServiceNamespace="sagemaker", ResourceId=rid,
                                             ScalableDimension=autoscaling.DIMENSION)
    assert _namespace(moto) == (set(), {f"{rid}:invocations"}, {f"{rid}:night-floor"})
    [variant] = t.sagemaker.describe_endpoint(EndpointName=endpoint)["ProductionVariants"]
    assert variant["CurrentInstanceCount"] == 1
