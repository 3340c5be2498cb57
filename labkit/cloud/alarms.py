"""CloudWatch alarms on a SageMaker endpoint's variant, as lab 08's blue/green update uses them
to roll back: the ``put_metric_alarm`` parameters of an alarm on 5xx answers or on model latency,
the alarm read back as CloudWatch holds it, and whether the alarms an update names exist and
watch its endpoint (:mod:`labkit.cloud.bluegreen` checks that before the update is sent).

The metrics are SageMaker's ``AWS/SageMaker`` endpoint invocation metrics, with dimensions
EndpointName and VariantName ("Amazon SageMaker AI metrics in Amazon CloudWatch", SageMaker
developer guide): ``Invocation5XXErrors`` counts the answers with a 5xx status (Sum),
``ModelLatency`` is in microseconds. A blue/green update keeps the variant's name, so one alarm
on it watches the old and the new fleet together ("Auto-Rollback Configuration and Monitoring":
if an alarm trips during a baking period, all traffic goes back to the old fleet).

What moto 5.2.5 does (server mode, measured with boto3 1.44.8): it runs every call here and
evaluates nothing.

=====================================  ======================================================================
call                                   moto 5.2.5
=====================================  ======================================================================
put_metric_alarm                       stored as given, Tags too; StateValue OK ("Unchecked: Initial alarm
                                       creation"); a namespace typo (AWS/Sagemaker) accepted; put again: OK
put_metric_data above the threshold    the alarm stays OK: alarms are never evaluated
set_alarm_state                        the state is set (ALARM) until the next put_metric_alarm
describe_alarms of a missing name      no error, no alarm
delete_alarms with a missing name      no error; the others are deleted
=====================================  ======================================================================
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from botocore.exceptions import ClientError

from ..core.errors import RequirementNotMet

NAMESPACE = "AWS/SageMaker"


def _alarm_params(name: str, metric: str, endpoint: str, variant: str, *, statistic: str, threshold: float,
                  comparison: str, period_s: int, periods: int, about: str) -> dict:
    stat = {"ExtendedStatistic": statistic} if re.fullmatch(r"p\d+(\.\d+)?", statistic) else {"Statistic": statistic}
    return {"AlarmName": name, "AlarmDescription": f"rolls back a blue/green update of {endpoint}: {about}",
            "Namespace": NAMESPACE, "MetricName": metric, **stat,
            "Dimensions": [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}],
            "Period": period_s, "EvaluationPeriods": periods, "DatapointsToAlarm": periods, "Threshold": threshold,
            "ComparisonOperator": comparison, "TreatMissingData": "notBreaching"}


def errors_alarm(name: str, endpoint: str, variant: str, *, errors: int = 1, period_s: int = 60,
                 periods: int = 1) -> dict:
    """``put_metric_alarm`` parameters of an alarm that trips when ``variant`` answers ``errors``
    or more 5xx in each of ``periods`` periods (Invocation5XXErrors, Sum). A minute without
    requests has no data point and does not trip it (TreatMissingData notBreaching)."""
    return _alarm_params(name, "Invocation5XXErrors", endpoint, variant, statistic="Sum", threshold=float(errors),
                         comparison="GreaterThanOrEqualToThreshold", period_s=period_s, periods=periods,
                         about=f"{errors}+ 5xx answers per {period_s} s")


def latency_alarm(name: str, endpoint: str, variant: str, *, ms: float, statistic: str = "p99",
                  period_s: int = 60, periods: int = 2) -> dict:
    """``put_metric_alarm`` parameters of an alarm that trips when ``variant``'s ModelLatency
    (``statistic``: "Average" or a percentile such as "p99") is above ``ms`` milliseconds in each
    of ``periods`` periods; the metric is in microseconds, so the threshold is ``ms`` × 1000."""
    return _alarm_params(name, "ModelLatency", endpoint, variant, statistic=statistic, threshold=ms * 1000,
                         comparison="GreaterThanThreshold", period_s=period_s, periods=periods,
                         about=f"{statistic} ModelLatency above {ms:g} ms")


@dataclass(frozen=True)
class Alarm:
    """A CloudWatch metric alarm as CloudWatch holds it. ``watches``: (namespace, metric,
    dimensions) of each metric it reads (one, or several for a metric-math alarm)."""
    name: str
    watches: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...]
    statistic: str | None
    threshold: float | None
    comparison: str
    period_s: int | None
    evaluation_periods: int
    treat_missing_data: str | None
    state: str
    state_reason: str

    def watches_endpoint(self, endpoint: str) -> bool:
        return any(ns == NAMESPACE and ("EndpointName", endpoint) in dims for ns, _, dims in self.watches)


def _metric(m: Mapping) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    return (m.get("Namespace", ""), m.get("MetricName", ""),
            tuple((d["Name"], d["Value"]) for d in m.get("Dimensions", [])))


def alarm(cloudwatch, name: str) -> Alarm:
    """The alarm ``name`` read from CloudWatch; RequirementNotMet when there is none."""
    found = cloudwatch.describe_alarms(AlarmNames=[name], AlarmTypes=["MetricAlarm"])["MetricAlarms"]
    if not found:
        raise RequirementNotMet(f"CloudWatch has no metric alarm {name!r}: create it with "
                                f"put_metric_alarm (errors_alarm or latency_alarm give its parameters) before an "
                                "update names it")
    a = found[0]
    watches = ((_metric(a),) if a.get("MetricName") else
               tuple(_metric(q["MetricStat"]["Metric"]) for q in a.get("Metrics", []) if "MetricStat" in q))
    return Alarm(a["AlarmName"], watches, a.get("Statistic") or a.get("ExtendedStatistic"), a.get("Threshold"),
                 a["ComparisonOperator"], a.get("Period"), a["EvaluationPeriods"], a.get("TreatMissingData"),
                 a["StateValue"], a.get("StateReason", ""))


def put_alarm(target, params: Mapping) -> Alarm:
    """Create (or replace) the alarm of ``params`` with the run's tags added, delete it with the
    run's other resources (``target.teardown``), and return it as CloudWatch holds it."""
    cloudwatch, name = target.client("cloudwatch"), params["AlarmName"]
    cloudwatch.put_metric_alarm(**{**params, "Tags": [*params.get("Tags", []), *target.tags]})
    target.teardown.add(f"alarm {name}", lambda: delete_alarm(cloudwatch, name))
    return alarm(cloudwatch, name)


def delete_alarm(cloudwatch, name: str) -> None:
    """Delete the alarm ``name``; one already gone is fine (AWS answers ResourceNotFound, moto nothing)."""
    try:
        cloudwatch.delete_alarms(AlarmNames=[name])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFound":
            raise


def alarm_problems(cloudwatch, params: Mapping) -> list[str]:
    """Each alarm the request names that CloudWatch does not have, or that watches no AWS/SageMaker
    metric of the request's endpoint (it could never roll this update back)."""
    endpoint, problems = params.get("EndpointName"), []
    rollback = (params.get("DeploymentConfig") or {}).get("AutoRollbackConfiguration") or {}
    for item in rollback.get("Alarms") or []:
        try:
            found = alarm(cloudwatch, item.get("AlarmName", ""))
        except RequirementNotMet as exc:
            problems.append(str(exc))
            continue
        if not found.watches_endpoint(endpoint):
            seen = ", ".join(f"{ns} {metric} {dict(dims)}" for ns, metric, dims in found.watches) or "no metric"
            problems.append(f"alarm {found.name!r} watches {seen}, not a {NAMESPACE} metric with EndpointName="
                            f"{endpoint!r}: it cannot see this update go wrong")
    return problems
