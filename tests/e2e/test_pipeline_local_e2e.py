"""The README's first command, for real: the whole pipeline on the local target.

One run of `invoke pipeline --parallel` (real nox sessions, real replicas, real Prometheus, real
Locust, real drift) checked against what it must do: every job succeeds, test and demo
overlap, the four artifacts are there, and nothing of the run is left running. Then `--keep`
leaves a deployment up until `invoke down` stops it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest

from tests.helpers import require_program

REPO = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_SECONDS = 20 * 60

pytestmark = pytest.mark.slow


def invoke(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def processes_mentioning(needle: str) -> list[str]:
    """Command lines of live processes whose command line or environment mentions `needle`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (proc / "environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if needle in cmdline or needle in environ:
            found.append(f"{proc.name}: {cmdline[:200]}")
    return found


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    require_program("prometheus")
    artifacts = tmp_path_factory.mktemp("e2e") / "artifacts"
    return invoke("pipeline", "--parallel", "--artifacts-dir", str(artifacts)), artifacts


def test_pipeline_runs_every_job_successfully(local_run):
    result, artifacts = local_run
    record = json.loads((artifacts / "pipeline-run.json").read_text())
    statuses = {name: job["status"] for name, job in record["jobs"].items()}
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert statuses == dict.fromkeys(["unit", "build", "deploy", "scan", "test", "demo", "report"], "success")
    assert record["target"] == "local"


@pytest.mark.parametrize(("one", "other"), [("test", "demo"), ("scan", "deploy")])
def test_jobs_of_one_stage_overlap_in_time(local_run, one, other):
    _, artifacts = local_run
    jobs = json.loads((artifacts / "pipeline-run.json").read_text())["jobs"]
    first, second = jobs[one], jobs[other]
    assert parse_time(first["started_at"]) < parse_time(second["finished_at"])
    assert parse_time(second["started_at"]) < parse_time(first["finished_at"])


def test_the_four_artifacts_exist_with_their_contents(local_run):
    _, artifacts = local_run
    status = json.loads((artifacts / "cluster-state" / "status.json").read_text())
    assert (status["sync"], status["health"]) == ("Synced", "Healthy")
    load = json.loads((artifacts / "test-results" / "load-summary.json").read_text())
    assert load["passed"] and load["requests"] > 0
    timeline = json.loads((artifacts / "demo-artifacts" / "timeline.json").read_text())
    assert timeline["passed"] and len(timeline["drifts"]) >= 3
    html = (artifacts / "final-demo-report" / "report.html").read_text()
    markdown = (artifacts / "final-demo-report" / "report.md").read_text()
    assert str(load["requests"]) in markdown
    assert "<svg" in html


def test_no_process_of_the_run_is_left(local_run):
    _, artifacts = local_run
    run_id = json.loads((artifacts / "pipeline-run.json").read_text())["run_id"]
    assert processes_mentioning(run_id) == []
    assert processes_mentioning(str(artifacts)) == []


def test_keep_leaves_the_deployment_up_until_invoke_down(local_run):
    _, artifacts = local_run
    kept = invoke("pipeline", "--only", "deploy", "--keep", "--artifacts-dir", str(artifacts))
    assert kept.returncode == 0, kept.stdout[-4000:] + kept.stderr[-4000:]
    endpoint = json.loads((artifacts / "cluster-state" / "outputs.json").read_text())["endpoint"]
    with urllib.request.urlopen(f"{endpoint}/ready", timeout=5) as response:
        assert response.status == 200
    down = invoke("down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert processes_mentioning(str(artifacts)) == []
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{endpoint}/ready", timeout=5)
