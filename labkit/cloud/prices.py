"""Every price the workbook uses, in one catalogue, each with its unit, source and date.

List prices change, and some could not be read from the provider's page from here; a cost a lab
shows is only as good as the figure behind it. So each :class:`Price` carries the official page
it comes from, the month it was noted (``YYYY-MM``) and whether it was confirmed: read from the
provider's own material (its pricing page, its price-list data such as the AWS Price List or
Google's Cloud Billing Catalog, or an announcement of its own). An unconfirmed one says why in its
note, and :meth:`Price.describe` says so wherever a notebook prints it.

:data:`PRICES` holds the tables (``PRICES["sagemaker"]["ml.c5.large"]``); :func:`price` looks one
up with an error that names what is there; :func:`problems` is the one check an entry must pass
(a positive value, a unit, an https source, a date neither in the future nor older than
:data:`MAX_AGE_MONTHS`, a note when unconfirmed) and :func:`catalogue_problems` runs it on every
entry. :data:`HOURS_PER_MONTH` is the pricing pages' month. These are data only: what a workload
costs is computed where it is used.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ..core.errors import LabkitError

HOURS_PER_MONTH = 730  # the month of AWS's and Google's pricing pages (8,760 hours / 12)
MAX_AGE_MONTHS = 24  # an older figure must be looked up again before a lab relies on it


class UnknownPrice(LabkitError, LookupError):
    """:func:`price` was asked for a table or an entry the catalogue does not have."""


@dataclass(frozen=True)
class Price:
    """A list price in USD per ``per`` (one unit: "instance-hour", "GB-second", "request"...).

    ``source`` is the official pricing page, ``noted`` the month the figure was noted, ``confirmed``
    whether it was read from the provider's own material (``note`` says how, or why not), ``region``
    where it applies ("" when it applies everywhere) and ``free`` how many units a month cost
    nothing before this price applies.
    """
    usd: float
    per: str
    source: str
    noted: str
    confirmed: bool
    note: str = ""
    region: str = ""
    free: float = 0

    def describe(self) -> str:
        """One line for a notebook: ``$0.102 per instance-hour (us-east-1, noted 2026-11, not confirmed: …)``."""
        said = [self.region] if self.region else []
        said.append(f"noted {self.noted}")
        if self.free:
            said.append(f"first {self.free:g} {self.per}s a month free")
        if not self.confirmed:
            said.append(f"not confirmed: {self.note}")
        return f"${_dollars(self.usd)} per {self.per} ({', '.join(said)})"

    __str__ = describe


def _dollars(usd: float) -> str:
    """0.1 → "0.10", 0.102 → "0.102", 0.00002 → "0.00002": every digit the figure has, cents at least."""
    digits = f"{usd:.10f}".rstrip("0")
    whole, _, fraction = digits.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


def _months(yyyy_mm: str) -> int:
    year, month = yyyy_mm.split("-")
    return int(year) * 12 + int(month) - 1


def problems(entry: Price, today: str | None = None) -> list[str]:
    """What is wrong with one entry (empty when nothing): each problem says what to fix.

    ``today`` is the month to judge ``noted`` against, ``YYYY-MM``; the current one (UTC) by default.
    """
    today = today or time.strftime("%Y-%m", time.gmtime())
    found = []
    if not (isinstance(entry.usd, (int, float)) and math.isfinite(entry.usd) and entry.usd > 0):
        found.append(f"usd must be a positive number of dollars, not {entry.usd!r}")
    if not re.fullmatch(r"[A-Za-z]+(-[A-Za-z]+)*", entry.per or ""):
        found.append(f"per must name one unit such as 'instance-hour' or 'GB', not {entry.per!r}")
    if not re.fullmatch(r"https://[^/\s]+\.[^/\s]+(/\S*)?", entry.source or ""):
        found.append(f"source must be the https address of the official pricing page, not {entry.source!r}")
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", entry.noted or ""):
        found.append(f"noted must be the month the figure was noted, as YYYY-MM, not {entry.noted!r}")
    elif _months(entry.noted) > _months(today):
        found.append(f"noted {entry.noted} is after this month ({today})")
    elif _months(today) - _months(entry.noted) > MAX_AGE_MONTHS:
        found.append(f"noted {entry.noted} is more than {MAX_AGE_MONTHS} months before {today}: look the price "
                     f"up again on {entry.source} and note the month")
    if not isinstance(entry.confirmed, bool):
        found.append(f"confirmed must be True or False, not {entry.confirmed!r}")
    elif not entry.confirmed and not entry.note.strip():
        found.append("an unconfirmed price needs a note saying why it could not be confirmed")
    if not (isinstance(entry.free, (int, float)) and entry.free >= 0):
        found.append(f"free must be a number of units, 0 or more, not {entry.free!r}")
    return found


def catalogue_problems(catalogue: Mapping[str, Mapping[str, Price]] | None = None,
                       today: str | None = None) -> list[str]:
    """:func:`problems` of every entry of ``catalogue`` (:data:`PRICES` by default), as ``table/key: problem``."""
    tables = PRICES if catalogue is None else catalogue
    return [f"{table}/{key}: {problem}" for table, entries in tables.items() for key, entry in entries.items()
            for problem in problems(entry, today)]


def price(table: str, key: str) -> Price:
    """``PRICES[table][key]``, or UnknownPrice naming the tables, or the keys of that table."""
    if table not in PRICES:
        raise UnknownPrice(f"no price table {table!r}: the tables are {', '.join(PRICES)}")
    if key not in PRICES[table]:
        raise UnknownPrice(f"no price for {key!r} in the {table} table: it has {', '.join(PRICES[table])} — "
                           "pick one of them, or look the price up yourself")
    return PRICES[table][key]


_SAGEMAKER = "https://aws.amazon.com/sagemaker/pricing/"
_VERTEX = "https://cloud.google.com/vertex-ai/pricing"
_SECRET_MANAGER = "https://cloud.google.com/secret-manager/pricing"  # pragma: allowlist secret (a URL)
_SAGEMAKER_TABLES = ("several independent published tables agree on it; the official page's table could not be "
                     "read from here")
_VERTEX_UNREAD = "the pricing page's figures could not be read from here; this is the last known list price"
_SCRIPTED = "the page's table is drawn by script and could not be read from here"


def _sagemaker(usd: float, note: str = _SAGEMAKER_TABLES, confirmed: bool = True) -> Price:
    return Price(usd, "instance-hour", _SAGEMAKER, "2026-11", confirmed, note, "us-east-1")


def _vertex(usd: float, per: str = "node-hour") -> Price:
    return Price(usd, per, _VERTEX, "2026-11", False, _VERTEX_UNREAD, "us-central1")


def _opencost(usd: float, per: str) -> Price:
    return Price(usd, per, "https://github.com/opencost/opencost/blob/develop/configs/default.json", "2026-12", True,
                 "OpenCost's default custom prices, \"based on GCP us-central1\": what it charges a cluster it "
                 "has no cloud bill for")


_TABLES: dict[str, dict[str, Price]] = {
    # SageMaker real-time inference (an endpoint's instances), per instance-hour. These keep the
    # confirmation they had before this catalogue, from tables that agree, not from the page itself.
    "sagemaker": {
        "ml.t2.medium": _sagemaker(0.056),
        "ml.m5.large": _sagemaker(0.115),
        "ml.m5.xlarge": _sagemaker(0.23),
        "ml.c5.large": _sagemaker(0.102),
        "ml.c5.xlarge": _sagemaker(0.204),
        "ml.g4dn.xlarge": _sagemaker(0.736),
        "ml.g5.xlarge": _sagemaker(1.41, "published tables disagree (1.41, 1.21, 1.006)", confirmed=False),
    },
    # Vertex AI prediction of custom-trained models, per node-hour, billed while a model is deployed.
    "vertex": {
        "n1-standard-2": _vertex(0.1093),
        "n1-standard-4": _vertex(0.2186),
        "e2-standard-2": _vertex(0.0771),
        "e2-standard-4": _vertex(0.1541),
        "NVIDIA_TESLA_T4": _vertex(0.4025, "accelerator-hour"),  # on top of its machine's node-hour
    },
    # SageMaker Serverless Inference: compute per second of each request for every GB of memory
    # configured (1024-6144 MB, priced in proportion), and the data in and out.
    "sagemaker_serverless": {
        "compute": Price(0.00002, "GB-second", _SAGEMAKER, "2026-12", False,
                         f"{_SCRIPTED}; independent tables agree: $0.00002 a second at 1024 MB ... $0.00012 at 6144 MB "
                         "(150,000 seconds a month free in the first 2 months)", "us-east-1"),
        "data": Price(0.016, "GB", _SAGEMAKER, "2026-12", False,
                      f"{_SCRIPTED}; independent tables and AWS bills agree ('$0.016 per GB for Endpoint Data IN', "
                      "and OUT): charged on the data in and again on the data out", "us-east-1"),
    },
    # SageMaker training jobs, per instance-hour; managed spot bills the same rate for fewer seconds.
    "sagemaker_training": {
        "ml.m5.xlarge": Price(0.23, "instance-hour", _SAGEMAKER, "2026-12", False,
                              f"{_SCRIPTED}; independent published tables agree", "us-east-1"),
        "ml.g4dn.xlarge": Price(0.736, "instance-hour", _SAGEMAKER, "2026-12", False,
                                f"{_SCRIPTED}; independent published tables agree (0.736, or 0.7364)", "us-east-1"),
    },
    # OpenCost's defaults, for allocating a node's cost over its containers.
    "opencost": {
        "cpu": _opencost(0.031611, "core-hour"),
        "ram": _opencost(0.004237, "GB-hour"),
        "gpu": _opencost(0.95, "GPU-hour"),
        "spot_cpu": _opencost(0.006655, "core-hour"),
        "spot_ram": _opencost(0.000892, "GB-hour"),
    },
    # A managed Kubernetes control plane, per cluster-hour, whatever runs on it.
    "cluster_fee": {
        "eks": Price(0.10, "cluster-hour", "https://aws.amazon.com/eks/pricing/", "2026-12", True,
                     "read in AWS's announcement of extended-support pricing: a cluster on a version in standard "
                     "support pays $0.10, in extended support $0.60", "us-east-1"),
        "gke": Price(0.10, "cluster-hour", "https://cloud.google.com/kubernetes-engine/pricing", "2026-12", True,
                     "the free tier is a $74.40 monthly credit per billing account, for zonal and Autopilot "
                     "clusters only (not regional ones)", "us-central1", free=744),
    },
    # One 2-vCPU, 8 GB worker node on demand, per instance-hour: what a cluster adds to its fee.
    "node": {
        "m5.large": Price(0.096, "instance-hour", "https://aws.amazon.com/ec2/pricing/on-demand/", "2026-12", True,
                          "Linux, shared tenancy; the AWS Price List's entry reads '$0.096 per On Demand Linux "
                          "m5.large Instance Hour'", "us-east-1"),
        "e2-standard-2": Price(0.067006, "instance-hour", "https://cloud.google.com/compute/vm-instance-pricing",
                               "2026-12", True, f"{_SCRIPTED}; Google's Cloud Billing Catalog, read through a public "
                               "mirror, gives $0.06701142 (2 vCPU and 8 GB at the E2 rates), rounded here as the page "
                               "rounds it", "us-central1"),
    },
    # AWS Budgets: budgets and their alerts cost nothing; a budget with actions does, past the free ones.
    "budgets": {
        "action_enabled": Price(0.10, "budget-day", "https://aws.amazon.com/aws-cost-management/aws-budgets/pricing/",
                                "2026-12", True, "the first 2 action-enabled budgets of an account are free (62 "
                                "budget-days a month in the AWS Price List); budgets without actions, and their "
                                "notifications, are free", free=62),
    },
    # The Cost Explorer API (get_cost_and_usage and the other queries), per request.
    "cost_explorer": {
        "api_request": Price(0.01, "request", "https://aws.amazon.com/aws-cost-management/aws-cost-explorer/pricing/",
                             "2026-12", True, "each paginated request is one request"),
    },
    # GCP Secret Manager (lab 03's optional step): active versions per month, prorated, and the
    # access calls that read a version's data; management calls (create, delete) are free.
    "secret_manager": {
        "active_version": Price(0.06, "version-month", _SECRET_MANAGER, "2026-12", True,
                                "per active (enabled or disabled) version per location, billed in proportion to the "
                                "time it is active; destroyed versions are free; automatic replication counts as one "
                                "location", free=6),
        "access": Price(0.000003, "access-operation", _SECRET_MANAGER, "2026-12", True,
                        "the page's $0.03 per 10,000 access operations (calls that read a version's data)",
                        free=10_000),
    },
}

#: The catalogue, read-only: ``PRICES[table][key]`` is a :class:`Price`.
PRICES: Mapping[str, Mapping[str, Price]] = MappingProxyType(
    {table: MappingProxyType(entries) for table, entries in _TABLES.items()})
