"""The test job end to end against the real local target, with a load of a few seconds.

The environment is the local target's own (real replicas, reconciler, and a real Prometheus when
installed: CI installs it, so there the metrics are verified through Prometheus' HTTP API); only
its state directory is a temporary one, so the test never touches a developer's environments.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pipeline.checks.load import DEFAULT_THRESHOLDS, Thresholds, read_history
from pipeline.jobs import test as test_job
from pipeline.targets.local.target import STATE_ROOT_VARIABLE, LocalTarget
from tests.helpers import local_job_artifacts, train_model

pytestmark = pytest.mark.slow
SECRET_VALUE = "test-job-secret-value"
SHORT_LOAD = ["--users", "5", "--spawn-rate", "50", "--duration", "3", "--user-rps", "20"]


def short_load_thresholds(directory: Path) -> Path:
    """The repo's thresholds, but a few seconds of load on a busy machine send fewer requests."""
    repo = Thresholds.load(DEFAULT_THRESHOLDS)
    path = directory / "short-load.toml"
    path.write_text(
        f"max_failure_ratio = {repo.max_failure_ratio}\nmin_requests = 10\nmax_p99_ms = {repo.max_p99_ms}\n"
    )
    return path


def assert_environment_state_saved(saved: Path) -> None:
    """The environment as it was when the checks ended: replica status, events, each replica's log."""
    status = json.loads((saved / "status.json").read_text())
    assert status["target"] == "local" and status["environment"] == "test"
    assert status["replicas"] and all(r["ready"] for r in status["replicas"])
    assert (saved / "events.jsonl").stat().st_size > 0
    logs = {log.stem: log.read_text() for log in (saved / "replica-logs").glob("*.log")}
    assert {r["name"] for r in status["replicas"]} <= set(logs)
    assert all(text.strip() for text in logs.values()), "an empty replica log"
    for path in saved.rglob("*"):
        assert not path.is_file() or SECRET_VALUE not in path.read_text(errors="replace"), path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_model(tmp_path_factory)


@pytest.fixture
def artifacts(model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GITHUB_TOKEN", SECRET_VALUE)  # must never reach the saved state
    return local_job_artifacts(model_dir, tmp_path, monkeypatch)


def test_job_passes_end_to_end_and_writes_every_artifact(artifacts: Path, tmp_path: Path) -> None:
    assert test_job.main([*SHORT_LOAD, "--thresholds", str(short_load_thresholds(tmp_path))]) == 0

    results = artifacts / "test-results"
    suite = ET.parse(results / "api-junit.xml").getroot().find("testsuite")
    assert suite is not None and int(suite.get("tests", 0)) >= 10 and suite.get("failures") == "0"

    summary = json.loads((results / "load-summary.json").read_text())
    assert summary["passed"] and summary["users"] == 5 and summary["duration_seconds"] == 3
    assert summary["requests"] > 0 and summary["failures"] == 0
    assert (results / "load" / "report.html").exists()
    assert (results / "load" / "locust_stats_history.csv").exists()

    verification = json.loads((results / "metrics-verification.json").read_text())
    assert verification["passed"], verification["checks"]
    assert verification["mode"] == ("prometheus" if shutil.which("prometheus") else "direct")
    if os.environ.get("CI") == "true":  # CI installs Prometheus: there the direct path is not enough
        assert verification["mode"] == "prometheus"
    counted = next(
        c for c in verification["checks"] if c["name"].endswith("/predict grew by the requests sent")
    )
    assert f"the load sent {summary['requests_by_route']['/predict']}" in counted["detail"]

    outputs = json.loads((results / "outputs.json").read_text())
    assert outputs["api_passed"] == outputs["load_passed"] == outputs["metrics_passed"] == "true"
    assert_environment_state_saved(results / "environment")
    assert LocalTarget("local", state_root=tmp_path / "state").down_all() == [], (
        "the job left its environment up"
    )


def test_a_broken_threshold_fails_the_job_but_every_part_still_runs(artifacts: Path, tmp_path: Path) -> None:
    thresholds = tmp_path / "tight.toml"
    thresholds.write_text("max_failure_ratio = 0.0\nmin_requests = 1\nmax_p99_ms = 0.001\n")
    assert test_job.main([*SHORT_LOAD, "--thresholds", str(thresholds)]) == 1

    results = artifacts / "test-results"
    summary = json.loads((results / "load-summary.json").read_text())
    assert not summary["passed"] and summary["violations"][0].startswith("p99")
    assert (results / "api-junit.xml").exists()
    assert json.loads((results / "metrics-verification.json").read_text())["passed"]
    assert_environment_state_saved(results / "environment")


def test_a_job_stopped_during_its_load_keeps_the_load_summary_and_the_environments_state(
    artifacts: Path, tmp_path: Path
) -> None:
    results = artifacts / "test-results"
    done = threading.Event()

    def stop_once_the_load_has_stats() -> None:  # as Ctrl-C or the runner's SIGINT would
        while not done.wait(0.1):
            if read_history(results / "load"):
                os.kill(os.getpid(), signal.SIGINT)
                return

    watcher = threading.Thread(target=stop_once_the_load_has_stats, daemon=True)
    watcher.start()
    long_load = [*SHORT_LOAD[:-4], "--duration", "60", "--user-rps", "20"]
    try:
        with pytest.raises(KeyboardInterrupt):
            test_job.main([*long_load, "--thresholds", str(short_load_thresholds(tmp_path))])
    finally:
        done.set()
        watcher.join()
    summary = json.loads((results / "load-summary.json").read_text())
    assert summary["requests"] > 0 and not summary["passed"]
    assert any("stopped part-way" in violation for violation in summary["violations"])
    assert_environment_state_saved(results / "environment")
    assert LocalTarget("local", state_root=tmp_path / "state").down_all() == [], (
        "the job left its environment up"
    )


def test_dry_run_prints_the_locust_command_and_brings_nothing_up(
    artifacts: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PIPELINE_DRY_RUN", "1")
    monkeypatch.setattr(LocalTarget, "up", lambda *args: pytest.fail("a dry run brought an environment up"))
    assert test_job.main(SHORT_LOAD) == 0
    out = capsys.readouterr().out
    assert "-m locust" in out and "--users 5" in out


def test_without_a_build_the_job_fails_in_one_line_naming_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PIPELINE_ARTIFACTS_DIR", str(tmp_path / "no-build"))
    monkeypatch.setenv("PIPELINE_TARGET", "local")
    monkeypatch.delenv("PIPELINE_DRY_RUN", raising=False)
    monkeypatch.setenv(STATE_ROOT_VARIABLE, str(tmp_path / "state"))
    assert test_job.main(SHORT_LOAD) == 1
    assert "run `nox -s build` first" in capsys.readouterr().err
