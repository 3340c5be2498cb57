"""Lab 08's SageMaker blue/green: the UpdateEndpoint request checked against botocore's model and
SageMaker's rules (no service needed), the rollback alarms and the move of traffic between two
variants on the shared moto server, the update refused on the emulator with a clear reason, and
its real-account path driven through botocore's Stubber (no AWS call is made)."""

import copy

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from labkit import aws, spend
from labkit.cloud import alarms, bluegreen
from labkit.cloud.emulators import EmulatorError
from labkit.core.errors import RequirementNotMet

POLICY = ("DeploymentConfig", "BlueGreenUpdatePolicy")
ROUTING = (*POLICY, "TrafficRoutingConfiguration")


def _request(**kw):
    return bluegreen.blue_green_request("iris-ep", "iris-green", **{"alarms": ["iris-5xx"], **kw})


def _set(params, path, key, value=None, *, drop=False):
    """A copy of ``params`` with ``key`` under ``path`` set to ``value`` (or dropped)."""
    changed = copy.deepcopy(params)
    node = changed
    for part in path:
        node = node[part]
    node.pop(key) if drop else node.__setitem__(key, value)
    return changed


def _one(problems, *needles):
    """The one problem there is, which says each of ``needles``."""
    assert len(problems) == 1, problems
    for needle in needles:
        assert needle in problems[0], problems[0]
    return problems[0]


@pytest.fixture
def t(moto, monkeypatch):
    """A lab-08 target on the emulator, emptied first; the teardown's exit hook is not registered."""
    monkeypatch.setattr(spend.atexit, "register", lambda fn: fn)
    return aws.target("emulator", lab="08", moto=moto)


def _endpoint(t, green_weight=0.0):
    """Model, endpoint config with variants blue (weight 1) and green, and the endpoint, tagged with the run."""
    sm, names = t.sagemaker, {what: aws.name(t, what) for what in ("model", "config", "ep")}
    sm.create_model(ModelName=names["model"], ExecutionRoleArn=t.role_arn, PrimaryContainer={"Image": "local/app:v1"},
                    Tags=t.tags)
    sm.create_endpoint_config(EndpointConfigName=names["config"], Tags=t.tags, ProductionVariants=[
        {"VariantName": name, "ModelName": names["model"], "InstanceType": "ml.m5.large", "InitialInstanceCount": 1,
         "InitialVariantWeight": weight} for name, weight in (("blue", 1.0), ("green", green_weight))])
    sm.create_endpoint(EndpointName=names["ep"], EndpointConfigName=names["config"], Tags=t.tags)
    return names["ep"]


def _weights(found):
    return {v.name: (v.weight, v.instances) for v in found}


# --- the request, checked here ---------------------------------------------------------------------

def test_the_request_is_the_blue_green_update_asked_for_and_valid():
    params = _request(alarms="iris-5xx")  # one name given as a string is one alarm, not eight
    assert params == {
        "EndpointName": "iris-ep", "EndpointConfigName": "iris-green", "RetainAllVariantProperties": True,
        "DeploymentConfig": {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {"Type": "CANARY", "WaitIntervalInSeconds": 300,
                                                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}},
                "TerminationWaitInSeconds": 600, "MaximumExecutionTimeoutInSeconds": 1800},
            "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "iris-5xx"}]}}}
    assert bluegreen.request_problems(params) == []
    assert _request(canary_percent=None)["DeploymentConfig"]["BlueGreenUpdatePolicy"][
        "TrafficRoutingConfiguration"] == {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 300}
    assert bluegreen.request_problems(_request(canary_percent=None)) == []
    said = bluegreen.plan(params)
    for part in ("iris-ep → config iris-green", "10 % of the new fleet takes traffic first", "300 s of baking",
                 "rolled back if iris-5xx trips", "kept 600 s more", "at most 1800 s", "instance counts are kept"):
        assert part in said, said


def test_botocores_validator_catches_names_types_and_missing_members():
    params = _request()
    misspelled = _set(_set(params, POLICY, "TerminationWaitInSeconds", drop=True), POLICY,
                      "TerminationWaitInSecond", 600)
    _one(bluegreen.request_problems(misspelled),
         'Unknown parameter in DeploymentConfig.BlueGreenUpdatePolicy: "TerminationWaitInSecond"',
         "TerminationWaitInSeconds")
    _one(bluegreen.request_problems(_set(params, ROUTING, "WaitIntervalInSeconds", drop=True)),
         "Missing required parameter", '"WaitIntervalInSeconds"')
    _one(bluegreen.request_problems(_set(params, ROUTING, "WaitIntervalInSeconds", "300")),
         "Invalid type for parameter DeploymentConfig.BlueGreenUpdatePolicy.TrafficRoutingConfiguration."
         "WaitIntervalInSeconds")
    _one(bluegreen.request_problems({**params, "RetainAllVariantProperty": True}),
         'Unknown parameter in input: "RetainAllVariantProperty"')


def test_a_canary_above_half_the_new_fleet_is_refused():
    assert bluegreen.request_problems(_request(canary_percent=50)) == []
    _one(bluegreen.request_problems(_request(canary_percent=51)), "CanarySize is 51 % of the new fleet",
         "at most 50 %")
    _one(bluegreen.request_problems(_request(canary_percent=0)), "CanarySize.Value is 0: SageMaker takes at least 1")
    by_count = _set(_request(), ROUTING, "CanarySize", {"Type": "INSTANCE_COUNT", "Value": 3})
    _one(bluegreen.request_problems(by_count, instances=4), "CanarySize is 75 % of the new fleet")
    assert bluegreen.request_problems(by_count, instances=6) == []
    assert bluegreen.request_problems(by_count) == []  # the fleet's size is not known here: not judged
    _one(bluegreen.request_problems(_set(_request(), ROUTING, "CanarySize", drop=True)),
         "Type CANARY but no CanarySize")


@pytest.mark.parametrize("field, path, value, allowed", [
    ("WaitIntervalInSeconds", ROUTING, 3601, "0 to 3600"),
    ("WaitIntervalInSeconds", ROUTING, -1, "0 to 3600"),
    ("TerminationWaitInSeconds", POLICY, 3601, "0 to 3600"),
    ("TerminationWaitInSeconds", POLICY, -5, "0 to 3600"),
    ("MaximumExecutionTimeoutInSeconds", POLICY, 28801, "600 to 28800"),
])
def test_waits_and_timeout_out_of_range_say_the_range(field, path, value, allowed):
    params = _request(wait_s=0, termination_wait_s=0, max_timeout_s=28800)  # no wait to outlast the timeout
    _one(bluegreen.request_problems(_set(params, path, field, value)),
         f"{field} is {value}: SageMaker takes {allowed}")  # once: botocore's own minimum line is not repeated


def test_the_timeout_must_be_longer_than_the_waits():
    _one(bluegreen.request_problems(_request(wait_s=300, termination_wait_s=600, max_timeout_s=900)),
         "MaximumExecutionTimeoutInSeconds is 900 s, not longer than the 900 s the deployment waits",
         "WaitIntervalInSeconds 300 + TerminationWaitInSeconds 600")
    assert bluegreen.request_problems(_request(wait_s=300, termination_wait_s=600, max_timeout_s=901)) == []
    # too short and below the model's minimum: both are said
    problems = bluegreen.request_problems(_request(wait_s=300, termination_wait_s=600, max_timeout_s=599))
    assert len(problems) == 2 and "600 to 28800" in problems[0] and "not longer than the 900 s" in problems[1]
    linear = _set(_request(termination_wait_s=0), ROUTING, "CanarySize", drop=True)
    linear = _set(_set(linear, ROUTING, "Type", "LINEAR"), ROUTING, "LinearStepSize",
                  {"Type": "CAPACITY_PERCENT", "Value": 10})
    _one(bluegreen.request_problems(linear), "not longer than the 2700 s", "WaitIntervalInSeconds 9 × 300")
    _one(bluegreen.request_problems(_set(linear, ROUTING, "LinearStepSize", {"Type": "CAPACITY_PERCENT", "Value": 60})),
         "LinearStepSize is 60 % of the new fleet: a linear step is 10 to 50 %")


def test_the_rollback_names_one_to_ten_alarms():
    assert bluegreen.request_problems(_request(alarms=[f"a{i}" for i in range(10)])) == []
    _one(bluegreen.request_problems(_request(alarms=[])), "AutoRollbackConfiguration.Alarms has 0 item(s)",
         "SageMaker takes 1 to 10 items")
    _one(bluegreen.request_problems(_request(alarms=[f"a{i}" for i in range(11)])), "has 11 item(s)", "1 to 10")
    _one(bluegreen.request_problems(_set(_request(), ("DeploymentConfig",), "AutoRollbackConfiguration", {})),
         "names no Alarms: without alarms nothing can trip")
    _one(bluegreen.request_problems(_request(alarms=[" "])), "AlarmName ' ' does not match")


def test_enums_patterns_and_one_update_policy():
    _one(bluegreen.request_problems(_set(_request(), ROUTING, "Type", "canary")),
         "Type is 'canary': it is one of ALL_AT_ONCE, CANARY, LINEAR")
    _one(bluegreen.request_problems({**_request(), "EndpointName": "iris_ep"}),
         "EndpointName 'iris_ep' does not match SageMaker's pattern")
    both = _set(_request(), ("DeploymentConfig",), "RollingUpdatePolicy", {
        "MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 1}, "WaitIntervalInSeconds": 60})
    _one(bluegreen.request_problems(both), "both BlueGreenUpdatePolicy and RollingUpdatePolicy")


# --- the rollback alarms, on moto ----------------------------------------------------------------------

def test_the_alarms_parameters_are_accepted_and_read_back(t, moto):
    endpoint = _endpoint(t)
    errors = alarms.put_alarm(t, alarms.errors_alarm("iris-5xx", endpoint, "green"))
    assert errors == alarms.Alarm(
        "iris-5xx", (("AWS/SageMaker", "Invocation5XXErrors", (("EndpointName", endpoint), ("VariantName", "green"))),),
        "Sum", 1.0, "GreaterThanOrEqualToThreshold", 60, 1, "notBreaching", "OK", "Unchecked: Initial alarm creation")
    latency = alarms.put_alarm(t, alarms.latency_alarm("iris-p99", endpoint, "green", ms=250))
    assert (latency.statistic, latency.threshold, latency.comparison, latency.evaluation_periods) == (
        "p99", 250_000.0, "GreaterThanThreshold", 2)  # ModelLatency is in microseconds
    cloudwatch = moto.client("cloudwatch")
    [stored] = cloudwatch.describe_alarms(AlarmNames=["iris-p99"])["MetricAlarms"]
    assert "Statistic" not in stored and stored["ExtendedStatistic"] == "p99"
    assert {tag["Key"] for tag in cloudwatch.list_tags_for_resource(ResourceARN=stored["AlarmArn"])["Tags"]} >= {
        "labkit-lab", "labkit-run"}
    request = _request(alarms=["iris-5xx", "iris-p99"]) | {"EndpointName": endpoint}
    assert alarms.alarm_problems(cloudwatch, request) == []
    assert t.delete_all().failed == []
    assert cloudwatch.describe_alarms()["MetricAlarms"] == []


def test_alarm_problems_name_a_missing_alarm_and_one_on_another_endpoint(t, moto):
    endpoint, cloudwatch = _endpoint(t), moto.client("cloudwatch")
    alarms.put_alarm(t, alarms.errors_alarm("other-5xx", "some-other-endpoint", "green"))
    problems = alarms.alarm_problems(cloudwatch, _request(alarms=["nope", "other-5xx"]) | {"EndpointName": endpoint})
    assert len(problems) == 2
    assert "CloudWatch has no metric alarm 'nope'" in problems[0] and "errors_alarm" in problems[0]
    assert "alarm 'other-5xx' watches AWS/SageMaker Invocation5XXErrors" in problems[1]
    assert f"not a AWS/SageMaker metric with EndpointName='{endpoint}'" in problems[1]
    with pytest.raises(RequirementNotMet, match="no metric alarm 'nope'"):
        alarms.alarm(cloudwatch, "nope")


# --- blue to green on moto: the weights ----------------------------------------------------------------------

def test_traffic_moves_from_blue_to_green_on_moto(t):
    endpoint = _endpoint(t)
    found = bluegreen.variants(t.sagemaker, endpoint)
    assert _weights(found) == {"blue": (1.0, 1), "green": (None, 1)}  # moto shows a weight of 0 as none
    with pytest.raises(RequirementNotMet, match="green show no weight"):
        bluegreen.traffic_shares(found)
    canary = bluegreen.shift_traffic(t, endpoint, {"blue": 0.9, "green": 0.1})
    assert _weights(canary) == {"blue": (0.9, 1), "green": (0.1, 1)}  # both counts kept: both were sent
    assert bluegreen.traffic_shares(canary) == pytest.approx({"blue": 0.9, "green": 0.1})
    done = bluegreen.shift_traffic(t, endpoint, {"blue": 0, "green": 1}, instances={"green": 2})
    assert _weights(done) == {"blue": (0.0, 1), "green": (1.0, 2)}
    assert bluegreen.traffic_shares(done) == {"blue": 0.0, "green": 1.0}
    with pytest.raises(bluegreen.BlueGreenError, match="has no variant Green: its variants are blue, green"):
        bluegreen.shift_traffic(t, endpoint, {"Green": 1})


def test_a_count_moto_dropped_is_asked_for(t):
    endpoint = _endpoint(t, green_weight=0.5)
    t.sagemaker.update_endpoint_weights_and_capacities(  # what a cell might do by hand: weight only
        EndpointName=endpoint, DesiredWeightsAndCapacities=[{"VariantName": "green", "DesiredWeight": 0.5}])
    with pytest.raises(bluegreen.BlueGreenError, match=r"green show no instance count .* instances=\{'green': 1\}"):
        bluegreen.shift_traffic(t, endpoint, {"green": 1.0})
    assert _weights(bluegreen.shift_traffic(t, endpoint, {"green": 1.0}, instances={"green": 1}))["green"] == (1.0, 1)


# --- the update itself ---------------------------------------------------------------------------------------------

def test_the_update_on_the_emulator_is_refused_with_the_reason(t):
    endpoint = _endpoint(t)
    config = t.sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    with pytest.raises(EmulatorError) as info:
        bluegreen.update(t, _request() | {"EndpointName": endpoint})
    message = str(info.value)
    assert "moto 5.2.5 has no UpdateEndpoint (it answers HTTP 500, measured)" in message
    assert "only on a real account" in message and "shift_traffic()" in message
    with pytest.raises(bluegreen.BlueGreenError, match=r"would refuse .*\n- .*CanarySize is 60 %"):
        bluegreen.update(t, _request(canary_percent=60) | {"EndpointName": endpoint})  # checked before anything
    assert t.sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"] == config


@pytest.fixture
def aws_target(moto, monkeypatch):
    """An "aws" target whose boto3 calls would go to moto (fake credentials), driven by Stubbers."""
    from labkit import probes
    monkeypatch.setattr(spend.atexit, "register", lambda fn: fn)
    for key, value in moto.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(probes, "aws_credentials_reason", lambda: None)
    target = aws.target("aws", lab="08", confirm_spend=True, role_arn="arn:aws:iam::123456789012:role/labkit-test")
    target.poll_s = 0.01
    return target


def _described(status, config):
    return {"EndpointName": "iris-ep", "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/iris-ep",
            "EndpointConfigName": config, "EndpointStatus": status, "CreationTime": "2026-01-01T00:00:00Z",
            "LastModifiedTime": "2026-01-01T00:00:00Z",
            "ProductionVariants": [{"VariantName": "AllTraffic", "CurrentWeight": 1.0, "CurrentInstanceCount": 2}]}


@pytest.mark.parametrize("ends_on, rolled_back", [("iris-green", False), ("iris-blue", True)])
def test_the_update_on_aws_checks_alarms_sends_and_waits(aws_target, capsys, ends_on, rolled_back):
    params = _request()
    alarm = {"AlarmName": "iris-5xx", "Namespace": "AWS/SageMaker", "MetricName": "Invocation5XXErrors",
             "Dimensions": [{"Name": "EndpointName", "Value": "iris-ep"}], "Statistic": "Sum",
             "EvaluationPeriods": 1, "ComparisonOperator": "GreaterThanOrEqualToThreshold", "StateValue": "OK"}
    with Stubber(aws_target.client("cloudwatch")) as cw, Stubber(aws_target.sagemaker) as sm:
        cw.add_response("describe_alarms", {"MetricAlarms": [alarm]},
                        {"AlarmNames": ["iris-5xx"], "AlarmTypes": ["MetricAlarm"]})
        sm.add_response("update_endpoint", {"EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/iris-ep"},
                        params)
        sm.add_response("describe_endpoint", _described("Updating", "iris-blue"), {"EndpointName": "iris-ep"})
        sm.add_response("describe_endpoint", _described("InService", ends_on), {"EndpointName": "iris-ep"})
        state = bluegreen.update(aws_target, params)
        sm.assert_no_pending_responses()
    assert (state.status, state.config, state.variants) == (
        "InService", ends_on, (bluegreen.Variant("AllTraffic", 1.0, 2),))
    out = capsys.readouterr().out
    assert "10 % of the new fleet takes traffic first" in out and "iris-ep is Updating (iris-blue)" in out
    assert ("runs iris-blue, not iris-green: the update was rolled back or failed (InService)" in out) == rolled_back


def test_the_update_on_aws_refuses_without_its_alarm(aws_target):
    with Stubber(aws_target.client("cloudwatch")) as cw, Stubber(aws_target.sagemaker):
        cw.add_response("describe_alarms", {"MetricAlarms": []})
        with pytest.raises(bluegreen.BlueGreenError, match="alarms are not ready:\n- CloudWatch has no metric alarm"):
            bluegreen.update(aws_target, _request())  # the sagemaker Stubber has no response: nothing was sent


# --- the emulator as the docstrings describe it ------------------------------------------------------------------

def test_moto_does_what_the_module_docstrings_say(t, moto):
    """The rows the lab's text relies on; a moto upgrade that changes one fails here."""
    endpoint = _endpoint(t)
    with pytest.raises(ClientError) as info:
        t.sagemaker.update_endpoint(**_request() | {"EndpointName": endpoint})
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    t.sagemaker.update_endpoint_weights_and_capacities(
        EndpointName=endpoint, DesiredWeightsAndCapacities=[{"VariantName": "blue", "DesiredWeight": 0.5}])
    assert _weights(bluegreen.variants(t.sagemaker, endpoint))["blue"] == (0.5, None)  # the count is gone
    cloudwatch = moto.client("cloudwatch")
    for name in ("iris-5xx", "kept"):
        cloudwatch.put_metric_alarm(**alarms.errors_alarm(name, endpoint, "blue"))
    cloudwatch.put_metric_data(Namespace="AWS/SageMaker", MetricData=[{
        "MetricName": "Invocation5XXErrors", "Value": 50.0,
        "Dimensions": [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "blue"}]}])
    assert alarms.alarm(cloudwatch, "iris-5xx").state == "OK"  # never evaluated
    cloudwatch.set_alarm_state(AlarmName="iris-5xx", StateValue="ALARM", StateReason="by hand")
    assert alarms.alarm(cloudwatch, "iris-5xx").state == "ALARM"
    cloudwatch.delete_alarms(AlarmNames=["iris-5xx", "missing"])
    assert [a["AlarmName"] for a in cloudwatch.describe_alarms()["MetricAlarms"]] == ["kept"]
