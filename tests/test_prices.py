"""labkit.prices: one catalogue of every price, each with a unit, an official source and a date
that a test holds to; the check that holds them (and rejects a broken entry); the look-up; and
spend's hourly view, which must be the catalogue's figures."""

from dataclasses import replace

import nbformat
import pytest

from labkit import paths, prices, spend
from labkit.core.errors import LabkitError
from labkit.prices import Price

ENTRIES = [(table, key) for table, entries in prices.PRICES.items() for key in entries]
GOOD = Price(0.102, "instance-hour", "https://aws.amazon.com/sagemaker/pricing/", "2026-11", True, region="us-east-1")


@pytest.mark.parametrize("table, key", ENTRIES, ids=[f"{t}/{k}" for t, k in ENTRIES])
def test_every_price_has_a_value_unit_source_and_recent_date(table, key):
    """Positive, a unit, an https source, YYYY-MM neither in the future nor older than 2 years,
    and a reason when unconfirmed: what the catalogue check asks, on the real clock."""
    assert prices.problems(prices.PRICES[table][key]) == []


def test_the_catalogue_passes_its_own_check():
    assert prices.catalogue_problems() == []


@pytest.mark.parametrize("broken, says", [
    (dict(usd=0), "usd must be a positive"),
    (dict(usd=-0.1), "usd must be a positive"),
    (dict(usd=float("nan")), "usd must be a positive"),
    (dict(per=""), "per must name one unit"),
    (dict(per="per hour"), "per must name one unit"),
    (dict(source=""), "source must be the https address"),
    (dict(source="http://aws.amazon.com/sagemaker/pricing/"), "source must be the https address"),
    (dict(noted=""), "noted must be the month"),
    (dict(noted="2026-13"), "noted must be the month"),
    (dict(noted="Nov 2026"), "noted must be the month"),
    (dict(noted="2027-01"), "after this month"),
    (dict(noted="2024-11"), "more than 24 months"),
    (dict(confirmed=False), "unconfirmed price needs a note"),
    (dict(confirmed=False, note="  "), "unconfirmed price needs a note"),
    (dict(confirmed="yes"), "confirmed must be True or False"),
    (dict(free=-1), "free must be a number"),
])
def test_the_check_rejects_a_broken_entry(broken, says):
    """Each broken field alone gives exactly one problem, naming it (so the catalogue test can fail)."""
    found = prices.problems(replace(GOOD, **broken), today="2026-12")
    assert len(found) == 1 and says in found[0], found


def test_the_date_limits_are_inclusive():
    assert prices.problems(replace(GOOD, noted="2026-12"), today="2026-12") == []
    assert prices.problems(replace(GOOD, noted="2024-12"), today="2026-12") == []


def test_a_broken_entry_in_a_catalogue_is_named():
    broken = Price(0, "", "ftp://x", "soon", False)
    found = prices.catalogue_problems({"ok": {"fine": GOOD}, "bad": {"entry": broken}}, today="2026-12")
    assert len(found) == 5 and all(line.startswith("bad/entry: ") for line in found), found


def test_describe_says_region_date_allowance_and_why_unconfirmed():
    assert GOOD.describe() == "$0.102 per instance-hour (us-east-1, noted 2026-11)"
    unsure = Price(0.00002, "GB-second", GOOD.source, "2026-12", False, "tables disagree", "us-east-1")
    assert str(unsure) == "$0.00002 per GB-second (us-east-1, noted 2026-12, not confirmed: tables disagree)"
    free = Price(0.1, "cluster-hour", "https://cloud.google.com/kubernetes-engine/pricing", "2026-12", True, free=744)
    assert free.describe() == "$0.10 per cluster-hour (noted 2026-12, first 744 cluster-hours a month free)"


def test_lookup_and_its_errors():
    assert prices.price("sagemaker", "ml.c5.large") is prices.PRICES["sagemaker"]["ml.c5.large"]
    with pytest.raises(prices.UnknownPrice, match="ml.c5.large") as info:
        prices.price("sagemaker", "ml.p5.48xlarge")
    assert isinstance(info.value, LookupError) and isinstance(info.value, LabkitError)
    with pytest.raises(prices.UnknownPrice, match="sagemaker, vertex, .*opencost"):
        prices.price("azure", "x")


def test_the_catalogue_is_read_only():
    with pytest.raises(TypeError):
        prices.PRICES["sagemaker"]["ml.c5.large"] = GOOD
    with pytest.raises(TypeError):
        prices.PRICES["new"] = {}


def test_the_tables_lab_09_prices_with():
    """Serverless per GB-second and GB, training for managed spot, OpenCost's defaults, a control
    plane and a node per cloud, Budgets and Cost Explorer: each in the unit its exercise needs."""
    units = {table: {key: entry.per for key, entry in entries.items()} for table, entries in prices.PRICES.items()}
    assert units["sagemaker_serverless"] == {"compute": "GB-second", "data": "GB"}
    assert {"ml.m5.xlarge", "ml.g4dn.xlarge"} <= set(units["sagemaker_training"])
    assert units["opencost"] == {"cpu": "core-hour", "ram": "GB-hour", "gpu": "GPU-hour", "spot_cpu": "core-hour",
                                 "spot_ram": "GB-hour"}
    assert units["cluster_fee"] == {"eks": "cluster-hour", "gke": "cluster-hour"}
    assert {prices.PRICES["node"][key].region for key in units["node"]} == {"us-east-1", "us-central1"}
    assert units["budgets"] == {"action_enabled": "budget-day"} and prices.PRICES["budgets"]["action_enabled"].free > 0
    assert units["cost_explorer"] == {"api_request": "request"}


def test_spend_is_a_view_of_the_catalogue():
    assert spend.PRICES == {cloud: {key: entry.usd for key, entry in prices.PRICES[cloud].items()}
                            for cloud in ("sagemaker", "vertex")}
    assert spend.UNCONFIRMED == {(cloud, key) for cloud in spend.PRICES
                                 for key, entry in prices.PRICES[cloud].items() if not entry.confirmed}
    assert spend.REGIONS == {"sagemaker": "us-east-1", "vertex": "us-central1"}
    assert all(prices.PRICES[cloud][key].noted <= spend.PRICES_CHECKED for cloud in spend.PRICES
               for key in spend.PRICES[cloud])
    assert prices.PRICES["sagemaker"]["ml.c5.large"].source in spend.PRICES_NOTE
    assert spend.HOURS_PER_MONTH == prices.HOURS_PER_MONTH == 730


# What a lab's real-account resources are, as its overview's Cost row names them.
OVERVIEW_ESTIMATES = {"05": ("sagemaker", "ml.m5.large", 4), "06": ("vertex", "n1-standard-2", 2),
                      "07": ("sagemaker", "ml.c5.large", 1), "08": ("sagemaker", "ml.c5.large", 2)}


def _cost_row(lab: str) -> str:
    overview = nbformat.read(paths.lab_notebook(lab), as_version=4).cells[0].source
    return next(line for line in overview.splitlines() if line.startswith("| Cost |"))


@pytest.mark.parametrize("lab", sorted(OVERVIEW_ESTIMATES))
def test_each_overview_states_the_hourly_cost_the_catalogue_gives(lab):
    """A price changed in the catalogue must change the figure the student reads first."""
    cloud, kind, count = OVERVIEW_ESTIMATES[lab]
    cost = _cost_row(lab)
    assert kind in cost and f"${spend.estimate(cloud, kind, count).per_hour:.2f}" in cost, cost


def test_lab_03_states_secret_managers_prices_and_free_allowance():
    version, access = prices.price("secret_manager", "active_version"), prices.price("secret_manager", "access")
    cost = _cost_row("03")
    assert f"${version.usd:.2f} per active version" in cost
    assert f"${access.usd * 10_000:.2f} per 10,000 accesses" in cost
    assert f"{version.free:g} versions and {access.free:,.0f} accesses a month are free" in cost
