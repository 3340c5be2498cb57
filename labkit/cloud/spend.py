"""Guardrails for the real-account steps of labs 05 (SageMaker) and 06 (Vertex AI).

A lab may create billable resources only after the student has credentials *and* has
set ``CONFIRM_SPEND = True`` having read the cost estimate (:func:`require_opt_in`).
Every resource carries the tags of :func:`resource_tags`, so that a later sweep finds
what an interrupted run left behind, and a :class:`Teardown` deletes what the run made,
on error, on Ctrl-C and at interpreter exit.
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

HOURS_PER_DAY = 24
HOURS_PER_MONTH = 730  # the pricing pages' month

PRICES_CHECKED = "2026-11"
PRICES_NOTE = (f"on-demand list prices in USD per instance-hour, noted {PRICES_CHECKED}; they change: re-check "
               "https://aws.amazon.com/sagemaker/pricing/ (Real-Time Inference, us-east-1) and "
               "https://cloud.google.com/vertex-ai/pricing (prediction, us-central1) before relying on them")
REGIONS = {"sagemaker": "us-east-1", "vertex": "us-central1"}

# SageMaker real-time inference, us-east-1. The CPU and g4dn figures agree across several
# independent published tables; the official page's table could not be read from here.
PRICES: dict[str, dict[str, float]] = {
    "sagemaker": {
        "ml.t2.medium": 0.056,
        "ml.m5.large": 0.115,
        "ml.m5.xlarge": 0.23,
        "ml.c5.large": 0.102,
        "ml.c5.xlarge": 0.204,
        "ml.g4dn.xlarge": 0.736,
        "ml.g5.xlarge": 1.41,  # UNCONFIRMED: published tables disagree (1.41, 1.21, 1.006)
    },
    # Vertex AI prediction (custom-trained models), us-central1, per node-hour; the T4 is
    # billed per accelerator-hour on top of its machine. UNCONFIRMED: the pricing page's
    # figures could not be read from here; these are the last known list prices.
    "vertex": {
        "n1-standard-2": 0.1093,
        "n1-standard-4": 0.2186,
        "e2-standard-2": 0.0771,
        "e2-standard-4": 0.1541,
        "NVIDIA_TESLA_T4": 0.4025,
    },
}
# Figures not confirmed against a source; describe() tells the student to check them.
UNCONFIRMED = frozenset({("sagemaker", "ml.g5.xlarge"), *(("vertex", t) for t in PRICES["vertex"])})


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


def require_opt_in(target: str, *, confirm_spend: bool, credentials_reason: str | None) -> None:
    """Refuse (SpendNotConfirmed) unless credentials are there and the student confirmed the spend.

    ``credentials_reason`` is the credentials probe's answer (None when present). Call this
    before creating anything.
    """
    missing = []
    if credentials_reason:
        missing.append(f"credentials: {credentials_reason}")
    if not confirm_spend:
        missing.append("confirmation: read the cost estimate printed above, then set CONFIRM_SPEND = True in the "
                       "Parameters cell and rerun (the emulator path needs neither and costs nothing)")
    if missing:
        raise SpendNotConfirmed(f"not creating anything on {target}, because of what is missing — "
                                + "; ".join(missing))


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
