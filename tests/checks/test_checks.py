"""The test job's checks against a real service process (and a real Prometheus scraping it).

Each check is shown to pass on the real service and to fail when it should: the API suite against
a server that is not the service, the load when a threshold is tight or requests fail, metrics
verification when the counters do not match what was sent.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pipeline.checks import load, metrics, tally
from pipeline.checks.api import run_api_suite
from pipeline.checks.load import (
    CSV_PREFIX,
    DEFAULT_THRESHOLDS,
    LoadSettings,
    Thresholds,
    read_history,
    run_load,
)
from pipeline.ports import free_port
from pipeline.samples import SAMPLE_ROW, batch_body, predict_body
from tests.helpers import require_program, stop, stopped_at_exit, train_model

#: Short loads: enough requests to judge, seconds of CPU on a shared machine.
SHORT_LOAD = LoadSettings(users=5, spawn_rate=50, duration_seconds=2, user_rps=20)
#: The repo's thresholds, but a short load on a busy machine may send fewer requests than a real run must.
SHORT_LOAD_THRESHOLDS = dataclasses.replace(Thresholds.load(DEFAULT_THRESHOLDS), min_requests=10)
CONTRACT_KEYS = {
    "users", "spawn_rate", "duration_seconds", "requests", "failures", "failure_ratio",
    "requests_per_second", "p50_ms", "p95_ms", "p99_ms", "thresholds", "passed", "history",
}  # fmt: skip


def _wait_until_answers(url: str, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{process.args} exited with {process.returncode}"
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout} s")


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen]]:
    """Processes a test starts; all stopped at its end, whatever happened."""
    with stopped_at_exit() as started:
        yield started


def _serve(model: Path) -> tuple[subprocess.Popen, str]:
    """A real service process serving `model`, and its base URL, once ready; the caller stops it."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "ml_inference", "serve", "--port", str(port), "--model-dir", str(model)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_until_answers(f"http://127.0.0.1:{port}/ready", process)
    except BaseException:
        stop(process)
        raise
    return process, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_model(tmp_path_factory)


@pytest.fixture(scope="module")
def service(model: Path) -> Iterator[str]:
    """Base URL of one real service process serving a freshly trained model."""
    process, url = _serve(model)
    try:
        _send(url, 5)  # warm up, so a 2 s load's p99 is not its first requests
        yield url
    finally:
        stop(process)


@pytest.fixture
def not_the_service(processes: list[subprocess.Popen], tmp_path: Path) -> str:
    """A plain static file server: answers HTTP, but 404/501 to every call of the API."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    processes.append(server)
    _wait_until_answers(f"http://127.0.0.1:{port}/", server)
    return f"http://127.0.0.1:{port}"


def _junit_totals(path: Path) -> tuple[int, int]:
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None
    return int(suite.get("tests", 0)), int(suite.get("failures", 0)) + int(suite.get("errors", 0))


@pytest.mark.slow
def test_api_suite_passes_against_the_service(service: str, tmp_path: Path) -> None:
    junit = tmp_path / "api-junit.xml"
    assert run_api_suite(service, junit)
    tests, failed = _junit_totals(junit)
    assert tests >= 10
    assert failed == 0


@pytest.mark.slow
def test_api_suite_fails_against_a_server_that_is_not_the_service(
    not_the_service: str, tmp_path: Path
) -> None:
    junit = tmp_path / "api-junit.xml"
    assert not run_api_suite(not_the_service, junit)
    tests, failed = _junit_totals(junit)
    assert failed == tests > 0


@pytest.mark.slow
def test_load_within_thresholds_passes_and_keeps_locust_reports(service: str, tmp_path: Path) -> None:
    summary = run_load(service, SHORT_LOAD, SHORT_LOAD_THRESHOLDS, tmp_path)
    assert summary["passed"], summary["violations"]
    assert summary.keys() >= CONTRACT_KEYS
    assert summary["failures"] == 0
    assert summary["requests"] >= 10
    assert summary["requests"] == sum(summary["requests_by_route"].values())
    assert set(summary["requests_by_route"]) == {"/predict", "/predict/batch"}
    assert summary["p50_ms"] <= summary["p95_ms"] <= summary["p99_ms"]
    assert summary["history"] and {"t", "rps", "p50_ms", "p95_ms"} <= summary["history"][-1].keys()
    for name in ("locust_stats.csv", "locust_stats_history.csv", "report.html", "locust.json"):
        assert (tmp_path / name).stat().st_size > 0, name


#: The head of a stats history Locust wrote for a paced load of 200 requests a second (trimmed to the
#: columns read): its own Requests/s column, a 10 s average that ends 2 s back, still says 0 and 40.
LOCUST_HISTORY = """\
Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,95%,Total Request Count
1796032362,0,,Aggregated,0.000000,0.000000,N/A,N/A,0
1796032363,20,,Aggregated,0.000000,0.000000,6,11,200
1796032364,20,,Aggregated,0.000000,0.000000,5,19,400
1796032365,20,,Aggregated,40.000000,0.000000,5,12,600
1796032367,20,,Aggregated,100.000000,0.000000,5,11,1000
"""


def test_the_drawn_request_rate_is_what_was_sent_each_second(tmp_path: Path) -> None:
    (tmp_path / f"{CSV_PREFIX}_stats_history.csv").write_text(LOCUST_HISTORY)
    history = read_history(tmp_path)
    assert [point["t"] for point in history] == [0, 1, 2, 3, 5]
    assert [point["rps"] for point in history] == [0.0, 200.0, 200.0, 200.0, 200.0]


class EndsAfterOneWait:
    """A fake Locust process, named as such: still running at the first progress tick, then done."""

    def __init__(self) -> None:
        self.waits = 0

    def wait(self, timeout: float) -> int:
        self.waits += 1
        if self.waits == 1:
            raise subprocess.TimeoutExpired("locust", timeout)
        return 0


def test_load_progress_before_the_first_answer_says_so_instead_of_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header, before_any_answer = LOCUST_HISTORY.splitlines()[:2]
    (tmp_path / f"{CSV_PREFIX}_stats_history.csv").write_text(f"{header}\n{before_any_answer}\n")
    assert load._wait_with_progress(EndsAfterOneWait(), 60, tmp_path, SHORT_LOAD) == 0  # type: ignore[arg-type]
    assert capsys.readouterr().out.splitlines() == [
        f"load: 0/{SHORT_LOAD.duration_seconds} s, 0 req/s, no answer yet"
    ]


@pytest.mark.slow
def test_a_p99_bound_below_the_measured_latency_fails_the_load(service: str, tmp_path: Path) -> None:
    tight = Thresholds(max_failure_ratio=0.0, min_requests=1, max_p99_ms=0.001)
    summary = run_load(service, SHORT_LOAD, tight, tmp_path)
    assert not summary["passed"]
    assert [v for v in summary["violations"] if v.startswith("p99")], summary["violations"]


@pytest.mark.slow
def test_failed_requests_fail_the_load(not_the_service: str, tmp_path: Path) -> None:
    summary = run_load(not_the_service, SHORT_LOAD, SHORT_LOAD_THRESHOLDS, tmp_path)
    assert not summary["passed"]
    assert summary["failure_ratio"] == 1.0
    assert any(v.startswith("failure ratio") for v in summary["violations"])


@pytest.mark.slow
def test_the_request_cap_ends_the_load_before_its_run_time(service: str, tmp_path: Path) -> None:
    capped = dataclasses.replace(SHORT_LOAD, duration_seconds=60, max_requests=30)
    started = time.monotonic()
    summary = run_load(service, capped, SHORT_LOAD_THRESHOLDS, tmp_path)
    assert time.monotonic() - started < 30
    # Users finish the request they are in when the cap is reached: at most one more each.
    assert 30 <= summary["requests"] <= 30 + capped.users


@pytest.mark.slow
def test_a_load_stopped_part_way_hands_on_the_summary_of_what_ran(service: str, tmp_path: Path) -> None:
    long = dataclasses.replace(SHORT_LOAD, duration_seconds=60)
    expected = load.LoadStopped
    done = threading.Event()

    def stop_once_locust_has_stats() -> None:  # as Ctrl-C or the runner's SIGINT would
        while not done.wait(0.1):
            if load.read_history(tmp_path):
                os.kill(os.getpid(), signal.SIGINT)
                return

    watcher = threading.Thread(target=stop_once_locust_has_stats, daemon=True)
    watcher.start()
    started = time.monotonic()
    try:
        with pytest.raises(expected) as stopped:
            run_load(service, long, SHORT_LOAD_THRESHOLDS, tmp_path)
    finally:
        done.set()
        watcher.join()
    assert time.monotonic() - started < 30, "the load did not stop"
    summary = stopped.value.summary
    assert summary["requests"] > 0 and not summary["passed"]
    assert any("stopped part-way" in violation for violation in summary["violations"])
    assert (tmp_path / "locust_stats.csv").exists()


def test_a_thresholds_file_missing_a_bound_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "thresholds.toml"
    config.write_text("max_failure_ratio = 0.0\nmin_requests = 1\n")
    with pytest.raises(ValueError, match="max_p99_ms"):
        Thresholds.load(config)


def _send(url: str, count: int) -> None:
    with httpx.Client(base_url=url) as client:
        for _ in range(count):
            assert client.post("/predict", json=predict_body()).status_code == 200
        assert client.post("/predict/batch", json=batch_body([SAMPLE_ROW] * 3)).status_code == 200


@pytest.mark.slow
def test_direct_metrics_account_for_every_request(service: str) -> None:
    source = metrics.DirectSource(lambda: [service])
    before = metrics.baseline(lambda: [service])
    _send(service, 7)
    result = metrics.verify(source, before, {"/predict": 7, "/predict/batch": 1}, time.time(), replicas=1)
    assert result["passed"], result["checks"]
    assert result["mode"] == "direct" and result["prometheus_url"] is None
    assert json.dumps(result)  # the artifact is plain JSON


@pytest.mark.slow
def test_direct_metrics_catch_requests_the_load_did_not_report(service: str) -> None:
    source = metrics.DirectSource(lambda: [service])
    before = metrics.baseline(lambda: [service])
    _send(service, 7 + 3)  # three more than the load will claim
    result = metrics.verify(source, before, {"/predict": 7, "/predict/batch": 1}, time.time(), replicas=1)
    assert not result["passed"]
    failed = {check["name"] for check in result["checks"] if not check["passed"]}
    assert failed == {
        f"{metrics.REQUESTS} for /predict grew by the requests sent",
        "the latency histogram has data for /predict",
    }


@pytest.mark.slow
def test_a_replica_whose_metrics_do_not_answer_fails_the_up_check(service: str, not_the_service: str) -> None:
    source = metrics.DirectSource(lambda: [service, not_the_service])
    up, detail = source.replicas_up(expected=2)
    assert not up
    assert detail.startswith(f"1 of 2 answering /metrics; not answering /metrics: {not_the_service};")


def test_a_per_replica_detail_counts_and_names_the_failing_ones() -> None:
    assert tally({"a": True, "b": True}, "up") == "2 of 2 up"
    assert tally({"a": True, "b": False, "c": False}, "ready") == "1 of 3 ready; not ready: b, c"
    assert tally({}, "up") == "0 of 0 up"


@contextlib.contextmanager
def _prometheus(workdir: Path, targets: dict[str, object]) -> Iterator[str]:
    """A real Prometheus scraping the replicas `targets` names (a static_configs or file_sd_configs
    entry) every second; its URL once ready."""
    program = require_program("prometheus")
    scrape = {"job_name": metrics.SERVICE_JOB, **targets}
    config = workdir / "prometheus.yml"  # JSON is YAML
    config.write_text(json.dumps({"global": {"scrape_interval": "1s"}, "scrape_configs": [scrape]}))
    port = free_port()
    server = subprocess.Popen(
        [program, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_answers(f"{url}/-/ready", server)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=15)


@pytest.fixture(scope="module")
def prometheus(service: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus scraping the service, labelled like the cluster config labels pods."""
    targets = [{"targets": [service.removeprefix("http://")], "labels": {"namespace": "ml-test"}}]
    with _prometheus(tmp_path_factory.mktemp("prometheus"), {"static_configs": targets}) as url:
        yield url


@pytest.mark.slow
def test_prometheus_metrics_account_for_every_request_and_catch_a_mismatch(
    service: str, prometheus: str
) -> None:
    source = metrics.PrometheusSource(prometheus)
    before = metrics.baseline(lambda: [service])
    _send(service, 5)
    sent_at = time.time()
    result = metrics.verify(source, before, {"/predict": 5, "/predict/batch": 1}, sent_at, replicas=1)
    assert result["passed"], result["checks"]
    assert result["mode"] == "prometheus" and result["prometheus_url"] == prometheus
    assert any("timestamp(up{" in entry["query"] for entry in result["queries"])

    wrong = metrics.verify(source, before, {"/predict": 4, "/predict/batch": 1}, sent_at, replicas=1)
    assert not wrong["passed"]
    predict_check = next(
        c for c in wrong["checks"] if c["name"].startswith(f"{metrics.REQUESTS} for /predict ")
    )
    assert not predict_check["passed"]
    assert "grew by 5" in predict_check["detail"]


#: When the late replica is listed: well after a check that does not wait for it has ended.
LATE_DISCOVERY_SECONDS = 3


@pytest.mark.slow
def test_verification_waits_until_prometheus_scrapes_a_replica_it_has_yet_to_discover(
    service: str, model: Path, processes: list[subprocess.Popen], tmp_path: Path
) -> None:
    """A fresh environment's Prometheus applies newly found replicas at most every 5 s, so a short
    load may end before it knows the last one: the verification waits for that replica's scrape."""
    late, late_url = _serve(model)
    processes.append(late)
    listing = tmp_path / "replicas.json"

    def list_replicas(*urls: str) -> None:
        written = listing.with_suffix(".tmp")
        written.write_text(json.dumps([{"targets": [url.removeprefix("http://") for url in urls]}]))
        written.replace(listing)  # Prometheus never reads half a file

    list_replicas(service)
    with _prometheus(tmp_path, {"file_sd_configs": [{"files": [str(listing)]}]}) as prometheus:
        source = metrics.PrometheusSource(prometheus)
        assert metrics.wait_until_scraping(source, replicas=1)[0]
        before = metrics.baseline(lambda: [service, late_url])
        _send(service, 3)
        load_ended = time.time()
        found_late = threading.Timer(LATE_DISCOVERY_SECONDS, list_replicas, (service, late_url))
        found_late.start()
        try:
            result = metrics.verify(
                source, before, {"/predict": 3, "/predict/batch": 1}, load_ended, replicas=2
            )
        finally:
            found_late.cancel()
    assert result["passed"], result["checks"]


@pytest.mark.slow
def test_prometheus_up_check_fails_when_fewer_replicas_are_scraped_than_expected(
    service: str, prometheus: str
) -> None:
    source = metrics.PrometheusSource(prometheus)
    assert source.wait_for_scrape(time.time(), replicas=1) is None
    assert source.replicas_up(expected=1)[0]
    up, detail = source.replicas_up(expected=2)
    assert not up, detail


@pytest.mark.slow
def test_waiting_for_prometheus_to_scrape_ends_when_it_does_or_says_what_it_saw_at_the_bound(
    service: str, prometheus: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = metrics.PrometheusSource(prometheus)
    assert metrics.wait_until_scraping(source, replicas=1)[0]
    monkeypatch.setattr(metrics, "SCRAPE_WAIT_SECONDS", 1)
    started = time.monotonic()
    up, detail = metrics.wait_until_scraping(source, replicas=2)
    assert not up and "2 ready replicas expected" in detail
    assert time.monotonic() - started < 10


def test_the_selector_becomes_escaped_label_matchers_after_the_job() -> None:
    assert metrics.PrometheusSource("http://127.0.0.1:9", {}).matchers == f'job="{metrics.SERVICE_JOB}"'
    quoted = metrics.PrometheusSource("http://127.0.0.1:9", {"namespace": 'ml-"x"\\'})
    assert quoted.matchers == f'job="{metrics.SERVICE_JOB}",namespace="ml-\\"x\\"\\\\"'


@pytest.mark.slow
def test_prometheus_queries_see_only_the_selected_environment(service: str, prometheus: str) -> None:
    assert (
        metrics.PrometheusSource(prometheus, {"namespace": "ml-test"}).wait_for_scrape(
            time.time(), replicas=1
        )
        is None
    )
    assert metrics.PrometheusSource(prometheus, {"namespace": "ml-test"}).replicas_up(expected=1)[0]
    other = metrics.PrometheusSource(prometheus, {"namespace": "ml-demo"})
    up, detail = other.replicas_up(expected=1)
    assert not up, detail
    assert other.counts().requests == {"/predict": 0.0, "/predict/batch": 0.0}
