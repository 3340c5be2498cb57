"""Guardrails for the real-account steps of labs 05 (SageMaker) and 06 (Vertex AI), and lab 03's GCP step.

A lab may create billable resources only after the student has credentials *and* has
set ``CONFIRM_SPEND = True`` having read the cost estimate (:func:`require_opt_in`).
Every resource carries the tags of :func:`resource_tags`, so that a later sweep finds
what an interrupted run left behind, and a :class:`Teardown` deletes what the run made,
on error, on Ctrl-C and at interpreter exit. The estimate's hourly prices are the catalogue's
(:mod:`labkit.cloud.prices`), with their region, date and confirmation.
"""

from __future__ import annotations

import atexit
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..core.errors import LabkitError
from ..core import labels
from ..core.labels import LAB_TAG, RUN_TAG  # noqa: F401 - spend.LAB_TAG/RUN_TAG, as callers know them
from . import prices
from .prices import HOURS_PER_MONTH

HOURS_PER_DAY = 24

#: The clouds of :func:`estimate`: their real-time endpoints' tables in :data:`prices.PRICES`.
CLOUDS = ("sagemaker", "vertex")
_ENTRIES = {cloud: prices.PRICES[cloud] for cloud in CLOUDS}
#: ``{cloud: {instance or machine type: USD per hour}}``, as labs 05 and 06 know it: a view of the catalogue.
PRICES: dict[str, dict[str, float]] = {cloud: {name: entry.usd for name, entry in entries.items()}
                                       for cloud, entries in _ENTRIES.items()}
REGIONS = {cloud: ", ".join(sorted({entry.region for entry in entries.values()}))
           for cloud, entries in _ENTRIES.items()}
# Figures not confirmed against a source; describe() tells the student to check them.
UNCONFIRMED = frozenset((cloud, name) for cloud, entries in _ENTRIES.items() for name, entry in entries.items()
                        if not entry.confirmed)
PRICES_CHECKED = max(entry.noted for entries in _ENTRIES.values() for entry in entries.values())
PRICES_NOTE = (f"on-demand list prices in USD per instance- or node-hour, noted {PRICES_CHECKED}; they change: "
               "re-check " + " and ".join(f"{source} ({REGIONS[cloud]})" for cloud, entries in _ENTRIES.items()
                              for source in sorted({entry.source for entry in entries.values()}))
               + " before relying on them")


class SpendNotConfirmed(LabkitError):
    """A real-account step was asked for without credentials or without CONFIRM_SPEND."""


RUN_ID_ENV = labels.RUN_ID_ENV  # set by ``labkit grade``: one id for both of its kernels


def new_run_id() -> str:
    """A fresh id for one run of a lab: ``r20261128-201530-ab12`` (UTC time + 4 random hex).

    Lowercase letters, digits and dashes, 21 characters: valid as a GCP label value and
    inside SageMaker and Vertex resource names.
    """
    return time.strftime("r%Y%m%d-%H%M%S-", time.gmtime()) + secrets.token_hex(2)


def run_id() -> str:
    """The id of this run: the grader's (``LABKIT_RUN_ID``), so that the checks name the same
    resources as the notebook, else a fresh one."""
    return os.environ.get(RUN_ID_ENV) or new_run_id()


def resource_tags(lab: str, run: str) -> dict[str, str]:
    return {LAB_TAG: lab, RUN_TAG: run}


def opt_in_reason(target: str, *, confirm_spend: bool, credentials_reason: str | None) -> str | None:
    """Why nothing may be created on ``target`` (credentials or the confirmation missing), or None.

    ``credentials_reason`` is the credentials probe's answer (None when present). A cell that
    skips an optional step prints this; :func:`require_opt_in` raises it.
    """
    missing = []
    if credentials_reason:
        missing.append(f"credentials: {credentials_reason}")
    if not confirm_spend:
        missing.append("confirmation: read the cost estimate printed above, then set CONFIRM_SPEND = True in the "
                       "Parameters cell and rerun (the emulator path needs neither and costs nothing)")
    if not missing:
        return None
    return f"not creating anything on {target}, because of what is missing — " + "; ".join(missing)


def require_opt_in(target: str, *, confirm_spend: bool, credentials_reason: str | None) -> None:
    """Refuse (SpendNotConfirmed) unless credentials are there and the student confirmed the spend.
    Call this before creating anything."""
    if reason := opt_in_reason(target, confirm_spend=confirm_spend, credentials_reason=credentials_reason):
        raise SpendNotConfirmed(reason)


@dataclass(frozen=True)
class Estimate:
    cloud: str
    instance_type: str
    count: int
    per_hour: float
    per_day: float
    per_month: float

    def describe(self) -> str:
        note = ("list price" if (self.cloud, self.instance_type) not in UNCONFIRMED
                else "approximate list price, not confirmed: check the pricing page")
        return (f"{self.count} × {self.instance_type} ≈ ${self.per_hour:.2f}/hour, ${self.per_day:.2f}/day, "
                f"${self.per_month:,.0f}/month if left running ({note}, {REGIONS[self.cloud]}, "
                f"checked {PRICES_CHECKED})")


def estimate(cloud: str, instance_type: str, count: int = 1) -> Estimate:
    """What ``count`` instances cost per hour, day and 730-hour month at the pinned list price."""
    if cloud not in PRICES:
        raise ValueError(f"unknown cloud {cloud!r}: use one of {', '.join(PRICES)}")
    table = PRICES[cloud]
    if instance_type not in table:
        raise ValueError(f"no pinned price for {instance_type!r} on {cloud}: known types are "
                         f"{', '.join(table)} — pick one of them or look the price up yourself")
    if count < 1:
        raise ValueError(f"count must be at least 1, not {count}")
    hour = table[instance_type] * count
    return Estimate(cloud, instance_type, count, hour, hour * HOURS_PER_DAY, hour * HOURS_PER_MONTH)


class Teardown:
    """Deleters for what a run created, run newest first, once.

    ``with teardown:`` runs them when the block fails (any exception, KeyboardInterrupt
    included) and re-raises; a clean exit keeps the resources for the next cells. Every
    instance also runs at interpreter exit, so a stopped kernel still cleans up.
    """

    def __init__(self) -> None:
        self._steps: list[tuple[str, Callable[[], object]]] = []
        atexit.register(self.run)

    def add(self, description: str, fn: Callable[[], object]) -> None:
        self._steps.append((description, fn))

    def __len__(self) -> int:
        return len(self._steps)

    def run(self) -> list[tuple[str, BaseException]]:
        """Call every deleter (newest first); print a line each; return the failures, never raise."""
        errors = []
        while self._steps:
            description, fn = self._steps.pop()
            try:
                fn()
                print(f"deleted {description}")
            except Exception as exc:  # noqa: BLE001 - report and go on: the others must still run
                print(f"could not delete {description}: {exc}")
                errors.append((description, exc))
        return errors

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            self.run()
        return False
