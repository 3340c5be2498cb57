"""Prometheus metrics on a dedicated registry (no process/platform collectors,
so /metrics shows exactly what the labs talk about, and tests can build many)."""
from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest,
)

# The *_created series only add noise to a text dump read by students.
disable_created_metrics()

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, version: str):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "model_server_requests", "HTTP requests served, by route and status code.",
            ["route", "status"], registry=self.registry)
        self.latency = Histogram(
            "model_server_request_duration_seconds", "Time to serve a request, by route.",
            ["route"], buckets=BUCKETS, registry=self.registry)
        self.model_loaded = Gauge(
            "model_server_model_loaded", "1 once the model is loaded and the server is ready, else 0.",
            registry=self.registry)
        self.in_flight = Gauge(
            "model_server_requests_in_flight", "Requests being served right now.",
            registry=self.registry)
        self.predictions = Counter(
            "model_server_predictions", "Instances predicted, by predicted class.",
            ["class_name"], registry=self.registry)
        info = Gauge("model_server_info", "Always 1; labels say which version serves.",
                     ["version"], registry=self.registry)
        info.labels(version=version).set(1)

    def observe(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route=route, status=str(status)).inc()
        self.latency.labels(route=route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
