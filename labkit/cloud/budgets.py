"""Lab 09's budgets and cost queries: an AWS budget and its notifications read back as data for
the checks, the run's budgets deleted by name, Cost Explorer answers seeded on moto from the
lab's own computed costs and the queries that reached it, and the GCP
billing budget request (sent only opted in).

What moto 5.2.5 does (server mode, measured with boto3 1.44.8): it stores budgets and
notifications, and spends nothing: no alert ever fires, and every cost figure a lab shows from
it was seeded by the lab, not billed.

=====================================  ===================================================================
call                                   moto 5.2.5
=====================================  ===================================================================
create_budget                          stored as given, NotificationsWithSubscribers too; ResourceTags
                                       accepted and dropped; no BudgetLimit: InvalidParameterException;
                                       a second one of the same name: DuplicateRecordException
describe_budget                        CalculatedSpend actual and forecasted always "0" USD; a missing
                                       one: NotFoundException
describe_budgets                       all of them, MaxResults and NextToken ignored
describe_notifications_for_budget      the notifications as sent; a missing budget: HTTP 500
create_notification                    added, even one equal to another (AWS refuses a duplicate)
describe_subscribers_for_notification  not implemented (HTTP 500), nor are create_subscriber,
                                       update_budget, update_notification and list_tags_for_resource;
                                       :func:`read_budget` replays moto's request log for the subscribers
get_cost_and_usage                     nothing unless seeded (:func:`seed_cost_and_usage`): a request
                                       takes the next queued answer, the same request body again gets
                                       the same answer, any other an empty ResultsByTime once the queue
                                       is empty; moto's reset forgets both
=====================================  ===================================================================
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

from botocore import xform_name

from ..core.errors import RequirementNotMet
from . import spend
from .aws_resources import budget_names, ignore_gone

GRANULARITIES = ("MONTHLY", "DAILY")


@dataclass(frozen=True)
class Subscriber:
    type: str  # EMAIL or SNS
    address: str


@dataclass(frozen=True)
class Notification:
    """One alert of a budget: ``type`` ACTUAL or FORECASTED, ``comparison`` GREATER_THAN,
    LESS_THAN or EQUAL_TO, ``threshold`` in percent of the limit (``threshold_type`` PERCENTAGE)
    or in the limit's unit (ABSOLUTE_VALUE); ``subscribers`` who get it."""
    type: str
    comparison: str
    threshold: float
    threshold_type: str
    subscribers: tuple[Subscriber, ...] | None  # None: not readable here (see read_budget)


@dataclass(frozen=True)
class Budget:
    """An AWS budget as the service holds it; the spends are what it computed (always 0 on moto)."""
    name: str
    limit: float | None
    unit: str | None
    time_unit: str
    budget_type: str
    cost_filters: dict[str, tuple[str, ...]] = field(hash=False)
    notifications: tuple[Notification, ...]
    actual_spend: float | None
    forecasted_spend: float | None

    def notifications_of(self, kind: str) -> list[Notification]:
        """Its notifications of ``kind`` (ACTUAL or FORECASTED)."""
        return [n for n in self.notifications if n.type == kind]


def _spend(calculated: Mapping, key: str) -> float | None:
    amount = (calculated.get(key) or {}).get("Amount")
    return None if amount is None else float(amount)


def read_budget(client, account_id: str, name: str, *, moto=None) -> Budget:
    """The budget ``name`` of ``account_id`` with its notifications and their subscribers, through
    a Budgets ``client``; RequirementNotMet (naming the budgets there are) when there is none.

    On the emulator pass its handle as ``moto``: moto 5.2.5 has no DescribeSubscribersForNotification,
    so the subscribers come from its request log, replayed as moto applies it (:func:`_moto_subscribers`).
    Where that log is out of reach (a graded student's kernel: the grader keeps it for the checks),
    each notification's ``subscribers`` is None: unknown here, not empty."""
    try:
        raw = client.describe_budget(AccountId=account_id, BudgetName=name)["Budget"]
    except client.exceptions.NotFoundException:
        names = ", ".join(budget_names(client, account_id)) or "none"
        raise RequirementNotMet(f"account {account_id} has no budget {name!r} (its budgets: {names}): create it "
                                "with create_budget, its notifications in NotificationsWithSubscribers") from None
    pages = client.get_paginator("describe_notifications_for_budget").paginate(AccountId=account_id, BudgetName=name)
    raws = [n for page in pages for n in page.get("Notifications", [])]
    unreadable = moto is not None and moto.recording is None
    logged = _moto_subscribers(moto, account_id, name) if moto is not None and not unreadable else None
    notifications = []
    for n in raws:
        if unreadable:
            subs = None
        elif logged is None:
            pages = client.get_paginator("describe_subscribers_for_notification").paginate(
                AccountId=account_id, BudgetName=name, Notification=n)
            subs = [s for page in pages for s in page.get("Subscribers", [])]
        else:
            subs = next((s for details, s in logged if details == n), [])
        notifications.append(Notification(
            n["NotificationType"], n["ComparisonOperator"], float(n["Threshold"]), n.get("ThresholdType", "PERCENTAGE"),
            None if subs is None else tuple(Subscriber(s["SubscriptionType"], s["Address"]) for s in subs)))
    limit, calculated = raw.get("BudgetLimit") or {}, raw.get("CalculatedSpend") or {}
    return Budget(raw["BudgetName"], float(limit["Amount"]) if "Amount" in limit else None, limit.get("Unit"),
                  raw["TimeUnit"], raw["BudgetType"],
                  {key: tuple(values) for key, values in (raw.get("CostFilters") or {}).items()},
                  tuple(notifications), _spend(calculated, "ActualSpend"), _spend(calculated, "ForecastedSpend"))


def _logged(moto) -> Iterator[tuple[str, str, object]]:
    """(url, action, JSON body or None when the body is not JSON) of each request in the emulator's
    log, oldest first; the action is the operation its X-Amz-Target header names ("" for none)."""
    for request in moto.requests():
        headers = {k.lower(): v for k, v in (request.get("headers") or {}).items()}
        try:
            body = json.loads(request["body"] or b"{}")
        except ValueError:
            body = None
        yield request.get("url", ""), headers.get("x-amz-target", "").rpartition(".")[2], body


def _moto_subscribers(moto, account_id: str, name: str) -> list[tuple[dict, list[dict]]]:
    """(notification, subscribers) of budget ``name`` as moto holds them, from moto's request
    log: a reset forgets every budget, CreateBudget makes one that is not there yet (with a limit),
    DeleteBudget removes it, CreateNotification adds one, DeleteNotification removes those equal."""
    held: list[tuple[dict, list[dict]]] | None = None
    for url, action, body in _logged(moto):
        if url.endswith("/moto-api/reset"):
            held = None
            continue
        if not isinstance(body, dict) or body.get("AccountId") != account_id:
            continue
        if action == "CreateBudget":
            budget = body.get("Budget") or {}
            if held is None and budget.get("BudgetName") == name and {"BudgetLimit", "PlannedBudgetLimits"} & set(budget):
                held = [(n["Notification"], n["Subscribers"]) for n in body.get("NotificationsWithSubscribers", [])]
        elif held is not None and body.get("BudgetName") == name:
            if action == "DeleteBudget":
                held = None
            elif action == "CreateNotification":
                held.append((body["Notification"], body["Subscribers"]))
            elif action == "DeleteNotification":
                held = [(details, subs) for details, subs in held if details != body["Notification"]]
    return held or []


def delete_budgets(client, account_id: str, prefix: str) -> list[str]:
    """Delete every budget of ``account_id`` whose name starts with ``prefix`` (a run's:
    ``labkit-09-…-<run>`` names, see :func:`labkit.cloud.aws.name`) and return their names; one
    already gone is fine. A budget left behind goes on sending its alerts."""
    if not prefix:
        raise ValueError("give a name prefix (the run's budgets), not an empty one: it would delete every budget")
    names = [n for n in budget_names(client, account_id) if n.startswith(prefix)]
    for budget in names:
        ignore_gone(lambda budget=budget: client.delete_budget(AccountId=account_id, BudgetName=budget))
    return names


# ---------------------------------------------------------------- Cost Explorer on the emulator

def _period(key: str, granularity: str) -> tuple[str, str]:
    try:
        if granularity == "MONTHLY":
            start = date.fromisoformat(f"{key}-01")
            end = (start + timedelta(days=32)).replace(day=1)
        else:
            start = date.fromisoformat(key)
            end = start + timedelta(days=1)
    except ValueError:
        shape = "YYYY-MM" if granularity == "MONTHLY" else "YYYY-MM-DD"
        raise ValueError(f"period {key!r} is not a {granularity} period: write it {shape}") from None
    return start.isoformat(), end.isoformat()


def cost_and_usage_result(costs: Mapping[str, Mapping[str, float]], tag_key: str, granularity: str = "MONTHLY",
                          *, metric: str = "UnblendedCost") -> dict:
    """A GetCostAndUsage answer grouped by the tag ``tag_key``, from ``costs``: {period: {tag value:
    USD}}, periods "YYYY-MM" (MONTHLY) or "YYYY-MM-DD" (DAILY). Shaped as Cost Explorer answers:
    one ResultsByTime entry per period (End exclusive), groups keyed "<tag key>$<value>" (an empty
    value is cost without the tag), amounts as strings in USD, Total empty as in a grouped answer.
    The figures are the lab's, for :func:`seed_cost_and_usage`: seeded, never billed."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity {granularity!r}: use one of {', '.join(GRANULARITIES)}")
    results = []
    for key in sorted(costs):
        start, end = _period(key, granularity)
        groups = [{"Keys": [f"{tag_key}${value}"], "Metrics": {metric: {"Amount": f"{float(usd):.10f}", "Unit": "USD"}}}
                  for value, usd in sorted(costs[key].items())]
        results.append({"TimePeriod": {"Start": start, "End": end}, "Total": {}, "Groups": groups, "Estimated": False})
    return {"GroupDefinitions": [{"Type": "TAG", "Key": tag_key}], "ResultsByTime": results,
            "DimensionValueAttributes": []}


def seed_cost_and_usage(moto, results: list[dict]) -> None:
    """Queue ``results`` (from :func:`cost_and_usage_result`) as the emulator's next GetCostAndUsage
    answers: each new request takes the next one, and the same request again gets the same one
    (moto's ``/moto-api/static/ce/cost-and-usage-results``). ``moto`` is its URL or handle. What
    a query then returns was seeded by the lab, not billed: moto tracks no cost at all."""
    url = moto if isinstance(moto, str) else moto.url
    request = urllib.request.Request(f"{url}/moto-api/static/ce/cost-and-usage-results",
                                     json.dumps({"results": results}).encode(),
                                     {"Content-Type": "application/json"}, method="POST")
    urllib.request.urlopen(request, timeout=5).close()


def cost_queries(moto) -> list[dict]:
    """The parameters of every GetCostAndUsage request the emulator answered, oldest first (from
    its request log): what a student's function asked Cost Explorer, read where the checks run,
    which never share the student's client."""
    return [body if body is not None else {} for _, action, body in _logged(moto) if action == "GetCostAndUsage"]


# ---------------------------------------------------------------- GCP billing budgets

def gcp_budget_rules(budget) -> list[tuple[float, str]]:
    """(threshold_percent, spend basis) of each threshold rule of a ``budgets_v1.Budget``, in
    order. threshold_percent is 1.0-based (0.9 is 90 %); an unset basis is CURRENT_SPEND, as the
    API treats it (the other is FORECASTED_SPEND)."""
    rules = []
    for rule in budget.threshold_rules:
        basis = rule.spend_basis.name
        rules.append((rule.threshold_percent, "CURRENT_SPEND" if basis == "BASIS_UNSPECIFIED" else basis))
    return rules


def create_gcp_budget(budget, billing_account: str, *, confirm_spend: bool, credentials_reason: str | None):
    """Send ``budget`` (a ``budgets_v1.Budget``) to the billing account ``billing_account``
    ("012345-6789AB-CDEF01" or "billingAccounts/…") and return it as created (its ``name`` deletes
    it: ``BudgetServiceClient().delete_budget(name=...)``). Refuses (SpendNotConfirmed) unless the
    student opted in: it changes a real billing account, and needs billing.budgets.create on it
    (Billing Account Administrator or Billing Account Costs Manager)."""
    parent = billing_account if billing_account.startswith("billingAccounts/") else f"billingAccounts/{billing_account}"
    spend.require_opt_in(f"GCP billing account {parent}", confirm_spend=confirm_spend,
                         credentials_reason=credentials_reason)
    from google.cloud.billing import budgets_v1
    return budgets_v1.BudgetServiceClient().create_budget(parent=parent, budget=budget)
