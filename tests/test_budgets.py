"""labkit.budgets on the shared moto server (and botocore's Stubber for what only AWS answers): a
budget's notifications and subscribers read back as data, a missing budget's message, deletion
by prefix and by the sweep, Cost Explorer answers seeded and returned in moto's order, the
queries read from the emulator's log, and the GCP budget's rules and its opt-in gate."""

import dataclasses

import boto3
import pytest
from botocore.stub import Stubber

from labkit import aws, budgets, spend
from labkit.cloud import aws_resources
from labkit.core.errors import RequirementNotMet

ACCOUNT = "123456789012"
NAME = "labkit-09-monthly-r20261205-101500-ab12"
EMAIL = {"SubscriptionType": "EMAIL", "Address": "ops@example.com"}
SNS = {"SubscriptionType": "SNS", "Address": f"arn:aws:sns:us-east-1:{ACCOUNT}:budget-alerts"}
ACTUAL = {"NotificationType": "ACTUAL", "ComparisonOperator": "GREATER_THAN", "Threshold": 80.0,
          "ThresholdType": "PERCENTAGE"}
FORECASTED = {"NotificationType": "FORECASTED", "ComparisonOperator": "GREATER_THAN", "Threshold": 100.0,
              "ThresholdType": "PERCENTAGE"}


@pytest.fixture(autouse=True)
def empty(moto):
    """A clean emulator per test (the shared ``moto`` fixture resets it)."""


def _create(client, name=NAME, notifications=((ACTUAL, [EMAIL, SNS]), (FORECASTED, [EMAIL])), **budget):
    """What lab 09's solution sends: a monthly cost budget on the lab's tag, with its alerts."""
    client.create_budget(AccountId=ACCOUNT, Budget={
        "BudgetName": name, "BudgetLimit": {"Amount": "25", "Unit": "USD"}, "TimeUnit": "MONTHLY",
        "BudgetType": "COST", "CostFilters": {"TagKeyValue": ["user:labkit-lab$09"]}, **budget},
        NotificationsWithSubscribers=[{"Notification": n, "Subscribers": s} for n, s in notifications])


# --- budgets read back ----------------------------------------------------------------------------

def test_budget_with_two_notifications_reads_back_with_its_subscribers(moto):
    client = moto.client("budgets")
    _create(client)
    budget = budgets.read_budget(client, ACCOUNT, NAME, moto=moto)
    assert (budget.name, budget.limit, budget.unit, budget.time_unit, budget.budget_type) == (
        NAME, 25.0, "USD", "MONTHLY", "COST")
    assert budget.cost_filters == {"TagKeyValue": ("user:labkit-lab$09",)}
    assert (budget.actual_spend, budget.forecasted_spend) == (0.0, 0.0)  # moto never spends
    email, sns = budgets.Subscriber("EMAIL", "ops@example.com"), budgets.Subscriber("SNS", SNS["Address"])
    assert budget.notifications_of("ACTUAL") == [budgets.Notification("ACTUAL", "GREATER_THAN", 80.0, "PERCENTAGE",
                                                                       (email, sns))]
    assert budget.notifications_of("FORECASTED") == [budgets.Notification("FORECASTED", "GREATER_THAN", 100.0,
                                                                           "PERCENTAGE", (email,))]


def test_subscribers_follow_what_moto_applied(moto):
    """Replayed from moto's log: a duplicate create and a budget without a limit change nothing,
    notifications added and removed count, a reset and a deletion forget the earlier budget."""
    client = moto.client("budgets")
    _create(client, notifications=[(ACTUAL, [SNS])])
    moto.reset()
    _create(client, notifications=[(ACTUAL, [EMAIL])])
    with pytest.raises(client.exceptions.DuplicateRecordException):
        _create(client, notifications=[(ACTUAL, [SNS])])
    client.create_notification(AccountId=ACCOUNT, BudgetName=NAME, Notification=FORECASTED, Subscribers=[SNS])
    read = budgets.read_budget(client, ACCOUNT, NAME, moto=moto)
    assert [(n.type, [s.type for s in n.subscribers]) for n in read.notifications] == [
        ("ACTUAL", ["EMAIL"]), ("FORECASTED", ["SNS"])]
    client.delete_notification(AccountId=ACCOUNT, BudgetName=NAME, Notification=ACTUAL)
    client.delete_budget(AccountId=ACCOUNT, BudgetName=NAME)
    _create(client, notifications=[(FORECASTED, [EMAIL])])
    read = budgets.read_budget(client, ACCOUNT, NAME, moto=moto)
    assert [(n.type, [s.address for s in n.subscribers]) for n in read.notifications] == [
        ("FORECASTED", ["ops@example.com"])]


def test_where_the_emulators_log_is_out_of_reach_the_subscribers_are_unknown_not_empty(moto):
    client = moto.client("budgets")
    _create(client)
    graded_student = dataclasses.replace(moto, recording=None)  # what a graded student's kernel holds
    budget = budgets.read_budget(client, ACCOUNT, NAME, moto=graded_student)
    assert [n.subscribers for n in budget.notifications] == [None, None]
    assert [n.threshold for n in budget.notifications] == [80.0, 100.0]


def test_a_missing_budget_names_the_budgets_there_are(moto):
    client = moto.client("budgets")
    _create(client, name="labkit-09-other-r1")
    with pytest.raises(RequirementNotMet, match=r"no budget 'labkit-09-monthly.*labkit-09-other-r1.*create_budget"):
        budgets.read_budget(client, ACCOUNT, NAME, moto=moto)


def test_on_aws_the_subscribers_come_from_describe_subscribers_for_notification():
    client = boto3.client("budgets", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    raw = {"BudgetName": NAME, "BudgetLimit": {"Amount": "25.0", "Unit": "USD"}, "TimeUnit": "MONTHLY",
           "BudgetType": "COST", "CalculatedSpend": {"ActualSpend": {"Amount": "3.2", "Unit": "USD"}}}
    with Stubber(client) as stub:
        stub.add_response("describe_budget", {"Budget": raw}, {"AccountId": ACCOUNT, "BudgetName": NAME})
        stub.add_response("describe_notifications_for_budget", {"Notifications": [ACTUAL]},
                          {"AccountId": ACCOUNT, "BudgetName": NAME})
        stub.add_response("describe_subscribers_for_notification", {"Subscribers": [EMAIL]},
                          {"AccountId": ACCOUNT, "BudgetName": NAME, "Notification": ACTUAL})
        budget = budgets.read_budget(client, ACCOUNT, NAME)
        stub.assert_no_pending_responses()
    assert budget.notifications[0].subscribers == (budgets.Subscriber("EMAIL", "ops@example.com"),)
    assert (budget.cost_filters, budget.actual_spend, budget.forecasted_spend) == ({}, 3.2, None)


# --- cleanup ----------------------------------------------------------------------------------------

def test_delete_budgets_removes_only_the_runs(moto):
    client = moto.client("budgets")
    for name in (NAME, "labkit-09-daily-r20261205-101500-ab12", "labkit-09-monthly-r20261101-090000-ffff", "team"):
        _create(client, name=name, notifications=[])
    assert sorted(budgets.delete_budgets(client, ACCOUNT, "labkit-09-monthly-r20261205")) == [NAME]
    assert budgets.delete_budgets(client, ACCOUNT, "labkit-09-monthly-r20261205") == []
    assert sorted(aws_resources.budget_names(client, ACCOUNT)) == [
        "labkit-09-daily-r20261205-101500-ab12", "labkit-09-monthly-r20261101-090000-ffff", "team"]
    with pytest.raises(ValueError, match="empty"):
        budgets.delete_budgets(client, ACCOUNT, "")


def test_sweep_finds_tagged_budgets_where_tags_can_be_read():
    client = boto3.client("budgets", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    names = {"Budgets": [{"BudgetName": n, "TimeUnit": "MONTHLY", "BudgetType": "COST"}
                         for n in (NAME, "labkit-07-x-r1", "team")]}
    tags = {NAME: [{"Key": "labkit-lab", "Value": "09"}, {"Key": "labkit-run", "Value": "r1"}], "labkit-07-x-r1": []}
    with Stubber(client) as stub:
        stub.add_response("describe_budgets", names, {"AccountId": ACCOUNT})
        for name, tag_list in tags.items():
            stub.add_response("list_tags_for_resource", {"ResourceTags": tag_list},
                              {"ResourceARN": f"arn:aws:budgets::{ACCOUNT}:budget/{name}"})
        found = aws_resources.budget_leftovers(client, ACCOUNT, None)
        stub.assert_no_pending_responses()
    assert [(f.kind, f.name, f.lab, f.run) for f in found] == [("budget", NAME, "09", "r1")]


def test_sweep_on_moto_leaves_budgets_out_with_a_note(moto, capsys):
    """moto 5.2.5 keeps no budget tags (ListTagsForResource: HTTP 500): nothing is judged untagged."""
    client = moto.client("budgets")
    client.create_budget(AccountId=ACCOUNT, Budget={"BudgetName": NAME, "BudgetLimit": {"Amount": "5", "Unit": "USD"},
                                                    "TimeUnit": "MONTHLY", "BudgetType": "COST"},
                         ResourceTags=[{"Key": "labkit-lab", "Value": "09"}])
    assert aws.sweep(moto=moto, delete=True) == []
    assert f"the tags of budget(s) {NAME} (500) could not be read" in capsys.readouterr().out
    assert aws_resources.budget_names(client, ACCOUNT) == [NAME]


# --- Cost Explorer, seeded ------------------------------------------------------------------------

COSTS = {"2026-11": {"07": 12.5, "09": 3.25}, "2026-12": {"09": 4.0, "": 0.75}}


def test_cost_and_usage_result_is_shaped_like_cost_explorer():
    result = budgets.cost_and_usage_result(COSTS, "labkit-lab")
    assert result["GroupDefinitions"] == [{"Type": "TAG", "Key": "labkit-lab"}]
    nov, dec = result["ResultsByTime"]
    assert nov["TimePeriod"] == {"Start": "2026-11-01", "End": "2026-12-01"}
    assert dec["TimePeriod"] == {"Start": "2026-12-01", "End": "2027-01-01"}  # End is exclusive
    assert dec["Total"] == {} and dec["Estimated"] is False
    assert dec["Groups"] == [
        {"Keys": ["labkit-lab$"], "Metrics": {"UnblendedCost": {"Amount": "0.7500000000", "Unit": "USD"}}},
        {"Keys": ["labkit-lab$09"], "Metrics": {"UnblendedCost": {"Amount": "4.0000000000", "Unit": "USD"}}}]
    daily = budgets.cost_and_usage_result({"2026-12-31": {"09": 1}}, "labkit-lab", "DAILY", metric="BlendedCost")
    assert daily["ResultsByTime"][0]["TimePeriod"] == {"Start": "2026-12-31", "End": "2027-01-01"}
    assert "BlendedCost" in daily["ResultsByTime"][0]["Groups"][0]["Metrics"]
    with pytest.raises(ValueError, match="YYYY-MM"):
        budgets.cost_and_usage_result({"November": {}}, "labkit-lab")
    with pytest.raises(ValueError, match="HOURLY"):
        budgets.cost_and_usage_result(COSTS, "labkit-lab", "HOURLY")


def _query(ce, granularity="MONTHLY", metric="UnblendedCost"):
    """A student's query: the lab's months grouped by the cost tag."""
    return ce.get_cost_and_usage(TimePeriod={"Start": "2026-11-01", "End": "2027-01-01"}, Granularity=granularity,
                                 Metrics=[metric], GroupBy=[{"Type": "TAG", "Key": "labkit-lab"}])


def _amounts(answer):
    return [(g["Keys"][0], g["Metrics"]["UnblendedCost"]["Amount"])
            for period in answer["ResultsByTime"] for g in period["Groups"]]


def test_seeded_answers_come_back_in_order_then_nothing(moto):
    first = budgets.cost_and_usage_result(COSTS, "labkit-lab")
    second = budgets.cost_and_usage_result({"2026-11": {"09": 99.0}}, "labkit-lab")
    budgets.seed_cost_and_usage(moto, [first, second])
    ce = moto.client("ce")
    assert _amounts(_query(ce)) == _amounts(first)
    assert _query(ce)["ResultsByTime"] == first["ResultsByTime"]  # the same request: the same answer
    assert _amounts(_query(ce, "DAILY")) == [("labkit-lab$09", "99.0000000000")]  # another: the next one
    empty = _query(ce, metric="BlendedCost")  # another still, and the queue is empty
    assert (empty["ResultsByTime"], empty["DimensionValueAttributes"]) == ([], [])
    moto.reset()
    assert _query(ce)["ResultsByTime"] == []  # a reset forgets the answers given too


def test_the_queries_that_reached_the_emulator_are_read_from_its_log(moto):
    ce = moto.client("ce")
    earlier = len(budgets.cost_queries(moto))  # the log is the server's, across tests
    _query(ce)
    ce.get_cost_and_usage(TimePeriod={"Start": "2026-11-01", "End": "2026-12-01"}, Granularity="DAILY",
                          Metrics=["BlendedCost"])
    moto.client("budgets").describe_budgets(AccountId=ACCOUNT)  # not a cost query
    queries = budgets.cost_queries(moto)[earlier:]
    assert [q["Granularity"] for q in queries] == ["MONTHLY", "DAILY"]
    assert queries[0]["GroupBy"] == [{"Type": "TAG", "Key": "labkit-lab"}] and "GroupBy" not in queries[1]
    assert queries[0]["Metrics"] == ["UnblendedCost"]
    assert queries[0]["TimePeriod"] == {"Start": "2026-11-01", "End": "2027-01-01"}


# --- GCP -------------------------------------------------------------------------------------------

def test_gcp_budget_rules_are_one_based_with_their_basis():
    from google.cloud.billing import budgets_v1
    budget = budgets_v1.Budget(display_name="labkit-09", threshold_rules=[
        budgets_v1.ThresholdRule(threshold_percent=0.5),
        budgets_v1.ThresholdRule(threshold_percent=0.9, spend_basis=budgets_v1.ThresholdRule.Basis.CURRENT_SPEND),
        budgets_v1.ThresholdRule(threshold_percent=1.0, spend_basis=budgets_v1.ThresholdRule.Basis.FORECASTED_SPEND)])
    assert budgets.gcp_budget_rules(budget) == [(0.5, "CURRENT_SPEND"), (0.9, "CURRENT_SPEND"),
                                                (1.0, "FORECASTED_SPEND")]
    assert budgets.gcp_budget_rules(budgets_v1.Budget()) == []


@pytest.mark.parametrize("confirm, reason", [(False, None), (True, "no GCP credentials — run `gcloud auth`")])
def test_creating_a_gcp_budget_refuses_without_opt_in(monkeypatch, confirm, reason):
    from google.cloud.billing import budgets_v1
    monkeypatch.setattr(budgets_v1, "BudgetServiceClient", lambda *a, **k: pytest.fail("a client was made"))
    with pytest.raises(spend.SpendNotConfirmed, match="billingAccounts/000000-000000-000000"):
        budgets.create_gcp_budget(budgets_v1.Budget(), "000000-000000-000000", confirm_spend=confirm,
                                  credentials_reason=reason)

