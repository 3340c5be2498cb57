"""`labkit grade-all`'s parts that need no Docker: finding a class's submissions, the pool that
never runs two of one lab at once, the locks that hold the same rule across processes, and the
files an instructor reads. A whole class is graded for real in tests/test_notebooks.py."""

from __future__ import annotations

import csv
import json
import shutil
import threading
import time
from xml.etree import ElementTree as ET

import pytest

from labkit import batch, cli, dockerlab, gradebook, locks, paths, probes


def _notebook(path, lab="00"):
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(paths.LABS / paths.solution_for(lab).name, path)
    return path


def test_a_folder_of_notebooks_and_a_folder_of_student_folders(tmp_path):
    _notebook(tmp_path / "alice_00_setup.ipynb")
    _notebook(tmp_path / "bob.ipynb")
    _notebook(tmp_path / "carol" / "labs" / "00_setup.ipynb")
    _notebook(tmp_path / "carol" / "labs" / "01_image_slimming.ipynb", "01")
    _notebook(tmp_path / "carol" / "labs" / ".ipynb_checkpoints" / "00_setup-checkpoint.ipynb")
    _notebook(tmp_path / "carol" / "work" / "00" / "copy.ipynb")
    _notebook(tmp_path / "carol" / "00_setup.ipynb")  # the same lab again: listed, not graded
    found = [(s.student, s.path.relative_to(tmp_path).as_posix(), s.lab, s.duplicate_of is not None)
             for s in batch.discover(tmp_path)]
    assert found == [("alice", "alice_00_setup.ipynb", "00", False), ("bob", "bob.ipynb", "00", False),
                     ("carol", "carol/00_setup.ipynb", "00", False),
                     ("carol", "carol/labs/00_setup.ipynb", "00", True),
                     ("carol", "carol/labs/01_image_slimming.ipynb", "01", False)]
    only_00 = {s.path.name for s in batch.discover(tmp_path, lab="00")}
    assert "01_image_slimming.ipynb" not in only_00 and "bob.ipynb" in only_00


def test_an_unreadable_notebook_is_kept_with_the_lab_its_name_or_the_instructor_gives(tmp_path):
    (tmp_path / "dave_00_setup.ipynb").write_text("{")
    (tmp_path / "erin.ipynb").write_text("")
    assert [(s.student, s.lab) for s in batch.discover(tmp_path)] == [("dave", "00"), ("erin", None)]
    assert [(s.student, s.lab) for s in batch.discover(tmp_path, lab="01")] == [("dave", "00"), ("erin", "01")]


def test_the_pool_never_runs_two_of_one_lab_nor_a_swarm_lab_beside_compose():
    running: list[str] = []
    seen_together: list[tuple[str, ...]] = []
    guard = threading.Lock()

    def run(job):
        lab = job[0]
        with guard:
            running.append(lab)
            seen_together.append(tuple(sorted(x for x in running if x)))
        time.sleep(0.05)
        with guard:
            running.remove(lab)
        if job == ("09", 1):
            raise ValueError("this job's own failure")
        return job

    jobs = [(lab, n) for n in range(3) for lab in ("01", "02", "03", "09")] + [(None, 0)]
    pool = batch.LabPool(jobs, run, lab_of=lambda job: job[0], workers=3)
    results = pool.wait()
    assert set(results) == set(jobs)
    assert max(map(len, seen_together)) > 1, "different labs ran at once"
    for together in seen_together:
        labs = [lab for lab in together if lab]
        assert len(labs) == len(set(labs)), together
        assert not ("03" in labs and {"02", "09"} & set(labs)), together
    assert pool.get(("01", 2)) == ("01", 2)
    with pytest.raises(ValueError, match="own failure"):
        pool.get(("09", 1))


def test_a_graded_run_waits_for_another_of_its_lab_and_a_swarm_lab_for_compose_labs(tmp_path, monkeypatch):
    monkeypatch.setattr(locks, "FOLDER", tmp_path)  # locks of its own: a grader running meanwhile holds the real ones
    said: list[str] = []
    held, release = threading.Event(), threading.Event()

    def hold(lab):
        with locks.graded_run(lab):
            held.set()
            release.wait(10)

    for holder, waiter, waits in (("00", "00", True), ("00", "01", False), ("02", "07", False), ("02", "03", True)):
        held.clear(), release.clear()
        thread = threading.Thread(target=hold, args=(holder,))
        thread.start()
        assert held.wait(10)
        try:
            if waits:
                with pytest.raises(locks.LockTimeout, match="held the"):
                    with locks.graded_run(waiter, timeout=0.3, waiting=said.append):
                        pass
                assert said and "waiting for another graded run" in said[-1]
            else:
                with locks.graded_run(waiter, timeout=0.3):
                    pass
        finally:
            release.set()
            thread.join()
    with locks.graded_run("03", timeout=1):  # free again once the holder is done
        pass


def _rows() -> list[batch.Row]:
    def checks(image: bool, run: bool):
        return [{"id": "00.hello-image", "points": 2, "earned": 2 * image, "passed": image, "skipped": False,
                 "message": "" if image else "no image"},
                {"id": "00.hello-run", "points": 3, "earned": 3 * run, "passed": run, "skipped": False,
                 "message": "" if run else "it did not print"}]

    return [batch.Row("alice", "00", "a.ipynb", batch.GRADED, 5, 5, checks(True, True)),
            batch.Row("<b>bob</b>", "00", "b.ipynb", batch.GRADED, 2, 5, checks(True, False)),
            batch.Row("carol", "00", "c.ipynb", batch.TIMED_OUT, reason="still running after 45 s"),
            batch.Row("dave", None, "d.ipynb", batch.FAILED, reason="cannot tell which lab")]


def test_the_gradebook_has_a_row_per_submission_and_a_column_per_check(tmp_path):
    written = gradebook.write_all(_rows(), tmp_path)
    assert [p.name for p in written] == ["gradebook.csv", "summary.md", "summary.html", "junit.xml"]
    with open(tmp_path / "gradebook.csv") as handle:
        table = list(csv.DictReader(handle))
    assert list(table[0]) == ["student", "lab", "status", "score", "max_score", "percent", "00.hello-image",
                              "00.hello-run", "reason", "notebook"]
    assert [(r["student"], r["score"], r["percent"], r["00.hello-run"]) for r in table] == [
        ("alice", "5", "100.0", "3"), ("<b>bob</b>", "2", "40.0", "0"), ("carol", "0", "", ""), ("dave", "0", "", "")]
    summary = (tmp_path / "summary.md").read_text()
    assert "| 00.hello-image | 2 | 2 | 2 | 100% |" in summary and "| 00.hello-run | 3 | 1 | 2 | 50% |" in summary
    assert "still running after 45 s" in summary
    page = (tmp_path / "summary.html").read_text()
    assert "&lt;b&gt;bob&lt;/b&gt;" in page and "<b>bob</b>" not in page and "data:image/png;base64," in page
    suites = ET.parse(tmp_path / "junit.xml").getroot()
    assert {k: suites.get(k) for k in ("tests", "failures", "errors", "skipped")} == \
        {"tests": "6", "failures": "1", "errors": "2", "skipped": "0"}
    assert [s.get("name") for s in suites] == ["lab 00", "lab unknown"]


def test_an_unchanged_submission_keeps_its_row_but_a_grader_failure_is_tried_again(tmp_path):
    report = tmp_path / "00.json"
    row = batch.Row("alice", "00", "a.ipynb", batch.GRADED, 5, 5)
    report.write_text(json.dumps({"batch": {**row.as_dict(), "fingerprint": "abc"}}))
    assert batch._earlier(report, "abc").reused and batch._earlier(report, "abc").score == 5
    assert batch._earlier(report, "changed") is None
    report.write_text(json.dumps({"batch": {**row.as_dict(), "status": batch.FAILED, "fingerprint": "abc"}}))
    assert batch._earlier(report, "abc") is None


def test_grade_all_says_what_it_needs(tmp_path, capsys):
    assert cli.main(["grade-all", str(tmp_path / "nowhere")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert cli.main(["grade-all", str(tmp_path), "--out", str(tmp_path / "grades")]) == 2
    assert "no notebooks" in capsys.readouterr().err


@pytest.mark.docker
@pytest.mark.skipif(bool(probes.docker_reason()), reason=str(probes.docker_reason()))
def test_a_graded_run_waits_for_its_lab_and_leaves_another_labs_containers_alone(tmp_path):
    """Another lab's container survives a graded run (cleanup is by lab), and a run of a lab
    that another run holds waits for it instead of removing its work."""
    other = dockerlab.run("python:3.11-slim", lab="01", command=["sleep", "300"])
    held, release = threading.Event(), threading.Event()

    def hold():
        with locks.graded_run("00"):
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        threading.Timer(3, release.set).start()  # the other run ends three seconds in
        _notebook(tmp_path / "class" / "bob_00_setup.ipynb")
        [row] = batch.grade_all(tmp_path / "class", tmp_path / "grades", lab="00", limit=120, show=lambda line: None)
        assert (row.status, row.score, row.max_score) == (batch.GRADED, 0, 5), row
        assert "waiting for another graded run to release the lab-00 lock" in \
            (tmp_path / "grades" / "reports" / "bob" / "00.log").read_text()
        other.reload()
        assert other.status == "running", "a graded run of lab 00 touched lab 01's container"
        assert not dockerlab.client().containers.list(all=True, filters={"label": f"{dockerlab.LABEL}=00"})
    finally:
        release.set()
        holder.join()
        other.remove(force=True)
