"""Lab 07's SageMaker target tracking: the target value from a measured capacity, what a student
configured for a variant read back as plain data, and the scaling configuration of a run's
endpoints found (through those endpoints) and removed before the endpoints themselves.

AWS's load-testing guidance for SageMakerVariantInvocationsPerInstance ("Load testing your auto
scaling configuration", docs.aws.amazon.com/sagemaker/latest/dg/endpoint-scaling-loadtest.html):
``SageMakerVariantInvocationsPerInstance = (MAX_RPS * SAFETY_FACTOR) * 60``, start testing with a
safety factor of 0.5, and multiply by 60 because the CloudWatch metric counts per minute.

Order of removal, from AWS's documentation: ``DeleteEndpoint`` deregisters an autoscaled variant
itself only when the caller may call ``DeregisterScalableTarget`` ("Delete endpoints configured
for auto scaling"); ``DeregisterScalableTarget`` deletes the target's scaling policies and
scheduled actions (its API reference). Here scheduled actions, then policies, then the target are
deleted explicitly, and only then the endpoint: that works on AWS with or without those rules,
and on moto, which needs it (below).

What moto 5.2.5 does (server mode, measured with boto3 1.44.8; ``Variant`` is
``ResourceId=endpoint/NAME/variant/VARIANT``, ``ScalableDimension=sagemaker:variant:DesiredInstanceCount``):

====================================================  ===========================================================
call                                                  moto 5.2.5
====================================================  ===========================================================
register_scalable_target (min/max; again: update)     stored; the endpoint is not looked up (a missing one is
                                                      accepted), MinCapacity > MaxCapacity accepted, a new target
                                                      without min/max accepted; ``Tags`` accepted
register: another dimension                           ValidationException listing moto's enum, which lacks
                                                      sagemaker:variant:DesiredProvisionedConcurrency
register: ResourceId ``endpoint/E/V``, ``Endpoint/…``  ValidationException "Unsupported service namespace,
                                                      resource type or scalable dimension"; ``endpoint/E`` HTTP
                                                      500; ``endpoint/E/variant/`` and ``…/V/x`` accepted
put_scaling_policy TargetTrackingScaling              stored as given (TargetValue, metric, cooldowns; unset
                                                      cooldowns stay absent); no check that the target is
                                                      registered or that the metric fits SageMaker;
                                                      ``Alarms: []``: no CloudWatch alarm is made
put_scheduled_action (cron, Timezone, Start/End)      stored; the schedule text is not parsed ("every night" is
                                                      accepted); no registered target needed; it never runs
describe_scalable_targets / _scaling_policies /       filter by ResourceId(s), dimension, names as AWS does;
_scheduled_actions                                    describe_scalable_targets' NextToken is wrong after the
                                                      second page (the same token comes twice)
describe_scaling_activities                           HTTP 500: not implemented
list_tags_for_resource, tag_resource                  HTTP 500: not implemented
instance counts                                       never change (CurrentInstanceCount after 65 s, with a
                                                      ``rate(1 minute)`` action asking for 3: still 1)
delete_scaling_policy                                 deletes; a missing one: ValidationException "No scaling
                                                      policy found …" (AWS: ObjectNotFoundException)
delete_scheduled_action                               deletes; a missing one: no error
deregister_scalable_target                            deletes the target only: its policies and scheduled
                                                      actions stay (AWS deletes them); again: ValidationException
                                                      "No scalable target found …"
delete_endpoint of an autoscaled variant              succeeds and leaves target, policies and actions behind
====================================================  ===========================================================
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from botocore.exceptions import ClientError

from ..core.errors import LabkitError, RequirementNotMet
from .target import Leftover

NAMESPACE = "sagemaker"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
METRIC = "SageMakerVariantInvocationsPerInstance"
#: What Application Auto Scaling uses for a SageMaker variant when a cooldown is not set.
DEFAULT_COOLDOWN_S = 300
#: The kinds of :class:`Leftover` this module finds, in the order they are deleted.
KINDS = ("scheduled-action", "scaling-policy", "scalable-target")
_NAME = r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"  # SageMaker's pattern for endpoint and variant names
_RESOURCE_ID = re.compile(rf"endpoint/(?P<endpoint>{_NAME})/variant/(?P<variant>{_NAME})")
_OTHER_DIMENSIONS = {
    "sagemaker:variant:DesiredProvisionedConcurrency": "a serverless variant's provisioned concurrency",
    "sagemaker:inference-component:DesiredCopyCount": "an inference component's copies (ResourceId "
                                                      "inference-component/NAME)",
}


class AutoscalingError(LabkitError):
    """A ResourceId or ScalableDimension that cannot name a SageMaker variant's instance count."""


def target_value(max_rps: float, safety_factor: float = 0.5) -> float:
    """The TargetValue of a SageMakerVariantInvocationsPerInstance policy for one instance that
    carries at most ``max_rps`` requests per second: ``max_rps × safety_factor × 60``.

    This is AWS's guidance in "Load testing your auto scaling configuration" (SageMaker developer
    guide, docs.aws.amazon.com/sagemaker/latest/dg/endpoint-scaling-loadtest.html):
    ``SageMakerVariantInvocationsPerInstance = (MAX_RPS * SAFETY_FACTOR) * 60``. The metric counts
    invocations per instance per minute, hence × 60 (not when the load test measured per minute);
    AWS suggests starting the safety factor at 0.5, which keeps each instance below the load it
    was measured to carry while new instances start.
    """
    if max_rps <= 0:
        raise ValueError(f"max_rps must be a measured capacity above 0, not {max_rps}")
    if not 0 < safety_factor <= 1:
        raise ValueError(f"safety_factor must be in (0, 1], not {safety_factor}: above 1 the target exceeds what "
                         "one instance was measured to carry")
    return max_rps * safety_factor * 60


def safety_factor_of(value: float, max_rps: float) -> float:
    """The safety factor a TargetValue stands for, given the measured ``max_rps`` (the inverse of
    :func:`target_value`): a check's message can say "your target is 1.3 × the capacity"."""
    return value / (max_rps * 60)


def resource_id(endpoint: str, variant: str) -> str:
    """Application Auto Scaling's ResourceId of a variant: ``endpoint/<endpoint>/variant/<variant>``."""
    return f"endpoint/{endpoint}/variant/{variant}"


def check_ids(resource: str, dimension: str = DIMENSION) -> tuple[str, str]:
    """The (endpoint, variant) a ResourceId names; AutoscalingError with what is wrong and the form
    expected when it or ``dimension`` cannot address a variant's instance count."""
    if dimension != DIMENSION:
        what = _OTHER_DIMENSIONS.get(dimension)
        raise AutoscalingError(
            f"ScalableDimension {dimension!r} " + (f"scales {what}" if what else "is not a SageMaker dimension")
            + f": an endpoint variant's instance count is {DIMENSION!r}")
    if not (match := _RESOURCE_ID.fullmatch(resource)):
        parts = resource.split("/")
        hint = (f": did you mean {resource_id(parts[1], parts[2])!r}?"
                if len(parts) == 3 and parts[0] == "endpoint" and all(parts) and parts[2] != "variant" else "")
        raise AutoscalingError(f"ResourceId {resource!r} does not name a variant: it is "
                               f"'endpoint/<endpoint name>/variant/<variant name>', with the names exactly as "
                               f"describe_endpoint gives them{hint}")
    return match["endpoint"], match["variant"]


# ---------------------------------------------------------------- what a student configured, as data

@dataclass(frozen=True)
class ScalableTarget:
    resource_id: str
    dimension: str
    min_capacity: int | None
    max_capacity: int | None
    created: datetime | None = None


@dataclass(frozen=True)
class Policy:
    """A scaling policy; for target tracking, ``metric`` is the predefined metric type (or
    ``Namespace/MetricName`` of a customized one), cooldowns None when not set (AWS then uses
    :data:`DEFAULT_COOLDOWN_S`)."""
    name: str
    resource_id: str
    dimension: str
    policy_type: str
    target_value: float | None = None
    metric: str | None = None
    scale_in_cooldown_s: int | None = None
    scale_out_cooldown_s: int | None = None
    disable_scale_in: bool = False
    alarms: tuple[str, ...] = ()
    created: datetime | None = None

    @property
    def cooldowns_s(self) -> tuple[int, int]:
        """(scale-in, scale-out) cooldowns in effect: the ones set, else AWS's default."""
        return (DEFAULT_COOLDOWN_S if self.scale_in_cooldown_s is None else self.scale_in_cooldown_s,
                DEFAULT_COOLDOWN_S if self.scale_out_cooldown_s is None else self.scale_out_cooldown_s)


@dataclass(frozen=True)
class ScheduledAction:
    name: str
    resource_id: str
    dimension: str
    schedule: str
    timezone: str | None
    min_capacity: int | None
    max_capacity: int | None
    start: datetime | None = None
    end: datetime | None = None
    created: datetime | None = None


@dataclass(frozen=True)
class VariantScaling:
    """Everything Application Auto Scaling holds for one variant's instance count."""
    target: ScalableTarget | None
    policies: tuple[Policy, ...]
    scheduled: tuple[ScheduledAction, ...]

    def target_tracking(self) -> Policy:
        """The variant's one target-tracking policy (RequirementNotMet when there is none or several)."""
        tracking = [p for p in self.policies if p.policy_type == "TargetTrackingScaling"]
        if len(tracking) != 1:
            others = ", ".join(f"{p.name!r} ({p.policy_type})" for p in self.policies) or "no policy at all"
            raise RequirementNotMet(f"expected one TargetTrackingScaling policy on the variant, found {len(tracking)}: "
                                    f"{others}")
        return tracking[0]


def _target(item: dict) -> ScalableTarget:
    return ScalableTarget(item["ResourceId"], item["ScalableDimension"], item.get("MinCapacity"),
                          item.get("MaxCapacity"), item.get("CreationTime"))


def _policy(item: dict) -> Policy:
    config = item.get("TargetTrackingScalingPolicyConfiguration") or {}
    custom = config.get("CustomizedMetricSpecification") or {}
    metric = ((config.get("PredefinedMetricSpecification") or {}).get("PredefinedMetricType")
              or (f"{custom.get('Namespace')}/{custom.get('MetricName')}" if custom else None))
    return Policy(item["PolicyName"], item["ResourceId"], item["ScalableDimension"], item["PolicyType"],
                  config.get("TargetValue"), metric, config.get("ScaleInCooldown"), config.get("ScaleOutCooldown"),
                  bool(config.get("DisableScaleIn")), tuple(a["AlarmName"] for a in item.get("Alarms", [])),
                  item.get("CreationTime"))


def _scheduled(item: dict) -> ScheduledAction:
    action = item.get("ScalableTargetAction") or {}
    return ScheduledAction(item["ScheduledActionName"], item["ResourceId"], item["ScalableDimension"],
                           item["Schedule"], item.get("Timezone"), action.get("MinCapacity"),
                           action.get("MaxCapacity"), item.get("StartTime"), item.get("EndTime"),
                           item.get("CreationTime"))


def variant_scaling(aas, endpoint: str, variant: str) -> VariantScaling:
    """What is configured for ``variant`` of ``endpoint`` (``aas``: an application-autoscaling
    client), read from the service, never from a notebook's variables. RequirementNotMet when no
    scalable target is registered for it, naming what is registered for the endpoint instead."""
    rid = resource_id(endpoint, variant)
    targets = aas.describe_scalable_targets(ServiceNamespace=NAMESPACE, ResourceIds=[rid],
                                            ScalableDimension=DIMENSION)["ScalableTargets"]
    scaling = VariantScaling(
        _target(targets[0]) if targets else None,
        tuple(_policy(p) for p in _pages(aas, "describe_scaling_policies", "ScalingPolicies",
                                         ResourceId=rid, ScalableDimension=DIMENSION)),
        tuple(_scheduled(a) for a in _pages(aas, "describe_scheduled_actions", "ScheduledActions",
                                            ResourceId=rid, ScalableDimension=DIMENSION)))
    if scaling.target is None:
        raise RequirementNotMet(f"no scalable target {rid} ({DIMENSION}) is registered: "
                                + _near_misses(aas, endpoint, variant))
    return scaling


def _near_misses(aas, endpoint: str, variant: str) -> str:
    """What is registered for ``endpoint`` under other ResourceIds or dimensions, and why it does not count."""
    found = [t for t in _pages(aas, "describe_scalable_targets", "ScalableTargets")
             if t["ResourceId"].split("/")[1:2] == [endpoint]]
    if not found:
        return (f"nothing is registered for endpoint {endpoint!r} in namespace {NAMESPACE!r}: call "
                f"register_scalable_target with ResourceId={resource_id(endpoint, variant)!r} and "
                f"ScalableDimension={DIMENSION!r}")
    notes = []
    for item in found:
        try:
            _, other = check_ids(item["ResourceId"], item["ScalableDimension"])
            notes.append(f"{item['ResourceId']} is registered: variant {other!r}, not {variant!r} (names are "
                         "case-sensitive; describe_endpoint lists the variants)")
        except AutoscalingError as exc:
            notes.append(str(exc))
    return "; ".join(notes)


# ---------------------------------------------------------------- a run's scaling configuration

def _pages(aas, operation: str, key: str, **params) -> list[dict]:
    """Every item of a describe_* call, page by page (AutoscalingError on a NextToken seen twice:
    moto 5.2.5 sends one after the second page of describe_scalable_targets)."""
    items, seen, token = [], set(), None
    while True:
        page = getattr(aas, operation)(ServiceNamespace=NAMESPACE, **params, **({"NextToken": token} if token else {}))
        items += page.get(key, [])
        token = page.get("NextToken")
        if not token:
            return items
        if token in seen:
            raise AutoscalingError(f"{operation} returned the NextToken {token!r} twice: the service (moto's paging "
                                   "is wrong after the second page) cannot list everything")
        seen.add(token)


def leftovers(aas, owner: Callable[[str], dict[str, str] | None]) -> list[Leftover]:
    """The scheduled actions, scaling policies and scalable targets of the SageMaker namespace (in
    that order, the order they are deleted in) whose endpoint ``owner`` claims: ``owner(endpoint
    name)`` gives the tags to report them with, or None for an endpoint that is not ours.

    They are found through the endpoints (ResourceId ``endpoint/<name>/…``, malformed variants
    included), not by tags of their own: Application Auto Scaling's tags are not available on
    every API version or emulator (moto 5.2.5 answers list_tags_for_resource with HTTP 500).
    A Leftover's ``name`` is the ResourceId, and ``<ResourceId>:<name>`` for a policy or an action.
    """
    def claimed(item: dict) -> dict[str, str] | None:
        parts = item["ResourceId"].split("/")
        return owner(parts[1]) if len(parts) > 1 and parts[0] == "endpoint" else None

    found = []
    for item in _pages(aas, "describe_scheduled_actions", "ScheduledActions"):
        if (tags := claimed(item)) is not None:
            s = _scheduled(item)
            found.append(Leftover("scheduled-action", f"{s.resource_id}:{s.name}", tags, s.created,
                                  detail=f"{s.schedule} → min {s.min_capacity}, max {s.max_capacity}"))
    for item in _pages(aas, "describe_scaling_policies", "ScalingPolicies"):
        if (tags := claimed(item)) is not None:
            p = _policy(item)
            about = f"{p.metric} at {p.target_value:g}" if p.target_value is not None else ""
            found.append(Leftover("scaling-policy", f"{p.resource_id}:{p.name}", tags, p.created,
                                  detail=" ".join(filter(None, [p.policy_type, about]))))
    for item in _pages(aas, "describe_scalable_targets", "ScalableTargets"):
        if (tags := claimed(item)) is not None:
            t = _target(item)
            found.append(Leftover("scalable-target", t.resource_id, tags, t.created,
                                  detail=f"{t.dimension} min {t.min_capacity}, max {t.max_capacity}"))
    return found


def delete(aas, kind: str, name: str) -> None:
    """Delete one leftover of :func:`leftovers` by its kind and name; one already gone is fine.
    Its dimension is looked up (a target registered under another dimension is deleted too)."""
    resource, _, short = name.partition(":")
    dimension = _dimension_of(aas, kind, resource, short)
    if dimension is None:
        return  # gone already
    keys = {"ServiceNamespace": NAMESPACE, "ResourceId": resource, "ScalableDimension": dimension}
    try:
        if kind == "scheduled-action":
            aas.delete_scheduled_action(ScheduledActionName=short, **keys)
        elif kind == "scaling-policy":
            aas.delete_scaling_policy(PolicyName=short, **keys)
        else:
            aas.deregister_scalable_target(**keys)
    except ClientError as exc:
        if not gone(exc):
            raise


def _dimension_of(aas, kind: str, resource: str, name: str) -> str | None:
    if kind == "scalable-target":
        items = aas.describe_scalable_targets(ServiceNamespace=NAMESPACE, ResourceIds=[resource])["ScalableTargets"]
    elif kind == "scaling-policy":
        items = [p for p in _pages(aas, "describe_scaling_policies", "ScalingPolicies", ResourceId=resource)
                 if p["PolicyName"] == name]
    else:
        items = [a for a in _pages(aas, "describe_scheduled_actions", "ScheduledActions", ResourceId=resource)
                 if a["ScheduledActionName"] == name]
    return items[0]["ScalableDimension"] if items else None


def gone(exc: ClientError) -> bool:
    """True when Application Auto Scaling says the thing to delete does not exist (AWS:
    ObjectNotFoundException; moto: a ValidationException "No scal… found")."""
    error = exc.response.get("Error", {})
    return error.get("Code") == "ObjectNotFoundException" or (
        error.get("Code") == "ValidationException" and error.get("Message", "").startswith("No scal"))
