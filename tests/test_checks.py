"""labkit.check: outcomes, records, strict mode."""

import pytest

from labkit import checks
from labkit.checks import RESULTS, CheckFailed, check, skip
from labkit.core.errors import RequirementNotMet, TimedOut


def test_pass_fail_and_student_errors_become_records(monkeypatch, capsys):
    monkeypatch.delenv("LABKIT_STRICT", raising=False)
    check("01.ok", 2, lambda: None, hint="h")
    assert RESULTS["01.ok"].earned == 2
    check("01.false", 2, lambda: False, hint="try X")
    failed = RESULTS["01.false"]
    assert (failed.passed, failed.earned) == (False, 0)

    def broken():
        raise KeyError("nope")

    check("01.crash", 3, broken, hint="h")
    crashed = RESULTS["01.crash"]
    assert not crashed.passed and crashed.message.startswith("KeyError: 'nope'")

    def wrong():
        raise AssertionError("one is not two")

    check("01.assert", 1, wrong, hint="h")
    assert RESULTS["01.assert"].message == "one is not two"

    def unmet():  # what tool code raises for a requirement: the same failure, its message alone
        raise RequirementNotMet("no port 8080 is published")

    def late():
        raise TimedOut("container x to be healthy: not within 5s")

    check("01.unmet", 1, unmet, hint="h")
    check("01.late", 1, late, hint="h")
    assert RESULTS["01.unmet"].message == "no port 8080 is published" and not RESULTS["01.unmet"].passed
    assert RESULTS["01.late"].message.startswith("container x") and not RESULTS["01.late"].passed
    out = capsys.readouterr().out
    assert "[PASS] 01.ok 2/2" in out and "[FAIL] 01.false 0/2" in out and "hint: try X" in out


def test_skip_needs_a_reason_and_counts_nowhere(monkeypatch):
    import dataclasses

    from labkit import capabilities, probes

    monkeypatch.setenv("LABKIT_STRICT", "1")
    gpu = dataclasses.replace(capabilities.TABLE["gpu"], probe=lambda: probes.Finding(reason="NVML not found"))
    monkeypatch.setitem(capabilities.TABLE, "gpu", gpu)
    check("04.gpu", 5, lambda: None, hint="h", needs=("gpu",))
    result = RESULTS["04.gpu"]
    assert result.skipped and result.message == "NVML not found" and result.earned == 0
    check("04.inner", 1, lambda: skip("no kind on PATH"), hint="h")
    inner = RESULTS["04.inner"]
    assert inner.skipped and "kind" in inner.message
    assert "skipped: NVML not found" in checks.score_table({"04.gpu": result})


def test_strict_mode_raises_only_on_failure(monkeypatch):
    monkeypatch.setenv("LABKIT_STRICT", "1")
    check("01.fine", 1, lambda: True, hint="h")
    with pytest.raises(CheckFailed, match="01.bad"):
        check("01.bad", 1, lambda: False, hint="h")


def test_check_ids_and_needs_are_validated(monkeypatch):
    monkeypatch.delenv("LABKIT_STRICT", raising=False)
    with pytest.raises(ValueError):
        check("final size", 1, lambda: None, hint="h")
    check("01.typo", 1, lambda: None, hint="h", needs=("kubctl",))
    assert "no capability 'kubctl'" in RESULTS["01.typo"].message


def test_score_table_totals_what_ran():
    results = {"01.a": checks.CheckResult("01.a", 2, 2, True, False, ""),
               "01.b": checks.CheckResult("01.b", 3, 0, False, False, "x")}
    assert "2/5" in checks.score_table(results)


def test_labkits_errors_share_one_base_and_keep_the_bases_callers_catch():
    from labkit import build, capabilities, commands, compose, grade, k8s, paths, student
    from labkit.core.errors import LabkitError

    kept = {commands.CommandError: RuntimeError, compose.ComposeError: commands.CommandError,
            k8s.K8sError: commands.CommandError, paths.LabNotFound: LookupError,
            capabilities.UnknownCapability: KeyError, grade.GradingError: RuntimeError,
            build.HasStudentWork: RuntimeError, student.StudentCodeError: AssertionError, CheckFailed: AssertionError}
    for error, base in kept.items():
        assert issubclass(error, LabkitError) and issubclass(error, base), error
    assert not issubclass(checks.Skip, LabkitError)  # a skip is no error: `except LabkitError` must let it pass
