"""The repo's local Prometheus config and rules, run by a real Prometheus against the real service.

promtool proves the rules parse and behave on synthetic series; this proves what it cannot: that
file-based discovery finds a replica the way the local target describes it, that every rule
evaluates without a runtime error on the service's real series (label sets, `or`/`and` matching),
that the recording rules the dashboard reads carry the traffic sent, and that the down alerts
start pending once the replica dies.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.ports import free_port
from pipeline.samples import predict_body
from tests.helpers import require_program, stop, stopped_at_exit

REPO_ROOT = Path(__file__).resolve().parents[2]
PREDICTIONS = 30
WAIT_SECONDS = 30


def _wait_for(what: str, condition: Callable[[], Any], timeout: float = WAIT_SECONDS) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = condition()
        except OSError:
            result = None
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.2)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen]]:
    """Processes the test starts; all stopped at the end, whatever happened."""
    with stopped_at_exit() as started:
        yield started


class PrometheusAPI:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def get(self, path: str, **params: str) -> Any:
        url = f"{self.base_url}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]

    def values(self, expr: str) -> list[float]:
        return [float(sample["value"][1]) for sample in self.get("/api/v1/query", query=expr)["result"]]


def _post_json(url: str, payload: dict) -> int:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _panel_queries(title: str) -> list[str]:
    """The dashboard panel's queries as Grafana sends them, over every namespace and a 1m rate window."""
    dashboard = json.loads((REPO_ROOT / "observability/grafana/dashboards/ml-inference.json").read_text())
    panel = next(panel for panel in dashboard["panels"] if panel["title"] == title)
    return [
        target["expr"].replace("$__rate_interval", "1m").replace("$namespace", ".*")
        for target in panel["targets"]
    ]


@pytest.mark.slow
def test_real_prometheus_scrapes_the_service_and_evaluates_every_rule(
    tmp_path: Path, processes: list[subprocess.Popen]
) -> None:
    prometheus = require_program("prometheus")
    from ml_inference.train import train

    model_dir = tmp_path / "model"
    train(model_dir)
    service_port, prometheus_port = free_port(), free_port()
    service_log = (tmp_path / "service.log").open("w")
    service = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ml_inference",
            "serve",
            "--port",
            str(service_port),
            "--model-dir",
            str(model_dir),
        ],
        stdout=service_log,
        stderr=subprocess.STDOUT,
    )
    processes.append(service)

    # Laid out the way the local target does it: a copy of observability/prometheus/ plus targets/.
    state = tmp_path / "prometheus"
    shutil.copytree(REPO_ROOT / "observability/prometheus", state)
    (state / "targets").mkdir()
    (state / "targets/ml-inference.json").write_text(
        json.dumps([{"targets": [f"127.0.0.1:{service_port}"], "labels": {}}])
    )
    processes.append(
        subprocess.Popen(
            [
                prometheus,
                f"--config.file={state / 'local.yml'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                "--log.level=warn",
            ],
            stdout=(tmp_path / "prometheus.log").open("w"),
            stderr=subprocess.STDOUT,
        )
    )
    api = PrometheusAPI(f"http://127.0.0.1:{prometheus_port}")
    _wait_for("the replica to be scraped as up", lambda: api.values('up{job="ml-inference"}') == [1.0])

    base = f"http://127.0.0.1:{service_port}"
    _wait_for("the model to load", lambda: urllib.request.urlopen(f"{base}/ready", timeout=2).status == 200)
    # One good and one bad request first, scraped (the series exist at 0 from start-up, so the
    # rules' rates see these too), then the rest.
    predictions = 'sum(ml_inference_predictions_total{job="ml-inference"})'
    rejected = 'sum(ml_inference_requests_total{job="ml-inference", status="422"})'
    assert _post_json(f"{base}/predict", predict_body()) == 200
    assert _post_json(f"{base}/predict", {"features": "not a list"}) == 422
    _wait_for(
        "the first requests to be scraped", lambda: api.values(predictions) == api.values(rejected) == [1]
    )
    for _ in range(PREDICTIONS - 1):
        assert _post_json(f"{base}/predict", predict_body()) == 200
    assert _post_json(f"{base}/predict", {"features": "not a list"}) == 422
    _wait_for(
        "every request to be counted", lambda: api.values(predictions) + api.values(rejected) == [30, 2]
    )
    # The recording rules the dashboard reads: traffic seen, no 5xx (0, not absent), some 4xx.
    _wait_for("the request rate", lambda: api.values("namespace_job:ml_inference_api_requests:rate5m") > [0])
    assert api.values("namespace_job:ml_inference_api_server_errors:ratio_rate5m") == [0.0]
    # Rules evaluate every second, so an evaluation may still see only the first two requests
    # (one of them a 4xx): wait for one that has seen all 32.
    _wait_for(
        "the 4xx ratio over every request",
        lambda: 0 < api.values("namespace_job:ml_inference_api_client_errors:ratio_rate5m")[0] < 0.1,
    )
    assert 0 < api.values("namespace_job:ml_inference_request_duration_seconds:p99_rate5m")[0] < 0.5

    groups = api.get("/api/v1/rules")["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) == 13
    assert [(rule["name"], rule.get("lastError")) for rule in rules if rule["health"] != "ok"] == []
    assert api.values("ALERTS") == [], "no alert may be pending on a healthy service"

    # Two panels read what happened: every call held 1 instance, and nothing but the scrape is in flight.
    batch_sizes = [value for expr in _panel_queries("Batch size") for value in api.values(expr)]
    assert batch_sizes and all(value >= 1 for value in batch_sizes), batch_sizes
    assert [value for expr in _panel_queries("In-flight requests") for value in api.values(expr)] == [0.0]

    stop(service)
    down_alerts = 'ALERTS{alertname=~"MLInferenceReplicaDown|MLInferenceServiceDown", alertstate="pending"}'
    _wait_for("both down alerts to go pending", lambda: len(api.values(down_alerts)) == 2)


def test_the_cluster_scrapes_pending_pods_so_a_pull_failure_reads_as_down() -> None:
    """A pod stuck pulling its image is Pending with an IP: kept, it scrapes as up 0 and the down alerts
    fire for its environment; dropped, its namespace has no `up` at all and nothing fires."""
    config = yaml.safe_load((REPO_ROOT / "observability/prometheus/kubernetes.yml").read_text())
    job = next(job for job in config["scrape_configs"] if job["job_name"] == "ml-inference")
    phase = next(
        rule for rule in job["relabel_configs"] if rule["source_labels"] == ["__meta_kubernetes_pod_phase"]
    )
    kept = {
        name
        for name in ("Pending", "Running", "Succeeded", "Failed", "Unknown")
        if re.fullmatch(phase["regex"], name)
    }
    assert phase["action"] == "keep" and kept == {"Pending", "Running"}
