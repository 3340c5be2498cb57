"""Lab 08's SageMaker side: a blue/green endpoint update with canary traffic shifting and an
automatic rollback on CloudWatch alarms the student defines, checked before it is sent; the move
of traffic between two variants, which the emulator can show; the update itself where allowed.

What runs where:

- Here, without any service: :func:`blue_green_request` builds the ``UpdateEndpoint``
  parameters, :func:`request_problems` checks them against botocore's own model of the API and
  SageMaker's documented rules, :func:`plan` says in words what the deployment will do.
- On moto and on AWS alike: the rollback alarms (:mod:`labkit.cloud.alarms`) and the variants'
  weights (:func:`shift_traffic`, :func:`variants`). moto never evaluates an alarm (nothing trips,
  nothing rolls back there) and moves the weights at once. The emulator's blue and green are two
  variants of one endpoint whose weights move as a canary moves the traffic; a real blue/green
  update instead starts a new fleet for the new endpoint config and retires the old one.
- On an opted-in account only: :func:`update`, the blue/green deployment. moto 5.2.5 has no
  UpdateEndpoint; on the emulator :func:`update` checks the request, then refuses, saying so.

SageMaker's rules, from the API reference (UpdateEndpoint, BlueGreenUpdatePolicy,
TrafficRoutingConfig, AutoRollbackConfig; the same text is in botocore's model) and the developer
guide ("Use canary traffic shifting", "Auto-Rollback Configuration and Monitoring"): the canary
is at most 50 % of the new fleet, a linear step 10-50 %; WaitIntervalInSeconds and
TerminationWaitInSeconds are 0-3600; MaximumExecutionTimeoutInSeconds is 600-28800 and "should be
larger than the total waiting time" of those two; AutoRollbackConfiguration names 1-10 alarms;
RetainAllVariantProperties keeps the endpoint's current weights and instance counts instead of
the new configuration's. botocore's validator checks required members, names, types and minimums
only (``botocore.validate.range_check`` has no maximum), so maximums, enums and patterns are
read here from the same model.

What moto 5.2.5 does (server mode, measured with boto3 1.44.8; CloudWatch's rows are in
:mod:`labkit.cloud.alarms`):

==================================================  ===========================================================
call                                                moto 5.2.5
==================================================  ===========================================================
update_endpoint (any parameters, any endpoint)      HTTP 500: not implemented; the endpoint is left as it was
update_endpoint_weights_and_capacities              current = desired at once, InService right after; a field
                                                    the call leaves out is stored as absent (a weight-only call
                                                    drops the variant's instance count, and the other way
                                                    round); an unknown or repeated variant, an unknown
                                                    endpoint: ValidationException; all weights 0: accepted
create_endpoint_config, InitialVariantWeight 0      the endpoint shows that variant without a weight (0 is
                                                    taken for "not set")
==================================================  ===========================================================
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache

from botocore.loaders import create_loader
from botocore.model import ServiceModel
from botocore.validate import ParamValidator

from ..core.errors import LabkitError, RequirementNotMet
from ..core.waiting import wait_until
from .alarms import alarm_problems
from .emulators import EmulatorError

MAX_CANARY_PERCENT = 50
LINEAR_PERCENT = (10, 50)
#: Endpoint states an update passes through; SageMaker refuses another update until it leaves them.
SETTLING = ("Creating", "Updating", "SystemUpdating", "RollingBack")
NOT_ON_EMULATOR = (
    "the blue/green update does not run on the emulator: moto 5.2.5 has no UpdateEndpoint (it answers HTTP 500, "
    "measured), so the canary, the baking period and the rollback happen only on a real account "
    "(aws.target('aws', lab=..., confirm_spend=True)). The request itself passed request_problems. On the "
    "emulator, shift_traffic() shows traffic moving from the blue variant to the green one.")
_BOTOCORE_RANGE = ("Invalid value for parameter", "Invalid length for parameter")  # said better by _limits


class BlueGreenError(LabkitError):
    """A request SageMaker would refuse, a variant that is not there, or an update that did not settle."""


@cache
def _input_shape():
    """UpdateEndpoint's input shape, from the sagemaker model that ships inside botocore (no network)."""
    model = ServiceModel(create_loader().load_service_model("sagemaker", "service-2"), "sagemaker")
    return model.operation_model("UpdateEndpoint").input_shape


def _at(value, *keys):
    """``value[k1][k2]…`` through mappings only; None where a key is missing or a value is not a mapping."""
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


# ---------------------------------------------------------------- the request

def blue_green_request(endpoint: str, new_config: str, *, alarms: Sequence[str] | str,
                       canary_percent: int | None = 10, wait_s: int = 300, termination_wait_s: int = 600,
                       max_timeout_s: int = 1800, retain_all_variant_properties: bool = True) -> dict:
    """The parameters of ``sagemaker.update_endpoint(**params)`` that move ``endpoint`` to the
    endpoint configuration ``new_config`` blue/green: first ``canary_percent`` % of the new
    fleet takes traffic (None: all at once), ``wait_s`` seconds of baking with the ``alarms``
    watching, then the rest; the old fleet stays ``termination_wait_s`` more seconds; the whole
    deployment at most ``max_timeout_s``. Built as asked, never corrected: :func:`request_problems`
    says what SageMaker would refuse."""
    routing = {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": wait_s}
    if canary_percent is not None:
        routing = {"Type": "CANARY", "WaitIntervalInSeconds": wait_s,
                   "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": canary_percent}}
    names = [alarms] if isinstance(alarms, str) else list(alarms)
    return {"EndpointName": endpoint, "EndpointConfigName": new_config,
            "RetainAllVariantProperties": retain_all_variant_properties,
            "DeploymentConfig": {
                "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": routing,
                                          "TerminationWaitInSeconds": termination_wait_s,
                                          "MaximumExecutionTimeoutInSeconds": max_timeout_s},
                "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": name} for name in names]}}}


def request_problems(params: Mapping, *, instances: int | None = None) -> list[str]:
    """What SageMaker would refuse in an UpdateEndpoint request, one sentence each (empty: none).

    botocore's validator (missing and unknown members, types), then every range, enum and pattern
    of the model, then SageMaker's rules across fields. ``instances``, the new fleet's instance
    count, lets a canary or linear step given as INSTANCE_COUNT be checked too.
    """
    shape = _input_shape()
    report = ParamValidator().validate(dict(params), shape).generate_report()
    problems = [line for line in report.splitlines() if line and not line.startswith(_BOTOCORE_RANGE)]
    return problems + _limits(params, shape, "") + _rules(params, instances)


def _outside(what: str, value, meta: dict, unit: str = "") -> list[str]:
    low, high = meta.get("min"), meta.get("max")
    if (low is None or value >= low) and (high is None or value <= high):
        return []
    allowed = (f"{low} to {high}" if low is not None and high is not None
               else f"at least {low}" if low is not None else f"at most {high}")
    return [f"{what}: SageMaker takes {allowed}{unit}"]


def _limits(value, shape, path: str) -> list[str]:
    """Every min, max, enum and pattern of the model that ``value`` breaks (wrong types are botocore's)."""
    meta, kind = shape.metadata, shape.type_name
    if kind == "structure" and isinstance(value, Mapping):
        return [p for key, item in value.items() if key in shape.members
                for p in _limits(item, shape.members[key], f"{path}.{key}" if path else key)]
    if kind == "list" and isinstance(value, (list, tuple)):
        found = _outside(f"{path} has {len(value)} item(s)", len(value), meta, " items")
        return found + [p for i, item in enumerate(value) for p in _limits(item, shape.member, f"{path}[{i}]")]
    if kind in ("integer", "long", "float", "double") and isinstance(value, (int, float)) \
            and not isinstance(value, bool):
        return _outside(f"{path} is {value}", value, meta)
    if kind == "string" and isinstance(value, str):
        if shape.enum and value not in shape.enum:
            return [f"{path} is {value!r}: it is one of {', '.join(shape.enum)}"]
        if "pattern" in meta and not re.fullmatch(meta["pattern"], value):
            return [f"{path} {value!r} does not match SageMaker's pattern {meta['pattern']}"]
        return _outside(f"{path} {value!r} has {len(value)} characters", len(value), meta, " characters")
    return []


def _percent(size: Mapping, instances: int | None) -> float | None:
    """A CapacitySize as a percentage of the new fleet (None when it cannot be known here)."""
    if not isinstance(size.get("Value"), int):
        return None
    if size.get("Type") == "CAPACITY_PERCENT":
        return size["Value"]
    return 100 * size["Value"] / instances if size.get("Type") == "INSTANCE_COUNT" and instances else None


def _rules(params: Mapping, instances: int | None) -> list[str]:
    config, found = params.get("DeploymentConfig"), []
    if not isinstance(config, Mapping):
        return []
    if "BlueGreenUpdatePolicy" in config and "RollingUpdatePolicy" in config:
        found.append("DeploymentConfig has both BlueGreenUpdatePolicy and RollingUpdatePolicy: SageMaker uses one "
                     "update policy; keep BlueGreenUpdatePolicy for a blue/green update")
    routing = _at(config, "BlueGreenUpdatePolicy", "TrafficRoutingConfiguration") or {}
    kind = _at(routing, "Type")
    key = {"CANARY": "CanarySize", "LINEAR": "LinearStepSize"}.get(kind)
    size = _at(routing, key) if key else None
    percent = _percent(size, instances) if isinstance(size, Mapping) else None
    where = "DeploymentConfig.BlueGreenUpdatePolicy.TrafficRoutingConfiguration"
    if key and size is None:
        found.append(f"{where} has Type {kind} but no {key}: say how much of the new fleet takes traffic per step")
    elif kind == "CANARY" and percent is not None and percent > MAX_CANARY_PERCENT:
        found.append(f"{where}.CanarySize is {percent:g} % of the new fleet: the canary is at most "
                     f"{MAX_CANARY_PERCENT} % (the rest of the traffic shifts after the baking period)")
    elif kind == "LINEAR" and percent is not None and not LINEAR_PERCENT[0] <= percent <= LINEAR_PERCENT[1]:
        found.append(f"{where}.LinearStepSize is {percent:g} % of the new fleet: a linear step is "
                     f"{LINEAR_PERCENT[0]} to {LINEAR_PERCENT[1]} %")
    if "AutoRollbackConfiguration" in config and _at(config, "AutoRollbackConfiguration", "Alarms") is None:
        found.append("DeploymentConfig.AutoRollbackConfiguration names no Alarms: without alarms nothing can trip "
                     "and nothing rolls back; name 1 to 10 CloudWatch alarms that watch the endpoint")
    return found + _timeout(config, routing, percent)


def _timeout(config: Mapping, routing: Mapping, percent: float | None) -> list[str]:
    """MaximumExecutionTimeoutInSeconds against the waits it has to cover (a lower bound of them)."""
    policy = _at(config, "BlueGreenUpdatePolicy") or {}
    timeout, wait = _at(policy, "MaximumExecutionTimeoutInSeconds"), _at(routing, "WaitIntervalInSeconds")
    termination = _at(policy, "TerminationWaitInSeconds") or 0
    if not all(isinstance(v, int) for v in (timeout, wait, termination)):
        return []
    # a linear shift in steps of p % takes ceil(100/p) steps, with a wait between each two
    bakes = max(1, math.ceil(100 / percent) - 1) if _at(routing, "Type") == "LINEAR" and percent else 1
    waits = termination + bakes * wait
    if timeout > waits:
        return []
    spelled = f"{bakes} × {wait}" if bakes > 1 else f"{wait}"
    return [f"DeploymentConfig.BlueGreenUpdatePolicy.MaximumExecutionTimeoutInSeconds is {timeout} s, not longer "
            f"than the {waits} s the deployment waits (WaitIntervalInSeconds {spelled} + TerminationWaitInSeconds "
            f"{termination}): SageMaker wants the timeout longer than the waits, with time left to start the new "
            "fleet"]


def plan(params: Mapping) -> str:
    """What the request asks SageMaker to do, in one sentence (for a notebook to print)."""
    routing = _at(params, "DeploymentConfig", "BlueGreenUpdatePolicy", "TrafficRoutingConfiguration") or {}
    policy = _at(params, "DeploymentConfig", "BlueGreenUpdatePolicy") or {}
    size = _at(routing, "CanarySize") or _at(routing, "LinearStepSize") or {}
    step = f"{size.get('Value')}{' %' if size.get('Type') == 'CAPACITY_PERCENT' else ' instance(s)'}"
    shift = {"CANARY": f"{step} of the new fleet takes traffic first, then the rest",
             "LINEAR": f"traffic moves in steps of {step}"}.get(routing.get("Type"), "all traffic moves at once")
    alarms = [a.get("AlarmName") for a in _at(params, "DeploymentConfig", "AutoRollbackConfiguration", "Alarms") or []]
    return (f"endpoint {params.get('EndpointName')} → config {params.get('EndpointConfigName')}: {shift}, "
            f"{routing.get('WaitIntervalInSeconds')} s of baking with the alarms watching"
            + (f" (rolled back if {', '.join(map(str, alarms))} trips)" if alarms else " (no alarm: no rollback)")
            + f"; the old fleet is kept {policy.get('TerminationWaitInSeconds', 0)} s more; at most "
            f"{policy.get('MaximumExecutionTimeoutInSeconds', '?')} s in all; "
            + ("the endpoint's weights and instance counts are kept" if params.get("RetainAllVariantProperties")
               else "weights and instance counts come from the new configuration"))


# ---------------------------------------------------------------- the variants' weights

@dataclass(frozen=True)
class Variant:
    """A production variant as describe_endpoint gives it (None: the service shows no value)."""
    name: str
    weight: float | None
    instances: int | None
    desired_weight: float | None = None
    desired_instances: int | None = None


def _variants(described: dict) -> tuple[Variant, ...]:
    return tuple(Variant(v["VariantName"], v.get("CurrentWeight"), v.get("CurrentInstanceCount"),
                         v.get("DesiredWeight"), v.get("DesiredInstanceCount"))
                 for v in described["ProductionVariants"])


def variants(sagemaker, endpoint: str) -> tuple[Variant, ...]:
    return _variants(sagemaker.describe_endpoint(EndpointName=endpoint))


def traffic_shares(found: Sequence[Variant]) -> dict[str, float]:
    """Each variant's share of the requests (its weight over the sum of the weights)."""
    missing = [v.name for v in found if v.weight is None]
    if missing:
        raise RequirementNotMet(f"variant(s) {', '.join(missing)} show no weight (moto 5.2.5 takes an "
                                "InitialVariantWeight of 0 for 'not set'): give every variant its weight with "
                                "shift_traffic")
    total = sum(v.weight for v in found)
    return {v.name: (v.weight / total if total else 0.0) for v in found}


def shift_traffic(target, endpoint: str, weights: Mapping[str, float], *,
                  instances: Mapping[str, int] | None = None) -> tuple[Variant, ...]:
    """Set the weights of ``endpoint``'s variants (``{"blue": 0.9, "green": 0.1}``) with
    update_endpoint_weights_and_capacities, wait until the endpoint is InService again, and
    return the variants as read back. Every variant named is sent with its weight and its instance
    count (``instances``, else the count it has now): moto forgets a field a call leaves out."""
    before = {v.name: v for v in variants(target.sagemaker, endpoint)}
    unknown = sorted(set(weights) - set(before))
    if unknown:
        raise BlueGreenError(f"endpoint {endpoint} has no variant {', '.join(unknown)}: its variants are "
                             f"{', '.join(before)} (names are case-sensitive)")
    counts = {name: (instances or {}).get(name, before[name].instances) for name in weights}
    if lost := [name for name, count in counts.items() if count is None]:
        raise BlueGreenError(f"variant(s) {', '.join(lost)} show no instance count to keep (moto drops it when a "
                             f"call leaves it out): pass instances={{{lost[0]!r}: 1}}")
    target.sagemaker.update_endpoint_weights_and_capacities(EndpointName=endpoint, DesiredWeightsAndCapacities=[
        {"VariantName": name, "DesiredWeight": float(weight), "DesiredInstanceCount": counts[name]}
        for name, weight in weights.items()])
    return settled(target, endpoint).variants


# ---------------------------------------------------------------- the update, on a real account

@dataclass(frozen=True)
class EndpointState:
    """An endpoint that has settled: its status, the endpoint config it runs, and its variants."""
    name: str
    status: str
    config: str
    failure_reason: str | None
    variants: tuple[Variant, ...]


def settled(target, endpoint: str, timeout_s: float | None = None) -> EndpointState:
    """The endpoint once it is in no state of :data:`SETTLING` (every ``target.poll_s`` seconds,
    at most ``timeout_s``, by default ``target.settle_s``)."""
    def state() -> EndpointState | None:
        d = target.sagemaker.describe_endpoint(EndpointName=endpoint)
        if d["EndpointStatus"] in SETTLING:
            print(f"endpoint {endpoint} is {d['EndpointStatus']} ({d['EndpointConfigName']})")
            return None
        return EndpointState(endpoint, d["EndpointStatus"], d["EndpointConfigName"], d.get("FailureReason"),
                             _variants(d))

    return wait_until(state, timeout=timeout_s or target.settle_s, every=target.poll_s, error=BlueGreenError,
                      what=f"endpoint {endpoint} to leave {'/'.join(SETTLING)}")


def update(target, params: Mapping) -> EndpointState:
    """Run the blue/green update on ``target`` and wait for its end; a real account only.

    The request is checked first (:func:`request_problems`; BlueGreenError listing them); on the
    emulator EmulatorError with :data:`NOT_ON_EMULATOR` follows, before anything is sent; on AWS
    the alarms must exist and watch the endpoint (:func:`alarm_problems`). The wait lasts at most
    MaximumExecutionTimeoutInSeconds plus ``target.settle_s``. The result says which config runs:
    the old one after a rollback.
    """
    problems = request_problems(params)
    if problems:
        raise BlueGreenError("SageMaker would refuse this UpdateEndpoint request:\n- " + "\n- ".join(problems))
    if target.kind != "aws":
        raise EmulatorError(NOT_ON_EMULATOR)
    if problems := alarm_problems(target.client("cloudwatch"), params):
        raise BlueGreenError("the rollback alarms are not ready:\n- " + "\n- ".join(problems))
    print(plan(params))
    target.sagemaker.update_endpoint(**params)
    timeout = (_at(params, "DeploymentConfig", "BlueGreenUpdatePolicy", "MaximumExecutionTimeoutInSeconds") or 0)
    state = settled(target, params["EndpointName"], timeout + target.settle_s)
    if state.config != params["EndpointConfigName"]:
        print(f"endpoint {state.name} runs {state.config}, not {params['EndpointConfigName']}: the update was rolled "
              f"back or failed ({state.status}{': ' + state.failure_reason if state.failure_reason else ''})")
    return state
