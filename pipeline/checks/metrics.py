"""Metrics verification: do the service's own metrics account for the load the test job sent?

Counts are read before the load from each replica's /metrics, and after it from a scrape known
to be newer than its end, so the request counters must have grown by exactly what Locust sent.
Two sources answer the questions after the load: Prometheus' HTTP API when the environment runs
a Prometheus, else each replica's /metrics read directly (the target has no Prometheus; the
artifact says so).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from pipeline.checks import tally

#: The scrape job of the service in observability/prometheus/ (both the local and the cluster config).
SERVICE_JOB = "ml-inference"
REQUESTS = "ml_inference_requests_total"
LATENCY_COUNT = "ml_inference_request_duration_seconds_count"
ROUTES = ("/predict", "/predict/batch")
HTTP_TIMEOUT_SECONDS = 5
#: Longest wait for a scrape newer than a given moment (the cluster config scrapes every 15 s).
SCRAPE_WAIT_SECONDS = 40
#: How often those waits ask Prometheus again: a fifth of the local config's 1 s scrape interval.
POLL_SECONDS = 0.2


@dataclass
class Counts:
    """Request and latency-observation counts per route, summed over every replica."""

    requests: dict[str, float] = field(default_factory=dict)
    observations: dict[str, float] = field(default_factory=dict)


class PrometheusSource:
    """Prometheus' HTTP API; `selector` (label: value) picks out one environment's series."""

    mode = "prometheus"

    def __init__(self, url: str, selector: Mapping[str, str] | None = None) -> None:
        self.url = url.rstrip("/")
        labels = {"job": SERVICE_JOB, **(selector or {})}
        # A JSON string literal is a valid PromQL one: quotes and backslashes come escaped.
        self.matchers = ",".join(f"{label}={json.dumps(value)}" for label, value in labels.items())
        #: Every query made and what it returned, for the artifact.
        self.log: list[dict[str, Any]] = []
        # One client for every query: the waits poll, and a client per request costs ~50 ms of CPU.
        self.http = httpx.Client(base_url=self.url, timeout=HTTP_TIMEOUT_SECONDS)

    def query(self, promql: str) -> list[dict[str, Any]]:
        response = self.http.get("/api/v1/query", params={"query": promql})
        response.raise_for_status()
        result = response.json()["data"]["result"]
        self.log.append({"query": promql, "at": time.time(), "result": result})
        return result

    def _sum(self, metric: str, route: str) -> float:
        result = self.query(f'sum({metric}{{{self.matchers},route="{route}"}})')
        return float(result[0]["value"][1]) if result else 0.0

    def wait_for_scrape(self, after: float, replicas: int) -> str | None:
        """Block until `replicas` replicas were scraped after `after` (epoch s); else say why, at a bound."""
        # Counted, not "every replica it knows": a fresh Prometheus may not know the last one yet.
        deadline = time.monotonic() + SCRAPE_WAIT_SECONDS
        while time.monotonic() < deadline:
            scraped = [
                float(sample["value"][1]) for sample in self.query(f"timestamp(up{{{self.matchers}}})")
            ]
            if scraped and len(scraped) >= replicas and min(scraped) > after:
                return None
            time.sleep(POLL_SECONDS)
        return f"Prometheus did not scrape every replica ({replicas}) within {SCRAPE_WAIT_SECONDS} s"

    def replicas_up(self, expected: int) -> tuple[bool, str]:
        """Whether every replica is up and there are at least `expected` of them, and what was seen."""
        result = self.query(f"up{{{self.matchers}}}")
        states = {sample["metric"].get("instance", "?"): sample["value"][1] == "1" for sample in result}
        passed = len(states) >= expected and all(states.values())
        return passed, f"{tally(states, 'up')}; {expected} ready replicas expected"

    def counts(self) -> Counts:
        return Counts(
            requests={route: self._sum(REQUESTS, route) for route in ROUTES},
            observations={route: self._sum(LATENCY_COUNT, route) for route in ROUTES},
        )


class DirectSource:
    """Each replica's /metrics, read directly: the fallback when the environment has no Prometheus."""

    mode = "direct"
    url = None  # no Prometheus: the replicas are scraped directly

    def __init__(self, replica_urls: Callable[[], list[str]]) -> None:
        self.replica_urls = replica_urls
        self.log: list[dict[str, Any]] = []

    def _scrape(self) -> dict[str, str | None]:
        texts: dict[str, str | None] = {}
        for url in self.replica_urls():
            try:
                response = httpx.get(f"{url}/metrics", timeout=HTTP_TIMEOUT_SECONDS)
                texts[url] = response.text if response.status_code == 200 else None
            except httpx.HTTPError:
                texts[url] = None
        return texts

    def wait_for_scrape(self, after: float, replicas: int) -> str | None:
        return None  # every read is a fresh scrape

    def replicas_up(self, expected: int) -> tuple[bool, str]:
        states = {url: text is not None for url, text in self._scrape().items()}
        self.log.append({"query": "GET <replica>/metrics", "at": time.time(), "result": states})
        passed = len(states) >= expected and all(states.values())
        return passed, f"{tally(states, 'answering /metrics')}; {expected} ready replicas expected"

    def counts(self) -> Counts:
        counts = Counts({route: 0.0 for route in ROUTES}, {route: 0.0 for route in ROUTES})
        by_name = {REQUESTS: counts.requests, LATENCY_COUNT: counts.observations}
        for text in self._scrape().values():
            for family in text_string_to_metric_families(text or ""):
                for sample in family.samples:
                    route = sample.labels.get("route")
                    if sample.name in by_name and route in ROUTES:
                        by_name[sample.name][route] += sample.value
        self.log.append(
            {
                "query": f"sum {REQUESTS}, {LATENCY_COUNT} by route",
                "at": time.time(),
                "result": asdict(counts),
            }
        )
        return counts


#: Where the test job reads the metrics from after the load.
MetricsSource = PrometheusSource | DirectSource


def wait_until_scraping(source: PrometheusSource, replicas: int) -> tuple[bool, str]:
    """Wait until Prometheus scrapes `replicas` replicas, every one up; whether it did, and what it saw.

    A fresh Prometheus applies newly discovered targets at most every 5 s, and the cluster config
    scrapes every 15 s: this bounds the wait by SCRAPE_WAIT_SECONDS.
    """
    deadline = time.monotonic() + SCRAPE_WAIT_SECONDS
    while True:
        up, detail = source.replicas_up(replicas)
        if up or time.monotonic() > deadline:
            return up, detail
        time.sleep(POLL_SECONDS)


def baseline(replica_urls: Callable[[], list[str]]) -> Counts:
    """Counts that include every request made before now (call it right before the load starts).

    Read from the replicas themselves: exact at once, where Prometheus would first have to scrape
    every replica again, and on a fresh environment first apply its new targets (every 5 s).
    """
    return DirectSource(replica_urls).counts()


def verify(
    source: MetricsSource, before: Counts, sent: dict[str, int], load_ended: float, replicas: int
) -> dict[str, Any]:
    """Check the metrics against what the load sent; metrics-verification.json (docs/artifacts.md)."""
    checks: list[dict[str, Any]] = []

    def check(name: str, passed: bool, detail: str) -> None:
        checks.append({"name": name, "passed": bool(passed), "detail": detail})

    error = source.wait_for_scrape(load_ended, replicas)
    check(
        "a scrape after the load ended", error is None, error or "every replica scraped after the load ended"
    )
    up, detail = source.replicas_up(replicas)
    check("every replica is up", up, detail)
    after = source.counts()
    for route in ROUTES:
        grew = after.requests[route] - before.requests[route]
        check(
            f"{REQUESTS} for {route} grew by the requests sent",
            grew == sent.get(route, 0),
            f"grew by {grew:g} ({before.requests[route]:g} -> {after.requests[route]:g}); "
            f"the load sent {sent.get(route, 0)}",
        )
    observed = after.observations["/predict"] - before.observations["/predict"]
    check(
        "the latency histogram has data for /predict",
        observed > 0 and observed == sent.get("/predict", 0),
        f"{observed:g} new observations; the load sent {sent.get('/predict', 0)}",
    )
    return {
        "mode": source.mode,
        "prometheus_url": source.url,
        "checks": checks,
        "passed": all(item["passed"] for item in checks),
        "queries": source.log,
    }
