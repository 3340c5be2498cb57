"""Direct tests of settings, parsing, loading, prediction, training and the sample data."""
from __future__ import annotations

import csv
import json
import threading
import urllib.request
from pathlib import Path

import pytest

from model_server.config import Settings, resolve_model_dir, resolve_port
from model_server.model import BadRequest, ModelHolder, parse_csv_instances, parse_json_instances
from model_server.server import ModelHTTPServer, build_routes, media_type, wants_csv
from model_server.train import train

FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
DATA = Path(__file__).resolve().parents[1] / "data" / "iris_sample.csv"


# ---- settings ----------------------------------------------------------------

@pytest.mark.parametrize("flag, env, expected", [
    (None, {}, 8080),
    (None, {"PORT": "9000"}, 9000),
    (None, {"PORT": "9000", "SAGEMAKER_BIND_TO_PORT": "9100"}, 9100),
    (None, {"PORT": "9000", "SAGEMAKER_BIND_TO_PORT": "9100", "AIP_HTTP_PORT": "9200"}, 9200),
    (9300, {"PORT": "9000", "SAGEMAKER_BIND_TO_PORT": "9100", "AIP_HTTP_PORT": "9200"}, 9300),
    (None, {"AIP_HTTP_PORT": " ", "PORT": "9000"}, 9000),  # blank means unset
])
def test_port_precedence(flag, env, expected):
    assert resolve_port(flag, env) == expected


def test_bad_port_names_the_variable():
    with pytest.raises(ValueError, match="SAGEMAKER_BIND_TO_PORT='http'"):
        resolve_port(None, {"SAGEMAKER_BIND_TO_PORT": "http"})


@pytest.mark.parametrize("flag, env, expected", [
    (None, {}, "/opt/ml/model"),
    (None, {"MODEL_DIR": "/models/iris"}, "/models/iris"),
    ("/flag", {"MODEL_DIR": "/models/iris"}, "/flag"),
    (None, {"AIP_STORAGE_URI": "/tmp/cpr_model"}, "/tmp/cpr_model"),
    (None, {"AIP_STORAGE_URI": "file:///mnt/model"}, "/mnt/model"),
    (None, {"AIP_STORAGE_URI": "gs://bucket/model"}, "/opt/ml/model"),  # remote: ignored
    (None, {"AIP_STORAGE_URI": "/tmp/x", "MODEL_DIR": "/m"}, "/m"),
])
def test_model_dir_precedence(flag, env, expected):
    assert resolve_model_dir(flag, env) == Path(expected)


def test_settings_from_env():
    settings = Settings.from_env(env={})
    assert (settings.host, settings.port, settings.version) == ("0.0.0.0", 8080, "1.0.0")
    assert settings.log_requests and settings.model_load_delay_s == 0 and settings.shutdown_grace_s == 10
    settings = Settings.from_env(host="127.0.0.1", env={
        "APP_VERSION": "2.0.0", "LOG_REQUESTS": "0", "MODEL_LOAD_DELAY_S": "2.5",
        "AIP_HEALTH_ROUTE": "health", "AIP_PREDICT_ROUTE": "/v1/predict"})
    assert settings.host == "127.0.0.1" and settings.version == "2.0.0"
    assert not settings.log_requests and settings.model_load_delay_s == 2.5
    assert (settings.health_route, settings.predict_route) == ("/health", "/v1/predict")
    with pytest.raises(ValueError, match="MODEL_LOAD_DELAY_S"):
        Settings.from_env(env={"MODEL_LOAD_DELAY_S": "slow"})


def test_routes_include_vertex_paths():
    routes = build_routes(Settings(health_route="/h", predict_route="/p"))
    assert set(routes) >= {"/healthz", "/readyz", "/ping", "/metrics", "/version", "/predict", "/invocations",
                           "/h", "/p"}
    assert routes["/h"]["GET"] is routes["/readyz"]["GET"]
    assert list(routes["/p"]) == ["POST"]


# ---- parsing -----------------------------------------------------------------

def test_parse_json_instances():
    body = b'{"instances": [[5.1, 3.5, 1.4, 0.2], [6, 3, 5, 2]], "parameters": {"x": 1}}'
    assert parse_json_instances(body, FEATURES) == [[5.1, 3.5, 1.4, 0.2], [6.0, 3.0, 5.0, 2.0]]


@pytest.mark.parametrize("body, message", [
    (b"  ", "body is empty"),
    (b"\xff\xfe", "not valid JSON"),
    (b'{"instances": "5.1,3.5"}', "non-empty list"),
    (b'{"instances": [{"sepal length (cm)": 5.1}]}', "instance 0 must be a list of 4 numbers, got dict"),
    (b'{"instances": [[1, 2, 3, 4], [1, 2, 3, "4"]]}', 'instance 1, feature 3 ("petal width (cm)")'),
    (b'{"instances": [[1, 2, 3, Infinity]]}', "is not finite"),
])
def test_parse_json_errors(body, message):
    with pytest.raises(BadRequest, match=None) as info:
        parse_json_instances(body, FEATURES)
    assert message in str(info.value)


def test_parse_csv_instances():
    body = "\ufeff5.1,3.5,1.4,0.2\r\n\n 6 , 3 , 5 , 2 \n".encode()
    assert parse_csv_instances(body, FEATURES) == [[5.1, 3.5, 1.4, 0.2], [6.0, 3.0, 5.0, 2.0]]


@pytest.mark.parametrize("body, message", [
    (b"", "CSV body has no rows"),
    (b"\n\n", "CSV body has no rows"),
    (b"sepal_length,sepal_width,petal_length,petal_width\n", "CSV line 1, feature 0"),
    (b"5.1,3.5,1.4,0.2,setosa\n", "CSV line 1 has 5 values; expected 4"),
    (b"5.1,3.5,1.4,0.2\n5.1,3.5,,0.2\n", "CSV line 2, feature 2"),
    (b"5.1,3.5,1.4,inf\n", "is not finite"),
    (b"\xff", "not UTF-8"),
])
def test_parse_csv_errors(body, message):
    with pytest.raises(BadRequest) as info:
        parse_csv_instances(body, FEATURES)
    assert message in str(info.value)


@pytest.mark.parametrize("header, csv_out", [
    (None, False), ("", False), ("*/*", False), ("application/json", False), ("text/csv", True),
    ("text/csv; charset=utf-8", True), ("application/json, text/csv", False),
    ("text/html, text/csv;q=0.9", True), ("application/x-protobuf", False),
])
def test_accept_negotiation(header, csv_out):
    assert wants_csv(header) is csv_out


def test_media_type():
    assert media_type("Text/CSV; charset=utf-8") == "text/csv"
    assert media_type(None) == ""


# ---- model -------------------------------------------------------------------

def test_holder_loads_and_predicts(model_dir):
    holder = ModelHolder(model_dir)
    assert holder.state == "loading" and not holder.ready
    with pytest.raises(RuntimeError):
        holder.predict([[5.1, 3.5, 1.4, 0.2]])
    holder.load()
    assert holder.ready and holder.feature_names == FEATURES
    assert holder.predict([[5.1, 3.5, 1.4, 0.2], [6.3, 3.3, 6.0, 2.5]]) == ["setosa", "virginica"]


def test_holder_reports_missing_model(tmp_path):
    holder = ModelHolder(tmp_path / "nothing-here")
    holder.load()
    assert holder.state == "failed"
    assert "no model at" in holder.reason and "model_server train --out" in holder.reason


def test_holder_reports_corrupt_model(tmp_path):
    (tmp_path / "model.joblib").write_bytes(b"not a pickle")
    holder = ModelHolder(tmp_path)
    holder.load()
    assert holder.state == "failed" and holder.reason.startswith("model failed to load:")


def test_train_is_deterministic(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    first, second = train(tmp_path / "a"), train(tmp_path / "b")
    assert first == second
    assert (tmp_path / "a" / "model.joblib").read_bytes() == (tmp_path / "b" / "model.joblib").read_bytes()
    assert (tmp_path / "a" / "metadata.json").read_text() == (tmp_path / "b" / "metadata.json").read_text()
    assert first["trained_at"] == "1970-01-01T00:00:00Z"
    assert first["feature_names"] == FEATURES
    assert first["class_names"] == ["setosa", "versicolor", "virginica"]
    assert first["accuracy"] >= 0.9
    import sklearn
    assert first["sklearn_version"] == sklearn.__version__


def test_metadata_file(model_dir):
    metadata = json.loads((model_dir / "metadata.json").read_text())
    assert {"feature_names", "class_names", "sklearn_version", "accuracy", "trained_at"} <= set(metadata)


# ---- the sample data ---------------------------------------------------------

def test_sample_data_is_small_and_agrees_with_the_model(model_dir):
    assert DATA.stat().st_size < 2048
    with DATA.open() as handle:
        rows = list(csv.DictReader(handle))
    assert 15 <= len(rows) <= 30
    assert list(rows[0]) == ["sepal_length", "sepal_width", "petal_length", "petal_width", "species"]
    assert {row["species"] for row in rows} == {"setosa", "versicolor", "virginica"}
    holder = ModelHolder(model_dir)
    holder.load()
    features = [[float(row[k]) for k in list(row)[:4]] for row in rows]
    predicted = holder.predict(features)
    agree = sum(p == row["species"] for p, row in zip(predicted, rows))
    assert agree / len(rows) >= 0.9


# ---- the server in-process -----------------------------------------------------

def test_in_process_server(model_dir):
    server = ModelHTTPServer(Settings(host="127.0.0.1", port=0, model_dir=model_dir, version="9.9.9",
                                      log_requests=False))
    server.load_model()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        request = urllib.request.Request(f"http://127.0.0.1:{server.port}/predict", method="POST",
                                         data=b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}')
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.headers["X-Model-Version"] == "9.9.9"
            assert json.loads(response.read()) == {"predictions": ["setosa"], "model_version": "9.9.9"}
        assert server.wait_idle(1) == 0
    finally:
        server.shutdown()
        server.server_close()


def test_the_listen_backlog_holds_a_burst_of_new_connections():
    """socketserver listens with a backlog of 5: 100 locust users connecting at once overflowed
    it (226 drops counted in the container's /proc/net/netstat), and each dropped client waited a
    second to retry, which read as p99 1,100 ms (environments/load/README.md)."""
    assert ModelHTTPServer.request_queue_size >= 128
