"""Labs 05 and 06 on a real account: the same notebooks, graded with TARGET aws / gcp.

They cost money (a few cents: minutes of ml.m5.large / n1-standard-2 and their storage), so they
run only with credentials (the probes' reasons are the skip reasons) and with
LABKIT_CONFIRM_SPEND=1 in the environment, the CI counterpart of a lab's CONFIRM_SPEND = True.
Afterwards nothing tagged by the lab may remain (the labs' cleanup, checked by a sweep).
"""

from __future__ import annotations

import os

import pytest

from labkit import grade, paths, probes

SPEND = "LABKIT_CONFIRM_SPEND"


def _opted_in(credentials_reason) -> str | None:
    reason = credentials_reason()
    if reason:
        return reason
    if os.environ.get(SPEND) != "1":
        return f"{SPEND}=1 is not set: live cloud runs cost money and run only when asked for"
    return None


AWS_SKIP, GCP_SKIP = _opted_in(probes.aws_credentials_reason), _opted_in(probes.gcp_credentials_reason)


@pytest.mark.skipif(bool(AWS_SKIP), reason=str(AWS_SKIP))
def test_lab_05_on_a_real_aws_account():
    from labkit import aws

    report = grade.grade(paths.solution_for("05"), parameters={"TARGET": "aws", "CONFIRM_SPEND": True})
    assert report.score == report.max_score, report.markdown()
    assert aws.sweep(lab="05") == [], "lab 05 left tagged resources behind"


@pytest.mark.skipif(bool(GCP_SKIP), reason=str(GCP_SKIP))
def test_lab_06_on_a_real_gcp_project():
    from labkit import vertex

    report = grade.grade(paths.solution_for("06"), parameters={"TARGET": "gcp", "CONFIRM_SPEND": True})
    assert report.score == report.max_score, report.markdown()
    assert vertex.sweep(lab="06") == [], "lab 06 left labelled resources behind"
