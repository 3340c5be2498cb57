"""labkit.serving.predict against a stand-in HTTP server that records what it was sent."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from labkit import paths, serving


def test_predict_posts_instances_and_returns_the_replica():
    seen = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            seen["path"] = self.path
            seen["body"] = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            body = json.dumps({"predictions": serving.IRIS_CLASSES}).encode()
            self.send_response(200)
            self.send_header("X-Served-By", "replica-2")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        assert serving.predict(port) == (serving.IRIS_CLASSES, "replica-2")
        assert seen == {"path": "/predict", "body": {"instances": serving.IRIS_ROWS}}
        assert serving.predict(f"http://127.0.0.1:{port}/")[1] == "replica-2"
    finally:
        server.shutdown()


def test_the_digest_is_the_one_the_model_server_logs():
    import logging
    import sys

    sys.path.insert(0, str(paths.APP))
    try:
        from model_server.model import rows_digest
    finally:
        sys.path.pop(0)
    rows = serving.random_rows(5)
    assert len(rows) == 5 and all(len(r) == 4 for r in rows)
    assert serving.rows_digest(rows) == rows_digest(rows) != serving.rows_digest(serving.random_rows(5))
    assert serving.rows_digest([[5, 3, 1, 0]]) == serving.rows_digest([[5.0, 3.0, 1.0, 0.0]])  # as the server parses
    line = logging.Formatter("%(message)s").format(logging.makeLogRecord(
        {"msg": "predicted %d rows %s", "args": (5, rows_digest(rows))}))
    assert serving.predicted_digests(f"ts INFO {line}\nts INFO POST /predict 200") == {serving.rows_digest(rows)}


def test_wait_ready_waits_for_the_servers_own_200_and_says_why_none_came():
    import pytest

    from labkit.core.errors import RequirementNotMet

    answers = [503, 200]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(answers.pop(0) if len(answers) > 1 else answers[0])
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    class Container:  # what wait_ready reads of a Docker SDK container
        name, status = "app", "running"

        def __init__(self, port):
            self.attrs = {"State": {"Status": "running"}, "RestartCount": 0,
                          "NetworkSettings": {"Ports": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}}}

        def reload(self):
            pass

        def logs(self, tail):
            return b"loading model\n"

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        assert serving.wait_ready(Container(port), timeout=10) == port and answers == [200]
        answers[:] = [503]
        with pytest.raises(RequirementNotMet, match=r"^a 200 from /readyz on port 8080: not within 0.3s \(the "
                                                    r"container is running; last log lines:\nloading model\)$"):
            serving.wait_ready(Container(port), timeout=0.3)
    finally:
        server.shutdown()
