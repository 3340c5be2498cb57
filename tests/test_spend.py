"""labkit.spend: run ids, tags, the opt-in gate, pinned prices and the teardown list."""

import re

import pytest

from labkit import spend


def test_run_id_is_a_valid_label_and_name_part():
    ids = {spend.run_id() for _ in range(20)}
    assert len(ids) > 1
    for run in ids:
        assert re.fullmatch(r"r\d{8}-\d{6}-[0-9a-f]{4}", run) and len(run) <= 24
        assert re.fullmatch(r"[a-z][-a-z0-9]{0,62}", run)  # GCP label value rules


def test_resource_tags():
    assert spend.resource_tags("05", "r1") == {"labkit-lab": "05", "labkit-run": "r1"}


@pytest.mark.parametrize("confirm, reason, says", [
    (False, None, ["CONFIRM_SPEND = True", "cost estimate"]),
    (True, "no AWS credentials — run `aws configure`", ["aws configure"]),
    (False, "no AWS credentials — run `aws configure`", ["aws configure", "CONFIRM_SPEND = True"]),
])
def test_require_opt_in_refuses_and_says_what_to_do(confirm, reason, says):
    with pytest.raises(spend.SpendNotConfirmed) as info:
        spend.require_opt_in("AWS (us-east-1)", confirm_spend=confirm, credentials_reason=reason)
    assert all(s in str(info.value) for s in says)
    assert "AWS (us-east-1)" in str(info.value)


def test_require_opt_in_passes_with_both():
    spend.require_opt_in("x", confirm_spend=True, credentials_reason=None)


def test_opt_in_reason_is_what_require_opt_in_raises():
    """Lab 03 prints the reason and skips its optional GCP step, where labs 05-09 raise it."""
    assert spend.opt_in_reason("x", confirm_spend=True, credentials_reason=None) is None
    reason = spend.opt_in_reason("GCP Secret Manager", confirm_spend=False, credentials_reason=None)
    with pytest.raises(spend.SpendNotConfirmed) as info:
        spend.require_opt_in("GCP Secret Manager", confirm_spend=False, credentials_reason=None)
    assert reason and str(info.value) == reason and "CONFIRM_SPEND = True" in reason


def test_prices_cover_the_lab_types():
    assert {"ml.t2.medium", "ml.m5.large", "ml.m5.xlarge", "ml.c5.large", "ml.c5.xlarge", "ml.g4dn.xlarge",
            "ml.g5.xlarge"} <= set(spend.PRICES["sagemaker"])
    assert {"n1-standard-2", "n1-standard-4", "e2-standard-2", "e2-standard-4"} <= set(spend.PRICES["vertex"])
    assert all(p > 0 for table in spend.PRICES.values() for p in table.values())
    assert spend.PRICES_CHECKED in spend.PRICES_NOTE


def test_estimate_and_its_line():
    est = spend.estimate("sagemaker", "ml.m5.large", 2)
    assert est.per_hour == pytest.approx(0.23)
    assert est.per_day == pytest.approx(0.23 * 24)
    assert est.per_month == pytest.approx(0.23 * 730)
    assert est.describe() == ("2 × ml.m5.large ≈ $0.23/hour, $5.52/day, $168/month if left running "
                              f"(list price, us-east-1, checked {spend.PRICES_CHECKED})")
    assert "not confirmed" in spend.estimate("vertex", "n1-standard-2").describe()


def test_estimate_rejects_unknown_input():
    with pytest.raises(ValueError, match="ml.m5.large"):
        spend.estimate("sagemaker", "ml.p5.48xlarge")
    with pytest.raises(ValueError, match="sagemaker, vertex"):
        spend.estimate("azure", "x")
    with pytest.raises(ValueError, match="at least 1"):
        spend.estimate("sagemaker", "ml.m5.large", 0)


def test_teardown_runs_in_reverse_once_and_never_raises(capsys):
    done = []
    teardown = spend.Teardown()
    teardown.add("endpoint config c", lambda: done.append("c"))
    teardown.add("endpoint e", lambda: (_ for _ in ()).throw(RuntimeError("still Creating")))
    teardown.add("model m", lambda: done.append("m"))
    errors = teardown.run()
    assert done == ["m", "c"]
    assert [d for d, _ in errors] == ["endpoint e"]
    out = capsys.readouterr().out.splitlines()
    assert out == ["deleted model m", "could not delete endpoint e: still Creating", "deleted endpoint config c"]
    assert teardown.run() == [] and capsys.readouterr().out == ""
    assert len(teardown) == 0


@pytest.mark.parametrize("error", [RuntimeError("step failed"), KeyboardInterrupt()])
def test_teardown_context_runs_on_failure_and_reraises(error):
    done = []
    teardown = spend.Teardown()
    with pytest.raises(type(error)), teardown:
        teardown.add("thing", lambda: done.append(1))
        raise error
    assert done == [1]


def test_teardown_context_keeps_resources_on_success():
    done = []
    with spend.Teardown() as teardown:
        teardown.add("thing", lambda: done.append(1))
    assert done == [] and len(teardown) == 1
    teardown.run()
    assert done == [1]


def test_teardown_is_registered_at_exit(monkeypatch):
    registered = []
    monkeypatch.setattr(spend.atexit, "register", registered.append)
    teardown = spend.Teardown()
    assert registered == [teardown.run]


def test_every_cloud_error_is_a_labkit_error():
    """A caller catches all of labkit's errors with one class, whichever platform raised it."""
    from labkit import aws, emulators, sagemaker, vertex
    from labkit.core.errors import LabkitError

    for error in (spend.SpendNotConfirmed, emulators.EmulatorError, emulators.NoSuchSecret, sagemaker.StartError,
                  aws.QuotaError, aws.TargetError, vertex.VertexError):
        assert issubclass(error, LabkitError), error
    assert spend.LAB_TAG == "labkit-lab" and spend.RUN_TAG == "labkit-run"  # the tags resources already carry
