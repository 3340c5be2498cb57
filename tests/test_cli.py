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


def test_build_check_passes_on_the_repository():
    assert cli.main(["build", "--check"]) == 0
