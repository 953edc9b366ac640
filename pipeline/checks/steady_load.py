"""A light, steady load the demo keeps up while it drifts: does the endpoint keep answering?

A plain thread, not Locust: a few requests per second need no load generator, and the demo must
count every failure, not a statistic of them. Each request opens a new connection, the way many
independent clients would, so the kernel spreads them over every replica behind the endpoint.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from pipeline.samples import predict_body
from pipeline.timestamps import utc_now

REQUEST_TIMEOUT_SECONDS = 2.0
#: The first failures are kept with their time and reason, for the timeline.
KEPT_FAILURES = 20


class SteadyLoad:
    """POST /predict at `rate` per second until stopped, or `max_seconds` passed, or `max_requests` sent."""

    def __init__(self, endpoint: str, rate: float, max_seconds: float, max_requests: int = 10_000):
        self.endpoint = endpoint
        self.interval = 1 / rate
        self.max_seconds = max_seconds
        self.max_requests = max_requests
        self.requests = 0
        self.failures: list[dict[str, str]] = []
        self.failure_count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="steady-load", daemon=True)

    def __enter__(self) -> SteadyLoad:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        started = time.monotonic()
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=self.endpoint, timeout=REQUEST_TIMEOUT_SECONDS, limits=limits) as client:
            while self.requests < self.max_requests and time.monotonic() - started < self.max_seconds:
                due = started + self.requests * self.interval
                if self._stop.wait(max(0.0, due - time.monotonic())):
                    return
                self.requests += 1
                try:
                    response = client.post("/predict", json=predict_body())
                    reason = None if response.status_code == 200 else f"HTTP {response.status_code}"
                except httpx.HTTPError as error:
                    reason = f"{type(error).__name__}: {error}"
                if reason:
                    self.failure_count += 1
                    if len(self.failures) < KEPT_FAILURES:
                        self.failures.append({"at": utc_now(), "reason": reason})

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "failures": self.failure_count,
            "failure_ratio": self.failure_count / self.requests if self.requests else 0.0,
            "first_failures": self.failures,
        }
