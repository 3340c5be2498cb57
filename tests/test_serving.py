"""labkit.serving.predict against a stand-in HTTP server that records what it was sent."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from labkit import serving


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
