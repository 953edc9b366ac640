"""Metrics carry the contract's names and count what happened; each request logs one JSON line."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from ml_inference.app import create_app
from ml_inference.logs import ACCESS_LOGGER, FLUSH_SECONDS, JsonFormatter
from ml_inference.model import ModelCard
from ml_inference.settings import Settings

from .conftest import wait_until_ready
from .processes import wait_for

CONTRACT_METRICS = {
    "ml_inference_requests": "counter",
    "ml_inference_request_duration_seconds": "histogram",
    "ml_inference_inference_duration_seconds": "histogram",
    "ml_inference_batch_size": "histogram",
    "ml_inference_requests_in_flight": "gauge",
    "ml_inference_predictions": "counter",
    "ml_inference_model_info": "gauge",
    "ml_inference_model_ready": "gauge",
}


def scrape(client: TestClient) -> dict[str, float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = list(text_string_to_metric_families(response.text))
    kinds = {family.name: family.type for family in families}
    for name, kind in CONTRACT_METRICS.items():
        assert kinds.get(name) == kind, name
    assert any(name.startswith("process_") for name in kinds)
    return {
        sample.name + json.dumps(sample.labels, sort_keys=True): sample.value
        for family in families
        for sample in family.samples
    }


def test_metrics_count_requests_predictions_and_batches(client: TestClient, card: ModelCard) -> None:
    client.post("/predict", json={"features": [5.1, 3.5, 1.4, 0.2]})
    client.post("/predict/batch", json={"instances": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]] * 16})
    client.post("/predict", json={"features": [1, 2, 3]})
    samples = scrape(client)

    def value(name: str, **labels: str) -> float:
        return samples.get(name + json.dumps(labels, sort_keys=True), 0.0)

    assert value("ml_inference_requests_total", route="/predict", method="POST", status="200") == 1
    assert value("ml_inference_requests_total", route="/predict", method="POST", status="422") == 1
    assert value("ml_inference_requests_total", route="/predict/batch", method="POST", status="200") == 1
    assert value("ml_inference_predictions_total", **{"class": "setosa"}) == 17
    assert value("ml_inference_predictions_total", **{"class": "virginica"}) == 16
    assert value("ml_inference_batch_size_count") == 2
    assert value("ml_inference_batch_size_sum") == 33
    assert value("ml_inference_inference_duration_seconds_count") == 2
    assert value("ml_inference_request_duration_seconds_count", route="/predict") == 2
    assert value("ml_inference_model_info", model_name="sklearn-iris", model_version=card.version) == 1
    assert value("ml_inference_model_ready") == 1
    # The scrape itself is the one request in flight.
    assert value("ml_inference_requests_in_flight") == 1


def test_series_exist_at_zero_before_their_first_request(model_dir: Path, card: ModelCard) -> None:
    # At zero from the start, or Prometheus' first sample would already hold the first requests.
    with TestClient(create_app(Settings(model_dir=model_dir))) as fresh:
        samples = scrape(fresh)  # the very first request: nothing has been counted yet
        counted = {
            (labels["route"], labels["method"], labels["status"]): value
            for labels, value in _samples_of(samples, "ml_inference_requests_total")
        }
        assert set(counted.values()) == {0.0}
        for status in ("200", "400", "413", "415", "422", "500", "503"):
            assert ("/predict", "POST", status) in counted
            assert ("/predict/batch", "POST", status) in counted
            assert ("/v2/models/{model_name}/infer", "POST", status) in counted
        # Only what a route can answer: /health never says 503, /metrics is never POSTed to.
        assert {status for route, _, status in counted if route == "/health"} == {"200", "500"}
        assert {method for route, method, _ in counted if route == "/metrics"} == {"GET"}
        assert ("/ready", "GET", "503") in counted
        assert not any(route == "unmatched" for route, _, _ in counted)
        durations = {
            labels["route"]
            for labels, _ in _samples_of(samples, "ml_inference_request_duration_seconds_count")
        }
        assert durations == {route for route, _, _ in counted}

        wait_until_ready(fresh)
        by_class = {
            labels["class"]: value
            for labels, value in _samples_of(scrape(fresh), "ml_inference_predictions_total")
        }
        assert by_class == dict.fromkeys(card.class_names, 0.0)


def _samples_of(samples: dict[str, float], name: str) -> list[tuple[dict, float]]:
    return [
        (json.loads(key[len(name) :]), value) for key, value in samples.items() if key.startswith(name + "{")
    ]


def test_unknown_paths_share_one_route_label(client: TestClient) -> None:
    for path in ("/a", "/b", "/c"):
        client.get(path)
    samples = scrape(client)
    routes = {key for key in samples if key.startswith("ml_inference_requests_total")}
    assert sum('"route": "unmatched"' in key for key in routes) == 1


def test_the_documentation_routes_are_labelled_with_their_paths_not_unmatched(client: TestClient) -> None:
    for path in ("/openapi.json", "/docs"):
        assert client.get(path).status_code == 200
    counted = {
        labels["route"]
        for labels, value in _samples_of(scrape(client), "ml_inference_requests_total")
        if value and labels["method"] == "GET"
    }
    assert {"/openapi.json", "/docs"} <= counted, counted


def test_one_json_log_line_per_request(
    client: TestClient, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    lines: list[dict] = []

    def access_line_written() -> bool:
        lines.extend(json.loads(line) for line in capsys.readouterr().out.splitlines())
        return any(line["logger"] == ACCESS_LOGGER for line in lines)

    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        client.post("/predict", json={"features": [5.1, 3.5, 1.4, 0.2]}, headers={"X-Request-ID": "trace-42"})
        # Access lines are written in batches, at least every FLUSH_SECONDS: one batch holds them all.
        wait_for(access_line_written, "no access line was written", FLUSH_SECONDS * 50)
    access = [line for line in lines if line["logger"] == ACCESS_LOGGER]
    assert len(access) == 1
    line = access[0]
    assert line["msg"] == "request"
    assert line["request_id"] == "trace-42"
    assert line["route"] == "/predict"
    assert line["status"] == 200
    assert line["duration_ms"] > 0
    assert line["ts"].endswith("Z")


def test_other_logs_are_json_lines_too() -> None:
    record = logging.makeLogRecord(
        {
            "name": "ml_inference.app",
            "msg": "model loaded",
            "levelno": 20,
            "levelname": "INFO",
            "model_version": "1",
        }
    )
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "model loaded"
    assert line["level"] == "info"
    assert line["model_version"] == "1"
