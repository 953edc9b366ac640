"""The run record as GitHub's report job rebuilds it from the `needs` context and the jobs API."""

from __future__ import annotations

import io
import json
import re
import threading
import urllib.parse
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from pipeline.record import fetch_previous_load, github_job_timings, main, record_from_github
from pipeline.report.collect import collect
from tests.helpers import QuietHandler, cut_short_server

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


def test_a_cancelled_workflow_is_a_cancelled_run_not_a_failed_one(tmp_path: Path) -> None:
    needs = {**NEEDS, "deploy": {"result": "success"}, "test": {"result": "cancelled"}}
    needs["demo"] = {"result": "failure"}
    record = record_from_github(needs, current_job="report", artifacts_dir=tmp_path, environ={}, timings={})
    assert record["jobs"]["test"]["status"] == "cancelled"
    assert record["status"] == "cancelled"


def test_cli_writes_pipeline_run_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    passing = {name: {"result": "success", "outputs": {}} for name in NEEDS}
    monkeypatch.setenv("NEEDS_JSON", json.dumps(passing))
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    main(["github", "--job", "report", "--artifacts-dir", str(tmp_path)])
    record = json.loads((tmp_path / "pipeline-run.json").read_text())
    assert record["status"] == "success" and record["jobs"]["report"]["status"] == "running"


# --- the previous run's load figures, from a fake of GitHub's REST API and artifact storage -------

LOAD = {"users": 20, "duration_seconds": 20, "requests": 8000, "requests_per_second": 400.0, "p99_ms": 30.0,
        "failure_ratio": 0}  # fmt: skip


def zipped(files: dict[str, object]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, content in files.items():
            bundle.writestr(name, json.dumps(content))
    return buffer.getvalue()


class FakeGitHub:
    """A fake of the REST API endpoints the report job reads, plus a fake of the storage artifact
    downloads redirect to (another port, so "another host"): both on 127.0.0.1, run in threads."""

    def __init__(self) -> None:
        self.runs: dict[str, list[dict]] = {}  # branch -> successful runs, newest first
        self.archives: dict[int, tuple[bool, bytes]] = {}  # run id -> (expired, zip)
        self.storage_authorization: list[str | None] = []
        self.servers = [
            HTTPServer(("127.0.0.1", 0), self._api()),
            HTTPServer(("127.0.0.1", 0), self._storage()),
        ]
        for server in self.servers:
            threading.Thread(target=server.serve_forever, daemon=True).start()
        self.api, self.storage = (f"http://127.0.0.1:{server.server_port}" for server in self.servers)

    def run(self, run_id: int, *, repo: str = "o/r", load: dict | None = LOAD, expired: bool = False) -> dict:
        self.archives[run_id] = (expired, zipped({"load-summary.json": load} if load else {"other.json": {}}))
        return {"id": run_id, "head_sha": f"sha{run_id}", "html_url": f"https://github.test/runs/{run_id}",
                "run_started_at": "2026-01-01T10:00:00Z", "head_repository": {"full_name": repo}}  # fmt: skip

    def _api(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                found = re.fullmatch(r"/repos/o/r/actions/runs/(\d+)/artifacts", url.path)
                archive = re.fullmatch(r"/repos/o/r/actions/artifacts/(\d+)/zip", url.path)
                if self.headers["Authorization"] != "Bearer t0ken":
                    return self.reply(401, {"message": "Bad credentials"})
                if url.path == "/repos/o/r":
                    return self.reply(200, {"default_branch": "main"})
                if url.path == "/repos/o/r/actions/runs/7":
                    return self.reply(200, {"id": 7, "workflow_id": 99})
                if url.path == "/repos/o/r/actions/workflows/99/runs" and query["status"] == "success":
                    return self.reply(200, {"workflow_runs": fake.runs.get(query["branch"], [])})
                if found and query["name"] == "test-results":
                    run_id = int(found[1])
                    url = f"{fake.api}/repos/o/r/actions/artifacts/{run_id}/zip"
                    listing = {
                        "name": "test-results",
                        "expired": fake.archives[run_id][0],
                        "archive_download_url": url,
                    }
                    return self.reply(200, {"artifacts": [listing]})
                if archive:
                    self.send_response(302)
                    self.send_header("Location", f"{fake.storage}/blob/{archive[1]}?sig=short-lived")
                    self.end_headers()
                    return None
                return self.reply(404, {"message": "Not Found"})

            def reply(self, status: int, body: object) -> None:
                self.answer(status, json.dumps(body))

        return Handler

    def _storage(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                fake.storage_authorization.append(self.headers["Authorization"])
                archive = fake.archives[int(urllib.parse.urlsplit(self.path).path.rsplit("/", 1)[1])][1]
                self.answer(200, archive, "application/zip")

        return Handler

    def close(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    yield fake
    fake.close()


def previous_env(fake: FakeGitHub, **extra: str) -> dict[str, str]:
    return {**github_env(fake.api), "GITHUB_RUN_ID": "7", "GITHUB_REF_NAME": "41/merge", **extra}


def test_previous_load_comes_from_the_last_successful_run_on_the_same_branch(
    tmp_path: Path, github: FakeGitHub
) -> None:
    github.runs["feature"] = [
        github.run(7),  # this run: never its own previous
        github.run(31, repo="fork/r"),  # a fork's pull request from a branch of the same name
        github.run(30, expired=True),
        github.run(29, load=None),  # test job failed before writing the summary
        github.run(20, load={**LOAD, "p99_ms": 20.0}),
    ]
    github.runs["main"] = [github.run(10)]
    line = fetch_previous_load(tmp_path, previous_env(github, GITHUB_HEAD_REF="feature"))
    previous = tmp_path / "previous"
    assert line == f"previous run: https://github.test/runs/20 on feature: load figures in {previous}"
    assert json.loads((previous / "test-results" / "load-summary.json").read_text())["p99_ms"] == 20.0
    assert json.loads((previous / "pipeline-run.json").read_text())["run_id"] == "20"
    assert github.storage_authorization and set(github.storage_authorization) == {None}  # token stays home

    (tmp_path / "test-results").mkdir()
    (tmp_path / "test-results" / "load-summary.json").write_text(json.dumps(LOAD))
    comparison = collect(tmp_path).comparison
    assert comparison is not None and comparison.previous_run_id == "20"
    assert next(change for change in comparison.changes if change.key == "p99_ms").previous == 20.0


def test_without_a_run_on_the_branch_the_default_branch_is_used(tmp_path: Path, github: FakeGitHub) -> None:
    github.runs["main"] = [github.run(10)]
    line = fetch_previous_load(tmp_path, previous_env(github, GITHUB_REF_NAME="feature"))
    assert "runs/10 on main" in line
    assert json.loads((tmp_path / "previous" / "pipeline-run.json").read_text())["commit"] == "sha10"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"GITHUB_TOKEN": ""}, "previous run: not looked up (needs GITHUB_TOKEN and GITHUB_API_URL, "),
        ({"GITHUB_TOKEN": "wrong"}, "previous run: not compared (HTTPError: HTTP Error 401: Unauthorized)"),
        ({}, "previous run: no successful run of this workflow with a load-summary.json yet"),
    ],
)
def test_no_previous_run_is_one_clear_line_and_no_files(
    tmp_path: Path, github: FakeGitHub, change: dict[str, str], expected: str
) -> None:
    assert fetch_previous_load(tmp_path, previous_env(github, **change)).startswith(expected)
    assert not (tmp_path / "previous").exists()


def test_cli_previous_never_fails_the_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    main(["github-previous", "--artifacts-dir", str(tmp_path)])
    assert capsys.readouterr().out.startswith("previous run: not looked up")


@pytest.fixture
def truncated_api() -> Iterator[str]:
    with cut_short_server() as url:
        yield url


def test_a_dropped_connection_leaves_the_record_with_statuses_only(truncated_api: str) -> None:
    assert github_job_timings(github_env(truncated_api)) == {}


def test_a_dropped_connection_is_one_line_about_the_previous_run(tmp_path: Path, truncated_api: str) -> None:
    line = fetch_previous_load(tmp_path, {**github_env(truncated_api), "GITHUB_REF_NAME": "main"})
    assert line.startswith("previous run: not compared (IncompleteRead")
    assert not (tmp_path / "previous").exists()


def test_an_oversized_previous_archive_is_not_read(
    tmp_path: Path, github: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline import record

    github.runs["main"] = [github.run(10)]
    monkeypatch.setattr(record, "MAX_ARCHIVE_BYTES", 16)
    line = fetch_previous_load(tmp_path, previous_env(github, GITHUB_REF_NAME="main"))
    assert line == "previous run: test-results of run 10 is too large; not compared"
    assert not (tmp_path / "previous").exists()


def test_an_archive_redirect_to_anything_but_http_is_refused(tmp_path: Path, github: FakeGitHub) -> None:
    github.runs["main"] = [github.run(10)]
    github.storage = "file:///etc"  # where the API's redirect now points
    line = fetch_previous_load(tmp_path, previous_env(github, GITHUB_REF_NAME="main"))
    assert line.startswith("previous run: not compared (ValueError: artifact download redirected to 'file:")
    assert not (tmp_path / "previous").exists()


def test_a_result_that_is_no_finished_status_is_a_failure_and_a_skipped_job_has_no_times(
    tmp_path: Path,
) -> None:
    needs = {
        "build": {"result": "skipped", "outputs": {}},
        "deploy": {"result": "in_progress", "outputs": {}},
    }
    api = {"started_at": "2026-01-01T10:00:00Z", "completed_at": "2026-01-01T10:01:00Z"}
    record = record_from_github(
        needs,
        current_job="report",
        artifacts_dir=tmp_path,
        environ={},
        timings={"build": api, "deploy": api},
    )
    build, deploy = record["jobs"]["build"], record["jobs"]["deploy"]
    assert (build["status"], build["started_at"], build["duration_seconds"]) == ("skipped", None, None)
    assert deploy["status"] == "failure" and deploy["duration_seconds"] == 60.0
