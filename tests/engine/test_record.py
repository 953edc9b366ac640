"""The run record as GitHub's report job rebuilds it from the `needs` context and the jobs API."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from pipeline.record import github_job_timings, main, record_from_github

NEEDS = {
    "unit": {"result": "success", "outputs": {}},
    "build": {"result": "success", "outputs": {}},
    "deploy": {"result": "failure", "outputs": {}},
    "test": {"result": "skipped", "outputs": {}},
    "demo": {"result": "skipped", "outputs": {}},
}
API_JOBS = {
    "jobs": [
        {"name": "build", "conclusion": "success", "started_at": "2026-01-01T10:00:00Z",
         "completed_at": "2026-01-01T10:02:30Z"},
        {"name": "deploy", "conclusion": "timed_out", "started_at": "2026-01-01T10:02:40Z",
         "completed_at": "2026-01-01T10:17:40Z"},
        {"name": "report", "conclusion": None, "started_at": "2026-01-01T10:17:50Z", "completed_at": None},
    ]
}  # fmt: skip


@pytest.fixture
def jobs_api() -> Iterator[str]:
    """A local stand-in for GitHub's REST API that serves one run's jobs (and checks the token)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = self.path.startswith("/repos/o/r/actions/runs/7/attempts/2/jobs") and (
                self.headers["Authorization"] == "Bearer t0ken"
            )
            body = json.dumps(API_JOBS if ok else {"message": "Not Found"}).encode()
            self.send_response(200 if ok else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def github_env(api: str) -> dict[str, str]:
    return {
        "GITHUB_API_URL": api,
        "GITHUB_REPOSITORY": "o/r",
        "GITHUB_RUN_ID": "7",
        "GITHUB_RUN_ATTEMPT": "2",
        "GITHUB_TOKEN": "t0ken",
        "GITHUB_SHA": "abc123",
        "PIPELINE_TARGET": "kind",
        "PIPELINE_DEMO_MODE": "quick",
    }


def test_record_from_needs_outputs_and_timings(tmp_path: Path, jobs_api: str) -> None:
    (tmp_path / "build-output").mkdir()
    (tmp_path / "build-output" / "outputs.json").write_text('{"image_tag": "ml-inference:1"}')
    environ = github_env(jobs_api)
    record = record_from_github(
        NEEDS,
        current_job="report",
        artifacts_dir=tmp_path,
        environ=environ,
        timings=github_job_timings(environ),
    )
    jobs = record["jobs"]
    assert {name: entry["status"] for name, entry in jobs.items()} == {
        "unit": "success",
        "build": "success",
        "deploy": "timed_out",
        "test": "skipped",
        "demo": "skipped",
        "report": "running",
    }
    assert jobs["build"]["outputs"] == {"image_tag": "ml-inference:1"}
    assert jobs["build"]["duration_seconds"] == 150
    assert jobs["build"]["exit_code"] == 0 and jobs["deploy"]["exit_code"] is None
    assert record["started_at"] == "2026-01-01T10:00:00Z"
    assert (record["commit"], record["target"], record["demo_mode"]) == ("abc123", "kind", "quick")
    assert record["status"] == "failure"


def test_without_a_token_the_record_has_statuses_only(tmp_path: Path) -> None:
    assert github_job_timings({"GITHUB_REPOSITORY": "o/r"}) == {}
    record = record_from_github(NEEDS, current_job="report", artifacts_dir=tmp_path, environ={}, timings={})
    assert record["jobs"]["deploy"]["status"] == "failure"
    assert record["jobs"]["unit"]["started_at"] is None


def test_cli_writes_pipeline_run_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    passing = {name: {"result": "success", "outputs": {}} for name in NEEDS}
    monkeypatch.setenv("NEEDS_JSON", json.dumps(passing))
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    main(["github", "--job", "report", "--artifacts-dir", str(tmp_path)])
    record = json.loads((tmp_path / "pipeline-run.json").read_text())
    assert record["status"] == "success" and record["jobs"]["report"]["status"] == "running"
