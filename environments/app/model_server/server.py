"""Stdlib HTTP server for the model: REST, SageMaker and Vertex AI contracts.

The socket listens before the model loads (in a background thread), so liveness
answers during a slow load while readiness stays 503. SIGTERM/SIGINT stop
accepting, let in-flight requests finish (bounded) and exit 0: the behaviour
rolling updates and blue-green switches rely on.
"""
from __future__ import annotations

import json
import logging
import signal
import socket
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Optional
from urllib.parse import urlsplit

from .config import Settings
from .metrics import Metrics
from .model import BadRequest, ModelHolder, parse_csv_instances, parse_json_instances, rows_digest

log = logging.getLogger("model_server")

MAX_BODY_BYTES = 6 * 1024 * 1024  # SageMaker's real-time payload limit is 6 MB
JSON = "application/json"
CSV = "text/csv"


class HTTPError(Exception):
    """Ends a request early with a JSON error body."""

    def __init__(self, status: int, message: str, headers: Optional[dict] = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def media_type(header: Optional[str]) -> str:
    """'text/csv; charset=utf-8' -> 'text/csv'."""
    return (header or "").split(";")[0].strip().lower()


def wants_csv(accept: Optional[str]) -> bool:
    """True when the first supported type in Accept is text/csv (JSON is the default)."""
    for part in (accept or "").split(","):
        kind = media_type(part)
        if kind == CSV:
            return True
        if kind in (JSON, "application/*", "*/*"):
            return False
    return False


class ModelHTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # idle keep-alive connections must not block exit
    # The listen backlog (socketserver's default is 5): a burst of new connections beyond it is
    # dropped and each client retries after a second, which a load test reads as p99 > 1 s.
    request_queue_size = 128

    def __init__(self, settings: Settings):
        self.settings = settings
        self.holder = ModelHolder(settings.model_dir, settings.device)
        self.metrics = Metrics(settings.version)
        self.draining = False
        self.hostname = socket.gethostname()  # X-Served-By: tells replicas behind a proxy apart
        self._in_flight = 0
        self._idle = threading.Condition()
        self.routes = build_routes(settings)
        super().__init__((settings.host, settings.port), Handler)

    @property
    def port(self) -> int:
        return self.server_address[1]

    def handle_error(self, request, client_address) -> None:
        """Clients that hang up are routine, not tracebacks."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            log.debug("connection from %s ended: %s", client_address[0], exc)
        else:
            log.exception("error on connection from %s", client_address[0])

    def load_model(self) -> None:
        self.holder.load(self.settings.model_load_delay_s)
        self.metrics.model_loaded.set(1 if self.holder.ready else 0)

    def request_started(self) -> None:
        with self._idle:
            self._in_flight += 1
        self.metrics.in_flight.inc()

    def request_finished(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()
        self.metrics.in_flight.dec()

    def wait_idle(self, timeout: float) -> int:
        """Wait until no request is in flight or timeout passes; return how many are left."""
        with self._idle:
            self._idle.wait_for(lambda: self._in_flight == 0, timeout=timeout)
            return self._in_flight


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: load tests measure the model, not TCP setup
    # TCP_NODELAY: an answer is two writes (headers, body); with Nagle's algorithm the body waits
    # for the client's delayed ACK, about 40 ms on every kept-alive request.
    disable_nagle_algorithm = True
    server_version = "model-server"
    timeout = 30  # seconds an idle keep-alive connection is kept
    server: ModelHTTPServer

    # ---- plumbing -------------------------------------------------------
    def do_GET(self): self._dispatch("GET")
    def do_HEAD(self): self._dispatch("HEAD")
    def do_POST(self): self._dispatch("POST")
    def do_PUT(self): self._dispatch("PUT")
    def do_PATCH(self): self._dispatch("PATCH")
    def do_DELETE(self): self._dispatch("DELETE")
    def do_OPTIONS(self): self._dispatch("OPTIONS")

    def _dispatch(self, method: str) -> None:
        started = time.perf_counter()
        server = self.server
        server.request_started()
        path = urlsplit(self.path).path
        methods = server.routes.get(path)
        route = path if methods else "other"  # bounded label cardinality
        self._status = 500
        try:
            body = self._read_body() if method in ("POST", "PUT", "PATCH") else b""
            if methods is None:
                raise HTTPError(404, f"no route {path}; see GET /version and the README for routes")
            action = methods.get("GET" if method == "HEAD" else method)
            if action is None:
                allow = ", ".join(sorted(methods))
                raise HTTPError(405, f"{method} not allowed on {path}; use {allow}", {"Allow": allow})
            action(self, body)
        except HTTPError as exc:
            self._send_json(exc.status, {"error": exc.message}, exc.headers)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # client went away; nothing to answer
        except Exception as exc:
            log.exception("error serving %s %s", method, self.path)
            self._send_json(500, {"error": f"internal error: {type(exc).__name__}: {exc}"})
        finally:
            elapsed = time.perf_counter() - started
            server.metrics.observe(route, self._status, elapsed)
            if server.settings.log_requests:
                log.info("%s %s %d %.1fms", method, self.path, self._status, elapsed * 1000)
            server.request_finished()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            raise HTTPError(411, "chunked bodies are not supported; send Content-Length")
        raw = self.headers.get("Content-Length", "0") or "0"
        try:
            length = int(raw)
            if length < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            raise HTTPError(400, f"invalid Content-Length: {raw!r}") from None
        if length > MAX_BODY_BYTES:
            self.close_connection = True  # the unread body would poison the connection
            raise HTTPError(413, f"body of {length} bytes is over the {MAX_BODY_BYTES} byte limit")
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes, content_type: str, headers: Optional[dict] = None) -> None:
        self._status = status
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Model-Version", self.server.settings.version)
        self.send_header("X-Served-By", self.server.hostname)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.server.draining or self.close_connection:
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, payload: dict, headers: Optional[dict] = None) -> None:
        self._send(status, (json.dumps(payload) + "\n").encode(), JSON, headers)

    def send_error(self, code, message=None, explain=None):
        """Protocol-level errors (bad request line, oversized headers) as JSON too."""
        self.close_connection = True
        if not hasattr(self, "command") or self.command is None:
            self.command = ""
        reason = message or self.responses.get(code, ("error",))[0]
        self._send(code, (json.dumps({"error": reason}) + "\n").encode(), JSON)

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        log.debug(format, *args)  # requests are logged once, by _dispatch

    # ---- routes ---------------------------------------------------------
    def liveness(self, _body: bytes) -> None:
        self._send_json(200, {"status": "alive", "version": self.server.settings.version})

    def readiness(self, _body: bytes) -> None:
        server, holder = self.server, self.server.holder
        if server.draining:
            self._send_json(503, {"status": "shutting_down", "reason": "server is shutting down"})
        elif holder.ready:
            self._send_json(200, {"status": "ready", "version": server.settings.version})
        else:
            self._send_json(503, {"status": holder.state, "reason": holder.reason})

    def metrics(self, _body: bytes) -> None:
        self._send(200, self.server.metrics.render(), self.server.metrics.content_type)

    def version(self, _body: bytes) -> None:
        holder = self.server.holder
        self._send_json(200, {"version": self.server.settings.version, "model": holder.metadata,
                              "device": holder.device})

    def predict(self, body: bytes) -> None:
        """POST /predict (and AIP_PREDICT_ROUTE): JSON in, JSON out, any Content-Type."""
        rows = parse_json_instances(body, self._feature_names())
        self._send_json(200, {"predictions": self._predict(rows), "model_version": self.server.settings.version})

    def invocations(self, body: bytes) -> None:
        """SageMaker POST /invocations: application/json or text/csv in; JSON or CSV out by Accept."""
        kind = media_type(self.headers.get("Content-Type")) or JSON
        if kind not in (JSON, CSV):
            raise HTTPError(415, f"unsupported Content-Type {kind!r}; use {JSON} or {CSV}")
        names = self._feature_names()
        rows = parse_csv_instances(body, names) if kind == CSV else parse_json_instances(body, names)
        labels = self._predict(rows)
        if wants_csv(self.headers.get("Accept")):
            self._send(200, "".join(f"{label}\n" for label in labels).encode(), CSV)
        else:
            self._send_json(200, {"predictions": labels, "model_version": self.server.settings.version})

    def _feature_names(self) -> list[str]:
        holder = self.server.holder  # requests already accepted are served even while draining
        if not holder.ready:
            raise HTTPError(503, f"model not ready: {holder.reason}")
        return holder.feature_names

    def _predict(self, rows) -> list[str]:
        if self.server.settings.predict_delay_s > 0:
            time.sleep(self.server.settings.predict_delay_s)
        labels = self.server.holder.predict(rows)
        if self.server.settings.log_requests:
            log.info("predicted %d rows %s", len(rows), rows_digest(rows))
        for label, count in Counter(labels).items():
            self.server.metrics.predictions.labels(class_name=label).inc(count)
        return labels


def _bad_request(action: Callable) -> Callable:
    """Turn a parser's BadRequest into a 400 with its message."""
    def wrapped(handler: Handler, body: bytes) -> None:
        try:
            action(handler, body)
        except BadRequest as exc:
            raise HTTPError(400, str(exc)) from None
    return wrapped


def build_routes(settings: Settings) -> dict[str, dict[str, Callable]]:
    """{path: {method: action}}; the Vertex AIP_* routes are added on top (readiness / predict)."""
    predict, invocations = _bad_request(Handler.predict), _bad_request(Handler.invocations)
    routes = {
        "/healthz": {"GET": Handler.liveness},
        "/readyz": {"GET": Handler.readiness},
        "/ping": {"GET": Handler.readiness},
        "/metrics": {"GET": Handler.metrics},
        "/version": {"GET": Handler.version},
        "/predict": {"POST": predict},
        "/invocations": {"POST": invocations},
    }
    if settings.health_route:
        routes[settings.health_route] = {"GET": Handler.readiness}
    if settings.predict_route:
        routes[settings.predict_route] = {"POST": predict}
    return routes


def configure_logging() -> None:
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, force=True,
                        format="%(asctime)s %(levelname)s %(message)s")


def serve(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT; return the process exit code."""
    try:
        server = ModelHTTPServer(settings)
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", settings.host, settings.port, exc)
        return 1
    stop, received = threading.Event(), []

    def on_signal(signum, _frame):
        received.append(signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    extra = [r for r in (settings.health_route, settings.predict_route) if r]
    log.info("model server %s listening on http://%s:%d, model dir %s%s", settings.version, settings.host,
             server.port, settings.model_dir, f", Vertex routes {' '.join(extra)}" if extra else "")
    if settings.sagemaker_timeout:
        log.info("SAGEMAKER_MODEL_SERVER_TIMEOUT=%s", settings.sagemaker_timeout)
    threading.Thread(target=server.load_model, name="model-loader", daemon=True).start()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="http",
                     daemon=True).start()
    while not stop.wait(0.5):  # a timed wait keeps the main thread responsive to signals
        pass
    started = time.monotonic()
    server.draining = True
    server.shutdown()       # stop the accept loop ...
    server.server_close()   # ... and close the listening socket
    left = server.wait_idle(settings.shutdown_grace_s)
    outcome = (f"drained in {(time.monotonic() - started) * 1000:.0f} ms" if not left
               else f"{left} request(s) still in flight after {settings.shutdown_grace_s:g} s, abandoned")
    log.info("%s received: stopped accepting, %s; exiting", received[0], outcome)
    return 0
