"""moto server lifecycle and the Vault probe, for real (processes and sockets)."""

import http.server
import os
import subprocess
import sys
import threading
import uuid

import pytest

from labkit import emulators, paths, probes
from labkit.core.errors import RequirementNotMet


def test_export_points_this_process_at_moto_until_it_stops(monkeypatch):
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "mine")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    moto = emulators.start_moto(emulators.free_port(None), show=False)
    try:
        moto.export()
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="made-through-the-environment")
        assert [b["Name"] for b in moto.client("s3").list_buckets()["Buckets"]] == ["made-through-the-environment"]
    finally:
        moto.stop()
    assert os.environ["AWS_ACCESS_KEY_ID"] == "mine" and "AWS_ENDPOINT_URL" not in os.environ


def test_moto_records_every_request_and_a_grader_s_moto_is_attached_not_owned(moto, monkeypatch):
    import json as json_

    from labkit import sagemaker

    endpoint, other = f"ep-{uuid.uuid4().hex[:8]}", f"ep-{uuid.uuid4().hex[:8]}"  # the log outlives resets
    runtime = moto.client("sagemaker-runtime")
    runtime.invoke_endpoint(EndpointName=endpoint, Body=json_.dumps({"instances": [[1, 2, 3, 4]]}),
                            ContentType="application/json")
    assert sagemaker.invocations(moto, endpoint) == [{"content_type": "application/json",
                                                      "body": {"instances": [[1, 2, 3, 4]]}}]
    assert sagemaker.invocations(moto, other) == []
    monkeypatch.setenv(emulators.MOTO_URL_ENV, moto.url)
    monkeypatch.setenv(emulators.MOTO_RECORDING_ENV, str(moto.recording))
    attached = emulators.start_moto(show=False)
    assert attached.attached and attached.url == moto.url and attached.running()
    assert len(attached.requests()) == len(moto.requests())
    sm = attached.client("secretsmanager")
    sm.create_secret(Name="t/two", SecretString="v1")  # pragma: allowlist secret
    assert emulators.secret_stages(sm, "t/two") == {"AWSCURRENT": "v1"}
    with pytest.raises(RequirementNotMet, match="no secret t/none") as info:
        emulators.secret_stages(sm, "t/none")
    assert isinstance(info.value, AssertionError)  # lab 03's cells catch it as one
    attached.stop()
    assert moto.running() and moto.answers()  # the grader's emulator is not the lab's to stop
    nobody = f"http://127.0.0.1:{emulators.free_port(None)}"
    monkeypatch.setenv(emulators.MOTO_URL_ENV, nobody)
    with pytest.raises(emulators.EmulatorError, match=f"the grader's server at {nobody} does not answer"):
        emulators.start_moto(show=False)


def test_moto_starts_answers_serves_secrets_and_stops():
    port = emulators.free_port(None)
    moto = emulators.start_moto(port, show=False)
    try:
        assert moto.running() and moto.answers() and moto.port == port
        assert moto.env["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{port}"
        sm = moto.client("secretsmanager")
        sm.create_secret(Name="t/one", SecretString="v1")  # pragma: allowlist secret
        sm.put_secret_value(SecretId="t/one", SecretString="v2")  # pragma: allowlist secret
        stages = {s for v in sm.list_secret_version_ids(SecretId="t/one")["Versions"] for s in v["VersionStages"]}
        assert stages == {"AWSCURRENT", "AWSPREVIOUS"}
        shared = moto.localstack_session().client("secretsmanager")  # localstack-client sees the same state
        assert shared.get_secret_value(SecretId="t/one")["SecretString"] == "v2"  # pragma: allowlist secret
        moto.reset()
        assert sm.list_secrets()["SecretList"] == []
        with pytest.raises(emulators.EmulatorError, match="already in use"):
            emulators.start_moto(port, show=False)
    finally:
        moto.stop()
    assert not moto.running() and not moto.answers()
    moto.stop()  # safe to repeat
    assert emulators.free_port(port) == port


_RACER = """
import sys, time
from labkit.cloud import emulators
real, first = emulators._port_free, [True]
def seen_free(port, host="127.0.0.1"):  # the race: the default port looks free to both at the first look
    if first.pop() if first else False:
        return True
    return real(port, host)
emulators._port_free = seen_free
emulators.DEFAULT_PORT = int(sys.argv[1])
moto = emulators.start_moto(show=False)
print(moto.port, emulators._listens(moto.process, moto.port), flush=True)
time.sleep(60)
"""


def test_two_labs_that_start_moto_at_once_get_one_each():
    """Both find the default port free and both try it: the one that loses the bind takes a free
    port, instead of taking the winner's server (and its resources) for its own."""
    default = emulators.free_port(None)
    racers = [subprocess.Popen([sys.executable, "-c", _RACER, str(default)], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(paths.REPO)}) for _ in range(2)]
    try:
        said = [racer.stdout.readline().split() for racer in racers]
    finally:
        for racer in racers:
            racer.kill()
            racer.wait()
    ports = {int(port) for port, _ in said}
    assert len(ports) == 2 and default in ports, said
    assert all(listens == "True" for _, listens in said), said


def test_vault_probe_reasons(monkeypatch):
    monkeypatch.delenv("VAULT_ADDR", raising=False)
    assert "VAULT_ADDR is not set" in probes.vault_reason()
    monkeypatch.setenv("VAULT_ADDR", "http://127.0.0.1:1")
    monkeypatch.delenv("VAULT_TOKEN", raising=False)
    assert "VAULT_TOKEN is not set" in probes.vault_reason()
    monkeypatch.setenv("VAULT_TOKEN", "not-a-real-token")  # pragma: allowlist secret
    port = emulators.free_port(None)
    monkeypatch.setenv("VAULT_ADDR", f"http://127.0.0.1:{port}")
    assert "no Vault server answers" in probes.vault_reason()


@pytest.mark.parametrize("status, expected", [(200, None), (503, "sealed")])
def test_vault_probe_against_a_health_endpoint(monkeypatch, status, expected):
    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(status if self.path.startswith("/v1/sys/health") else 404)
            self.end_headers()

        def log_message(self, *_):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("VAULT_ADDR", f"http://127.0.0.1:{server.server_port}")
        monkeypatch.setenv("VAULT_TOKEN", "not-a-real-token")  # pragma: allowlist secret
        reason = probes.vault_reason()
        assert reason is None if expected is None else expected in reason
    finally:
        server.shutdown()
