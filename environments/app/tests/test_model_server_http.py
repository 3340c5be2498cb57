"""The server as a subprocess: every route, the error cases, and the platform contracts."""
from __future__ import annotations

import http.client
import json
import re
import signal
import threading
import time

import pytest

SETOSA, VERSICOLOR, VIRGINICA = [5.1, 3.5, 1.4, 0.2], [6.4, 3.2, 4.5, 1.5], [6.3, 3.3, 6.0, 2.5]
THREE = {"instances": [SETOSA, VERSICOLOR, VIRGINICA]}
LABELS = ["setosa", "versicolor", "virginica"]


def metric(text: str, name: str, **labels: str) -> float:
    """Value of one sample in Prometheus text format (labels matched as a subset)."""
    for line in text.splitlines():
        match = re.match(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(3))
    raise AssertionError(f"no sample {name}{labels} in:\n{text}")


# ---- shared, loaded server -------------------------------------------------

def test_liveness_and_readiness(ready_server):
    for path in ("/healthz", "/readyz", "/ping"):
        response = ready_server.get(path)
        assert response.status == 200, (path, response.body)
        assert response.headers["X-Model-Version"] == "1.2.3-test"
    assert ready_server.get("/readyz").json()["status"] == "ready"


def test_every_response_names_the_host_that_served_it(ready_server):
    """X-Served-By: behind a proxy with several replicas, tells which one answered."""
    import socket

    for response in (ready_server.get("/healthz"), ready_server.post("/predict", THREE),
                     ready_server.get("/no-such-route")):
        assert response.headers["X-Served-By"] == socket.gethostname(), response.headers


def test_predict(ready_server):
    response = ready_server.post("/predict", THREE)
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Model-Version"] == "1.2.3-test"
    assert response.json() == {"predictions": LABELS, "model_version": "1.2.3-test"}


def test_predict_accepts_any_content_type(ready_server):
    # `curl -d` sends application/x-www-form-urlencoded; /predict parses JSON anyway.
    response = ready_server.post("/predict", json.dumps(THREE).encode(),
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.json()["predictions"] == LABELS


@pytest.mark.parametrize("body, message", [
    (b"", "body is empty"),
    (b'{"instances": [[5.1, 3.5', "not valid JSON"),
    (b"[[5.1, 3.5, 1.4, 0.2]]", 'key "instances"'),
    (b'{"rows": [[5.1, 3.5, 1.4, 0.2]]}', 'key "instances"'),
    (b'{"instances": []}', "non-empty list"),
    (b'{"instances": [5.1, 3.5, 1.4, 0.2]}', "instance 0 must be a list of 4 numbers"),
    (b'{"instances": [[5.1, 3.5, 1.4]]}', "instance 0 has 3 values; expected 4"),
    (b'{"instances": [[5.1, 3.5, 1.4, 0.2, 9]]}', "has 5 values; expected 4"),
    (b'{"instances": [[5.1, 3.5, 1.4, 0.2], [5.1, "wide", 1.4, 0.2]]}',
     'instance 1, feature 1 ("sepal width (cm)") is not a number: "wide"'),
    (b'{"instances": [[5.1, 3.5, true, 0.2]]}', "is not a number: true"),
    (b'{"instances": [[5.1, 3.5, null, 0.2]]}', "is not a number: null"),
    (b'{"instances": [[5.1, 3.5, NaN, 0.2]]}', "is not finite"),
])
def test_predict_bad_requests(ready_server, body, message):
    response = ready_server.post("/predict", body, headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert response.headers["X-Model-Version"] == "1.2.3-test"
    assert message in response.json()["error"]


def test_invocations_json(ready_server):
    for content_type in ("application/json", "application/json; charset=utf-8"):
        response = ready_server.post("/invocations", json.dumps(THREE).encode(),
                                     headers={"Content-Type": content_type})
        assert response.status == 200
        assert response.json()["predictions"] == LABELS


def test_invocations_csv_in_json_out(ready_server):
    body = b"5.1,3.5,1.4,0.2\r\n6.4, 3.2, 4.5, 1.5\n\n6.3,3.3,6.0,2.5\n"
    response = ready_server.post("/invocations", body, headers={"Content-Type": "text/csv"})
    assert response.status == 200
    assert response.json()["predictions"] == LABELS


def test_invocations_csv_out(ready_server):
    for accept in ("text/csv", "text/csv, application/json;q=0.5"):
        response = ready_server.post("/invocations", b"5.1,3.5,1.4,0.2\n6.3,3.3,6.0,2.5\n",
                                     headers={"Content-Type": "text/csv", "Accept": accept})
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/csv"
        assert response.body == b"setosa\nvirginica\n"
    # JSON in, CSV out works too
    response = ready_server.post("/invocations", THREE, headers={"Accept": "text/csv"})
    assert response.body.decode().splitlines() == LABELS


def test_invocations_errors(ready_server):
    response = ready_server.post("/invocations", b"x", headers={"Content-Type": "text/plain"})
    assert response.status == 415
    assert "text/plain" in response.json()["error"]
    response = ready_server.post("/invocations", b"sepal_length,a,b,c\n", headers={"Content-Type": "text/csv"})
    assert response.status == 400
    assert "CSV line 1, feature 0" in response.json()["error"]
    response = ready_server.post("/invocations", b"5.1,3.5\n", headers={"Content-Type": "text/csv"})
    assert response.status == 400
    assert "CSV line 1 has 2 values; expected 4" in response.json()["error"]


def test_unknown_route_and_wrong_method(ready_server, request_http):
    response = ready_server.get("/nope")
    assert response.status == 404 and "no route /nope" in response.json()["error"]
    assert response.headers["X-Model-Version"] == "1.2.3-test"
    response = ready_server.get("/predict")
    assert response.status == 405 and response.headers["Allow"] == "POST"
    response = request_http("DELETE", ready_server.url + "/healthz")
    assert response.status == 405 and response.headers["Allow"] == "GET"


def test_head_has_headers_and_no_body(ready_server):
    conn = http.client.HTTPConnection("127.0.0.1", ready_server.port, timeout=5)
    conn.request("HEAD", "/healthz")
    response = conn.getresponse()
    assert response.status == 200 and response.read() == b""
    assert response.getheader("X-Model-Version") == "1.2.3-test"
    conn.close()


def test_version(ready_server):
    body = ready_server.get("/version").json()
    assert body["version"] == "1.2.3-test"
    model = body["model"]
    assert model["class_names"] == LABELS
    assert len(model["feature_names"]) == 4
    assert model["accuracy"] >= 0.9
    assert {"sklearn_version", "trained_at"} <= set(model)


def test_keep_alive_connection_serves_many_requests(ready_server):
    conn = http.client.HTTPConnection("127.0.0.1", ready_server.port, timeout=5)
    for _ in range(3):
        conn.request("POST", "/predict", body=json.dumps({"instances": [SETOSA]}),
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        assert response.status == 200
        assert json.loads(response.read())["predictions"] == ["setosa"]
    conn.close()


def test_keep_alive_answers_are_not_held_back(ready_server):
    """Headers and body are two writes; without TCP_NODELAY the second waits for the client's
    delayed ACK (Nagle's algorithm): about 40 ms per answer on a kept-alive connection, which a
    load test (locust, a proxy's upstream pool) would take for the model's latency."""
    conn = http.client.HTTPConnection("127.0.0.1", ready_server.port, timeout=5)
    seconds = []
    for _ in range(20):
        started = time.perf_counter()
        conn.request("POST", "/predict", body=json.dumps({"instances": [SETOSA]}),
                     headers={"Content-Type": "application/json"})
        conn.getresponse().read()
        seconds.append(time.perf_counter() - started)
    conn.close()
    assert sorted(seconds)[10] < 0.02, f"median {sorted(seconds)[10] * 1000:.0f} ms on a kept-alive connection"


def test_metrics(ready_server):
    before = ready_server.get("/metrics").body.decode()
    ready_server.post("/predict", THREE)
    ready_server.post("/predict", b"{}")

    def delta(name, **labels):
        try:
            old = metric(before, name, **labels)
        except AssertionError:
            old = 0.0
        return metric(text, name, **labels) - old

    # A request is counted once its answer is sent, so a scrape right after may lead by a moment.
    deadline = time.monotonic() + 5
    while True:
        response = ready_server.get("/metrics")
        text = response.body.decode()
        if delta("model_server_request_duration_seconds_count", route="/predict") >= 2 \
                or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")

    assert delta("model_server_requests_total", route="/predict", status="200") == 1
    assert delta("model_server_requests_total", route="/predict", status="400") == 1
    assert delta("model_server_request_duration_seconds_count", route="/predict") == 2
    assert metric(text, "model_server_request_duration_seconds_bucket", route="/predict", le="+Inf") >= 2
    assert delta("model_server_predictions_total", class_name="virginica") == 1
    assert metric(text, "model_server_model_loaded") == 1
    assert metric(text, "model_server_info", version="1.2.3-test") == 1
    assert "process_cpu_seconds_total" not in text  # dedicated registry


def test_request_log_lines(ready_server):
    ready_server.get("/healthz?probe=1")
    deadline = time.monotonic() + 2
    while "GET /healthz?probe=1 200" not in ready_server.output() and time.monotonic() < deadline:
        time.sleep(0.05)
    line = next(l for l in ready_server.output().splitlines() if "GET /healthz?probe=1 200" in l)
    assert re.search(r"GET /healthz\?probe=1 200 \d+\.\dms$", line)


# ---- servers with their own settings ---------------------------------------

def test_slow_load_liveness_before_readiness(contract_servers, run_cli):
    server = contract_servers["loading"]  # MODEL_LOAD_DELAY_S=3600
    assert server.get("/healthz").status == 200
    readyz = server.get("/readyz")
    assert readyz.status == 503 and readyz.json() == {"status": "loading", "reason": "model is loading"}
    assert readyz.headers["X-Model-Version"] == "1.0.0"
    assert server.get("/ping").status == 503
    predict = server.post("/predict", THREE)
    assert predict.status == 503 and "not ready" in predict.json()["error"]
    invocations = server.post("/invocations", b"5.1,3.5,1.4,0.2\n", headers={"Content-Type": "text/csv"})
    assert invocations.status == 503
    assert server.get("/version").json()["model"] is None
    assert metric(server.get("/metrics").body.decode(), "model_server_model_loaded") == 0
    assert run_cli("healthcheck", "--url", server.url + "/healthz").returncode == 0
    assert run_cli("healthcheck", "--ready", env={"PORT": str(server.port)}).returncode == 1
    # SIGTERM while the model is still loading: exits at once, cleanly
    server.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=5) == 0


def test_load_delay_then_ready(contract_servers):
    server = contract_servers["sagemaker"]  # MODEL_LOAD_DELAY_S=0.3, loaded by now
    assert "MODEL_LOAD_DELAY_S=0.3: sleeping before loading the model" in server.output()
    assert server.get("/readyz").status == 200
    assert server.post("/predict", THREE).json()["predictions"] == LABELS


def test_missing_model_stays_unready_with_reason(start_server, tmp_path):
    empty = tmp_path / "empty-model-dir"
    empty.mkdir()
    server = start_server(model=empty)
    server.wait_listening()
    deadline = time.monotonic() + 10
    while server.get("/readyz").json()["status"] == "loading" and time.monotonic() < deadline:
        time.sleep(0.05)
    readyz = server.get("/readyz")
    assert readyz.status == 503
    assert readyz.json()["status"] == "failed"
    assert f"no model at {empty}/model.joblib" in readyz.json()["reason"]
    assert server.get("/healthz").status == 200
    assert server.post("/predict", THREE).status == 503
    assert "ERROR model failed to load: no model at" in server.output()


def test_vertex_contract(contract_servers):
    server = contract_servers["vertex"]
    health, predict = server.extra["health_route"], server.extra["predict_route"]
    assert server.get(health).status == 200
    response = server.post(predict, {"instances": [SETOSA, VIRGINICA], "parameters": {}})
    assert response.status == 200 and response.json()["predictions"] == ["setosa", "virginica"]
    assert server.post("/predict", THREE).json()["predictions"] == LABELS  # defaults still work
    assert server.get("/healthz").status == 200
    assert f"Vertex routes {health} {predict}" in server.output()


def test_sagemaker_serve_command(contract_servers):
    server = contract_servers["sagemaker"]
    assert server.get("/ping").status == 200
    response = server.post("/invocations", b"6.3,3.3,6.0,2.5\n",
                           headers={"Content-Type": "text/csv", "Accept": "text/csv"})
    assert response.body == b"virginica\n"
    assert response.headers["X-Model-Version"] == "2.0.0"
    assert "SAGEMAKER_MODEL_SERVER_TIMEOUT=120" in server.output()


def test_sigterm_lets_in_flight_request_finish(contract_servers):
    server = contract_servers["sigterm"]
    result = {}
    client = threading.Thread(target=lambda: result.update(r=server.post("/predict", THREE)))
    client.start()
    deadline = time.monotonic() + 5  # wait until the predict is really in flight
    while time.monotonic() < deadline:
        text = server.get("/metrics").body.decode()
        if metric(text, "model_server_requests_in_flight") >= 2:  # the predict + this scrape
            break
        time.sleep(0.02)
    server.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=10) == 0
    client.join(timeout=5)
    assert result["r"].status == 200 and result["r"].json()["predictions"] == LABELS
    log = server.output()
    assert "SIGTERM received: stopped accepting, drained in" in log
    assert log.index("POST /predict 200") < log.index("SIGTERM received")


def test_shutdown_grace_is_bounded(contract_servers):
    server = contract_servers["grace"]
    def abandoned_request():
        try:
            server.post("/predict", THREE)
        except OSError:
            pass  # the server exits before answering: that is the point

    threading.Thread(target=abandoned_request, daemon=True).start()
    time.sleep(0.3)
    started = time.monotonic()
    server.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=10) == 0
    assert time.monotonic() - started < 3
    assert "1 request(s) still in flight after 0.3 s, abandoned" in server.output()


def test_sigint_and_quiet_logging(start_server):
    server = start_server(env={"LOG_REQUESTS": "0"})
    server.wait_listening()
    server.get("/healthz")
    server.send_signal(signal.SIGINT)
    assert server.proc.wait(timeout=10) == 0
    log = server.output()
    assert "GET /healthz" not in log
    assert "SIGINT received" in log


def test_port_in_use_fails_clearly(start_server, ready_server):
    server = start_server(port=ready_server.port)
    assert server.proc.wait(timeout=10) == 1
    assert f"cannot listen on 0.0.0.0:{ready_server.port}" in server.output()
