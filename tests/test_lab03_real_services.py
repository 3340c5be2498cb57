"""Lab 03's §7 cells act on a real GCP project or Vault server only when the student opts in:
the cells of the solution, run here against a fake Secret Manager client and a fake Vault."""

from __future__ import annotations

import http.server
import json
import os
import threading
from types import SimpleNamespace

import nbformat
import pytest

from labkit import paths, prices, probes, spend

TOKEN = "hf_" + "0" * 34


def _cell(cell_id: str) -> str:
    return next(c.source for c in nbformat.read(paths.solution_for("03"), as_version=4).cells if c.id == cell_id)


def _run(cell_id: str, **names) -> None:
    exec(_cell(cell_id), {"os": os, "prices": prices, "probes": probes, "spend": spend, "TOKEN": TOKEN,
                          "describe_secret": lambda value: f"{value[:3]}…", **names})


class FakeSecretManager:
    """Records the calls the cell makes, and gives back what was stored."""
    calls: list[str] = []

    def __init__(self):
        self.stored = b""

    def create_secret(self, request):
        self.calls.append("create " + request["secret_id"])

    def add_secret_version(self, request):
        self.calls.append("add")
        self.stored = request["payload"]["data"]
        return SimpleNamespace(name=request["parent"] + "/versions/1")

    def access_secret_version(self, request):
        self.calls.append("access")
        return SimpleNamespace(payload=SimpleNamespace(data=self.stored))

    def delete_secret(self, request):
        self.calls.append("delete")


@pytest.fixture
def gcp(monkeypatch):
    secretmanager = pytest.importorskip("google.cloud.secretmanager")
    monkeypatch.setattr(secretmanager, "SecretManagerServiceClient", FakeSecretManager)
    monkeypatch.setattr(probes, "gcp_credentials_reason", lambda: None)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "a-students-project")
    FakeSecretManager.calls = []
    return FakeSecretManager.calls


def test_the_gcp_cell_prints_the_prices_and_creates_nothing_without_confirm_spend(gcp, capsys):
    _run("gcp", CONFIRM_SPEND=False)
    said = capsys.readouterr().out
    assert gcp == [] and "skipped: not creating anything on GCP Secret Manager" in said
    assert "CONFIRM_SPEND = True" in said and str(prices.price("secret_manager", "active_version")) in said


def test_the_gcp_cell_with_confirm_spend_stores_reads_and_deletes(gcp, capsys):
    _run("gcp", CONFIRM_SPEND=True)
    assert gcp == ["create labkit-03-hf-token", "add", "access", "delete"]
    assert "True" in capsys.readouterr().out  # read back what it stored


@pytest.fixture
def vault(monkeypatch):
    """A Vault that answers its health check and its KV v2 API; the requests it got."""
    seen: list[str] = []
    store: dict = {}

    class Vault(http.server.BaseHTTPRequestHandler):
        def _answer(self, status: int, body: dict | None = None):
            self.send_response(status)
            self.end_headers()
            if body is not None:
                self.wfile.write(json.dumps(body).encode())

        def do_GET(self):
            if self.path.startswith("/v1/sys/health"):
                return self._answer(200, {})
            seen.append(f"GET {self.path}")
            self._answer(200, {"data": {"data": store, "metadata": {"version": 1}}})

        def do_POST(self):
            seen.append(f"POST {self.path}")
            store.update(json.loads(self.rfile.read(int(self.headers["Content-Length"])))["data"])
            self._answer(200, {})

        def do_DELETE(self):
            seen.append(f"DELETE {self.path}")
            self._answer(204)

        def log_message(self, *_):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Vault)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("VAULT_ADDR", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("VAULT_TOKEN", "not-a-real-token")  # pragma: allowlist secret
    yield seen
    server.shutdown()


def test_the_vault_cell_writes_nothing_without_use_vault(vault, capsys):
    _run("vault", USE_VAULT=False)
    assert vault == [] and "skipped: USE_VAULT is False" in capsys.readouterr().out


def test_the_vault_cell_with_use_vault_writes_reads_and_deletes(vault):
    _run("vault", USE_VAULT=True)
    assert vault == ["POST /v1/secret/data/labkit-03/hf-token", "GET /v1/secret/data/labkit-03/hf-token",
                     "DELETE /v1/secret/metadata/labkit-03/hf-token"]
