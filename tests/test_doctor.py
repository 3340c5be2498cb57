"""The doctor, run for real against this machine, and its rows checked as data."""
import io

import pytest
from rich.console import Console

from labkit import doctor, probes


@pytest.fixture(autouse=True)
def fresh_probes():
    """Leave no probe result cached under this test's patched environment."""
    yield
    probes.refresh()


def run():
    out = io.StringIO()
    code = doctor.run_doctor(Console(file=out, width=120, force_terminal=False, force_jupyter=False))
    return code, out.getvalue()


def test_doctor_passes_with_a_running_engine():
    probes.refresh()
    if reason := probes.docker_reason():
        pytest.skip(reason)
    code, text = run()
    assert code == 0, text
    assert "Everything required is here" in text
    for name in ("Docker engine", "BuildKit", "Compose", "kind", "kubectl", "Disk free for Docker", "NVIDIA GPU",
                 "NVIDIA Container Toolkit", "AWS credentials", "GCP credentials"):
        assert name in text


def test_doctor_fails_without_an_engine_and_says_how_to_start_it(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/dead.sock")
    code, text = run()
    assert code != 0
    assert "MISSING" in text and "start it" in text and "sudo systemctl start docker" in text


@pytest.fixture
def no_tools(monkeypatch):
    """Skip the external commands (slow to start) for tests about other rows."""
    monkeypatch.setattr(probes, "_run", lambda *argv, **kwargs: None)


def test_collect_probes_afresh(monkeypatch, tmp_path, no_tools):
    probes.refresh()
    if reason := probes.docker_reason():
        pytest.skip(reason)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/dead.sock")
    engine = doctor.collect()[0]
    assert (engine.name, engine.status, engine.required) == ("Docker engine", doctor.MISSING, True)
    assert "start it" in engine.fix
    monkeypatch.delenv("DOCKER_HOST")
    assert doctor.collect()[0].status == doctor.OK


def test_item_statuses():
    assert doctor._item("x", probes.Finding("v1")) == doctor.Item("x", doctor.OK, "v1")
    needed = doctor._item("x", probes.Finding(reason="install x"), required=True)
    assert (needed.status, needed.fix, needed.required) == (doctor.MISSING, "install x", True)
    assert doctor._item("x", probes.Finding(reason="r")).status == doctor.OPTIONAL
    assert doctor._item("x", probes.Finding(reason="r"), absent=doctor.WARN).status == doctor.WARN


def test_low_disk_warns_with_prune_advice(monkeypatch):
    monkeypatch.setattr(probes, "docker_disk_free", lambda: probes.DiskFree(3 * 10**9, "/var/lib/docker"))
    item = doctor._disk()
    assert item.status == doctor.WARN and "3.0 GB free" in item.found and "docker system prune" in item.fix


def test_enough_disk_is_ok(monkeypatch):
    monkeypatch.setattr(probes, "docker_disk_free", lambda: probes.DiskFree(50 * 10**9, "/var/lib/docker"))
    assert doctor._disk().status == doctor.OK


def test_every_capability_has_a_row_and_the_base_images_say_what_to_run(monkeypatch, no_tools):
    from labkit import capabilities, images

    monkeypatch.setattr(probes, "docker_engine", lambda: probes.Finding("Docker Engine (test)"))
    monkeypatch.setattr(probes, "docker_reason", lambda: None)
    monkeypatch.setattr(images, "missing_base_images", lambda: ["python:3.11-slim"])
    rows = {item.name: item for item in doctor.collect()}
    assert {c.title for c in capabilities.TABLE.values()} <= set(rows)
    base = rows["Base images"]
    assert base.status == doctor.OPTIONAL and "python:3.11-slim" in base.fix and "make images" in base.fix
    monkeypatch.setattr(images, "missing_base_images", lambda: [])
    assert {item.name: item for item in doctor.collect()}["Base images"].status == doctor.OK


def test_no_secret_is_printed(monkeypatch, no_tools):
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRET"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    _, text = run()
    assert secret not in text and "AKIAIOSFODNN7EXAMPLE" not in text
    assert "AWS credentials" in text and "present" in text
