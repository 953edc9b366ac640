"""The service's Prometheus metrics (names are a contract: alert rules and dashboards use them).

Each app gets its own registry, so two apps in one process (tests) never share or clash.
Labelled series are created at zero before the first request (`declare_routes`, and the class
counters when the model loads): a series that appeared only on first use would hold every
request before Prometheus' first sample of it, and rate() and increase() would never count them.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi.routing import APIRoute
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.process_collector import ProcessCollector

PREFIX = "ml_inference"
# Request latency of a ~100 µs service: fine buckets at the low end, a tail for stalls.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
INFERENCE_BUCKETS = (0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000, 5000)

#: Any route can fail unexpectedly; error-ratio alerts need that series before the first failure.
UNEXPECTED_ERROR_STATUS = 500

# The *_created series double what dashboards load and nothing here reads them.
disable_created_metrics()


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.requests = Counter(
            f"{PREFIX}_requests",
            "HTTP requests by route template, method and status.",
            ("route", "method", "status"),
            registry=self.registry,
        )
        self.request_duration = Histogram(
            f"{PREFIX}_request_duration_seconds",
            "HTTP request latency by route template.",
            ("route",),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.inference_duration = Histogram(
            f"{PREFIX}_inference_duration_seconds",
            "Time spent in the model call only.",
            buckets=INFERENCE_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            f"{PREFIX}_batch_size",
            "Instances per inference call.",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            f"{PREFIX}_requests_in_flight",
            "HTTP requests being served now.",
            registry=self.registry,
        )
        self.predictions = Counter(
            f"{PREFIX}_predictions",
            "Predictions by predicted class.",
            ("class",),
            registry=self.registry,
        )
        self.model_info = Gauge(
            f"{PREFIX}_model_info",
            "The served model; value 1.",
            ("model_name", "model_version"),
            registry=self.registry,
        )
        self.access_log_dropped = Counter(
            f"{PREFIX}_access_log_lines_dropped",
            "Access log lines lost because stdout refused a write (EPIPE, EAGAIN) or too many were pending.",
            registry=self.registry,
        )
        self.model_ready = Gauge(
            f"{PREFIX}_model_ready",
            "1 when the model is loaded and the process is not draining.",
            registry=self.registry,
        )

    def declare_routes(self, routes: Iterable[APIRoute]) -> None:
        """Create each API route's series at zero: every method, its success and documented errors, 500."""
        for route in routes:
            self.request_duration.labels(route.path)
            statuses = {route.status_code or 200, UNEXPECTED_ERROR_STATUS}
            statuses.update(int(status) for status in route.responses if str(status).isdigit())
            for method in route.methods or ():
                for status in statuses:
                    self.requests.labels(route.path, method, str(status))
