"""The labkit command: exit codes and the files `labkit grade --json` writes."""

import json

from labkit import cli, grade


def test_grade_writes_json_and_markdown_and_exits_0_whatever_the_score(tmp_path, monkeypatch, capsys):
    report = grade.Report("01", "nb.ipynb", checks=[
        {"id": "01.a", "points": 3, "earned": 0, "passed": False, "skipped": False, "message": "too big"}])
    seen = {}

    def fake_grade(path, **kwargs):
        seen.update(kwargs)
        return report

    monkeypatch.setattr(grade, "grade", fake_grade)
    out = tmp_path / "r" / "01.json"
    assert cli.main(["grade", "nb.ipynb", "--json", str(out), "-p", "TARGET", "emulator", "-p", "N", "3"]) == 0
    data = json.loads(out.read_text())
    assert (data["lab"], data["score"], data["max_score"]) == ("01", 0, 3)
    assert data["checks"][0]["message"] == "too big"
    assert "| 01.a | FAIL | 0/3 | too big |" in out.with_suffix(".md").read_text()
    assert seen["parameters"] == {"TARGET": "emulator", "N": 3}
    assert "01.a" in capsys.readouterr().out


def test_grading_that_cannot_run_exits_non_zero_with_the_reason(tmp_path, capsys):
    assert cli.main(["grade", str(tmp_path / "nope.ipynb")]) == 2
    assert "no such notebook" in capsys.readouterr().err


def test_a_corrupt_or_wrong_lab_submission_is_a_zero_report_and_exit_0(tmp_path, capsys):
    (tmp_path / "01_image_slimming.ipynb").write_text('{"cells": [')
    out = tmp_path / "r.json"
    assert cli.main(["grade", str(tmp_path / "01_image_slimming.ipynb"), "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["score"] == 0 and data["max_score"] > 0 and "could not be read" in data["notes"][0]
    assert "note: the notebook could not be read" in capsys.readouterr().out
    from labkit import paths
    assert cli.main(["grade", str(paths.LABS / "00_setup.ipynb"), "--lab", "01", "--json", str(out)]) == 0
    assert "lab 00's notebook, not lab 01's" in json.loads(out.read_text())["notes"][0]


def test_build_check_passes_on_the_repository():
    assert cli.main(["build", "--check"]) == 0


def test_sweep_without_credentials_says_why_and_creates_nothing(monkeypatch, capsys):
    from labkit import probes

    monkeypatch.setattr(probes, "aws_credentials_reason", lambda: "no AWS credentials found (test)")
    assert cli.main(["sweep", "--aws"]) == 1
    assert "no AWS credentials found (test)" in capsys.readouterr().err
    assert cli.main(["sweep"]) == 2


def test_sweep_gcp_without_a_project_says_so(monkeypatch, capsys):
    from labkit import probes

    monkeypatch.setattr(probes, "gcp_credentials_reason", lambda: None)
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    assert cli.main(["sweep", "--gcp"]) == 1
    assert "no project" in capsys.readouterr().err


def test_sweep_lists_then_deletes_tagged_leftovers(moto, monkeypatch, capsys):
    """Against moto: boto3 follows AWS_ENDPOINT_URL, as it would a real region."""
    from labkit import probes

    for name, value in moto.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(probes, "aws_credentials_reason", lambda: None)
    sm = moto.client("sagemaker")
    sm.create_model(ModelName="m", PrimaryContainer={"Image": "x"},
                    ExecutionRoleArn="arn:aws:iam::123456789012:role/r")
    tags = [{"Key": "labkit-lab", "Value": "05"}, {"Key": "labkit-run", "Value": "r1"}]
    sm.create_endpoint_config(EndpointConfigName="labkit-05-left-r1", Tags=tags, ProductionVariants=[
        {"VariantName": "a", "ModelName": "m", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sm.create_endpoint_config(EndpointConfigName="labkit-05-untagged", ProductionVariants=[
        {"VariantName": "a", "ModelName": "m", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    assert cli.main(["sweep", "--aws", "--region", "us-east-1"]) == 0
    out = capsys.readouterr().out
    assert "labkit-05-left-r1" in out and "labkit-05-untagged" not in out and "--delete" in out
    assert cli.main(["sweep", "--aws", "--delete"]) == 0
    names = [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]]
    assert names == ["labkit-05-untagged"]
