"""The report in GitHub Actions: step summary, and one PR comment kept current through the REST API.

GitHub cannot be reached from here, so the REST calls go to FakeGitHub: a small HTTP server on
127.0.0.1 that implements the three issue-comment endpoints the report uses, the way GitHub
documents them (pagination with per_page/page, 201 on create, Bearer token required).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from pipeline.report import github
from tests.helpers import cut_short_server, run_report_job

TOKEN = "ghs_" + "FakeInstallationToken0123456789"
REPOSITORY = "octo-org/ml-gitops-pipeline"
PR = 42
#: GitHub Enterprise serves the API under /api/v3: the client must keep GITHUB_API_URL's path.
API_PREFIX = "/api/v3"
#: GitHub refuses a longer comment body with 422 "Body is too long (maximum is 65536 characters)".
GITHUB_MAX_COMMENT = 65536


class FakeGitHub(ThreadingHTTPServer):
    """A fake of GitHub's issue-comments REST API for one repository, recording every request."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.comments: dict[int, list[dict]] = {}
        self.requests: list[tuple[str, str, str | None]] = []  # method, path, Authorization header
        self.forbid_writes = False
        self.next_id = 1000

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{API_PREFIX}"

    def add_comment(
        self, number: int, body: str, user: str = "someone", user_type: str | None = None
    ) -> dict:
        """A comment as GitHub lists it; `user.type` is "Bot" for app identities ("[bot]" logins)."""
        self.next_id += 1
        comment = {
            "id": self.next_id,
            "body": body,
            "user": {"login": user, "type": user_type or ("Bot" if user.endswith("[bot]") else "User")},
            "html_url": f"https://github.example/{REPOSITORY}/pull/{number}#issuecomment-{self.next_id}",
        }
        self.comments.setdefault(number, []).append(comment)
        return comment


class _Handler(BaseHTTPRequestHandler):
    server: FakeGitHub

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def _reply(self, status: int, payload) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self) -> tuple[str, dict]:
        parsed = urlparse(self.path)
        self.server.requests.append((self.command, parsed.path, self.headers.get("Authorization")))
        return parsed.path.removeprefix(API_PREFIX), parse_qs(parsed.query)

    def _authorized(self) -> bool:
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._reply(401, {"message": "Bad credentials"})
            return False
        return True

    def do_GET(self) -> None:
        path, query = self._route()
        match = re.fullmatch(rf"/repos/{REPOSITORY}/issues/(\d+)/comments", path)
        if not match:
            return self._reply(404, {"message": "Not Found"})
        if not self._authorized():
            return None
        per_page, page = int(query.get("per_page", ["30"])[0]), int(query.get("page", ["1"])[0])
        comments = self.server.comments.get(int(match[1]), [])
        self._reply(200, comments[(page - 1) * per_page : page * per_page])

    def _body(self) -> dict | None:
        """The request's JSON, or None after a 422 for a body GitHub would not take."""
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if len(body["body"]) > GITHUB_MAX_COMMENT:
            message = f"Body is too long (maximum is {GITHUB_MAX_COMMENT} characters)"
            self._reply(422, {"message": "Validation Failed", "errors": [{"message": message}]})
            return None
        return body

    def do_POST(self) -> None:
        path, _ = self._route()
        match = re.fullmatch(rf"/repos/{REPOSITORY}/issues/(\d+)/comments", path)
        if not match:
            return self._reply(404, {"message": "Not Found"})
        if not self._authorized():
            return None
        if self.server.forbid_writes:
            return self._reply(403, {"message": "Resource not accessible by integration"})
        if (body := self._body()) is not None:
            comment = self.server.add_comment(int(match[1]), body["body"], user="github-actions[bot]")
            self._reply(201, comment)

    def do_PATCH(self) -> None:
        path, _ = self._route()
        match = re.fullmatch(rf"/repos/{REPOSITORY}/issues/comments/(\d+)", path)
        found = [c for cs in self.server.comments.values() for c in cs if match and c["id"] == int(match[1])]
        if not found:
            return self._reply(404, {"message": "Not Found"})
        if not self._authorized():
            return None
        if (body := self._body()) is not None:
            found[0]["body"] = body["body"]
            self._reply(200, found[0])


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    server = FakeGitHub()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    """A minimal but real run record: one job done; the report reads the rest as missing."""
    root = tmp_path / "artifacts"
    root.mkdir()
    record = {
        "run_id": "gh-77",
        "commit": "c0ffee" * 6 + "beef",
        "target": "local",
        "demo_mode": "quick",
        "parallel": True,
        "started_at": "2026-11-27T06:00:00Z",
        "finished_at": None,
        "duration_seconds": None,
        "status": "running",
        "jobs": {
            "unit": {
                "status": "success",
                "started_at": "2026-11-27T06:00:00Z",
                "finished_at": "2026-11-27T06:00:09Z",
                "duration_seconds": 9.0,
            }
        },
    }
    (root / "pipeline-run.json").write_text(json.dumps(record))
    return root


def pull_request_event(tmp_path: Path, number: int = PR) -> Path:
    path = tmp_path / "event.json"
    path.write_text(
        json.dumps({"action": "synchronize", "number": number, "pull_request": {"number": number}})
    )
    return path


def actions_environ(fake: FakeGitHub, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": str(pull_request_event(tmp_path)),
        "GITHUB_REPOSITORY": REPOSITORY,
        "GITHUB_API_URL": fake.url,
        "GITHUB_TOKEN": TOKEN,
        "GITHUB_SERVER_URL": "https://github.example",
        "GITHUB_RUN_ID": "4242",
        **extra,
    }


def api_environ(fake: FakeGitHub) -> dict[str, str]:
    return {"GITHUB_API_URL": fake.url, "GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": REPOSITORY}


def test_step_summary_gets_the_markdown_report_appended(artifacts: Path, tmp_path: Path) -> None:
    summary = tmp_path / "step-summary.md"
    summary.write_text("# earlier step\n")
    done = run_report_job(artifacts, GITHUB_STEP_SUMMARY=str(summary), GITHUB_EVENT_NAME="push")
    assert done.returncode == 0, done.stderr
    report_md = (artifacts / "final-demo-report/report.md").read_text()
    assert summary.read_text() == "# earlier step\n" + report_md
    assert "appended report.md to the step summary" in done.stdout
    assert "not a pull request run: no PR comment" in done.stdout


def test_pull_request_gets_one_comment_updated_in_place(
    artifacts: Path, tmp_path: Path, fake_github: FakeGitHub
) -> None:
    fake_github.add_comment(PR, "LGTM", user="reviewer")
    environ = actions_environ(fake_github, tmp_path)

    first = run_report_job(artifacts, **environ)
    assert first.returncode == 0, first.stderr
    assert f"created the report comment on PR #{PR}" in first.stdout
    ours = [c for c in fake_github.comments[PR] if github.MARKER in c["body"]]
    assert len(ours) == 1
    assert "Run `gh-77`" in ours[0]["body"]
    assert f"[this run](https://github.example/{REPOSITORY}/actions/runs/4242)" in ours[0]["body"]

    record = json.loads((artifacts / "pipeline-run.json").read_text())
    record["run_id"] = "gh-78"
    (artifacts / "pipeline-run.json").write_text(json.dumps(record))
    second = run_report_job(artifacts, **environ)
    assert second.returncode == 0, second.stderr
    assert f"updated the report comment on PR #{PR}" in second.stdout
    assert fake_github.comments[PR][0]["body"] == "LGTM"  # the reviewer's comment is untouched
    ours_now = [c for c in fake_github.comments[PR] if github.MARKER in c["body"]]
    assert [c["id"] for c in ours_now] == [ours[0]["id"]]
    assert "Run `gh-78`" in ours_now[0]["body"]
    methods = [method for method, _, _ in fake_github.requests]
    assert methods == ["GET", "POST", "GET", "PATCH"]
    assert all(path.startswith(API_PREFIX) for _, path, _ in fake_github.requests)
    assert all(auth == f"Bearer {TOKEN}" for _, _, auth in fake_github.requests)
    assert TOKEN not in first.stdout + first.stderr + second.stdout + second.stderr


def test_our_comment_is_found_beyond_the_first_page(fake_github: FakeGitHub) -> None:
    for index in range(github.PAGE_SIZE + 20):
        fake_github.add_comment(PR, f"chatter {index}")
    ours = fake_github.add_comment(PR, f"{github.MARKER}\nold report", user="github-actions[bot]")
    action, comment = github.upsert_comment(api_environ(fake_github), PR, "new report")
    assert (action, comment["id"]) == ("updated", ours["id"])
    assert ours["body"] == f"{github.MARKER}\nnew report"
    pages = [path for method, path, _ in fake_github.requests if method == "GET"]
    assert len(pages) == 2


def test_without_a_token_the_comment_is_skipped_and_said_so(
    artifacts: Path, tmp_path: Path, fake_github: FakeGitHub
) -> None:
    environ = actions_environ(fake_github, tmp_path)
    del environ["GITHUB_TOKEN"]
    done = run_report_job(artifacts, **environ)
    assert done.returncode == 0, done.stderr
    assert f"GITHUB_TOKEN is not set: skipped the comment on PR #{PR}" in done.stdout
    assert fake_github.requests == []


def test_a_read_only_token_does_not_fail_the_report(
    artifacts: Path, tmp_path: Path, fake_github: FakeGitHub
) -> None:
    fake_github.forbid_writes = True
    done = run_report_job(artifacts, **actions_environ(fake_github, tmp_path))
    assert done.returncode == 0, done.stderr
    assert f"could not comment on PR #{PR}: HTTP 403" in done.stdout
    assert (artifacts / "final-demo-report/report.html").is_file()


def test_a_dropped_connection_is_one_line_not_a_crash(tmp_path: Path) -> None:
    with cut_short_server() as url:
        environ = {
            "GITHUB_EVENT_NAME": "pull_request",
            "GITHUB_EVENT_PATH": str(pull_request_event(tmp_path)),
            "GITHUB_REPOSITORY": REPOSITORY,
            "GITHUB_API_URL": url,
            "GITHUB_TOKEN": TOKEN,
        }
        line = github.comment_on_pull_request("# report", environ)
    assert line.startswith(f"could not comment on PR #{PR}: IncompleteRead")


def test_pull_request_number_comes_only_from_pull_request_events(tmp_path: Path) -> None:
    event = str(pull_request_event(tmp_path, 7))
    assert github.pull_request_number({"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": event}) == 7
    assert github.pull_request_number({"GITHUB_EVENT_NAME": "push", "GITHUB_EVENT_PATH": event}) is None
    assert github.pull_request_number({"GITHUB_EVENT_NAME": "pull_request"}) is None


def test_a_marker_posted_by_someone_else_is_never_edited(fake_github: FakeGitHub) -> None:
    mallory = fake_github.add_comment(PR, f"{github.MARKER}\nplease edit me", user="mallory")
    lookalike = fake_github.add_comment(
        PR, f"{github.MARKER}\nme too", user="github-actions[bot]", user_type="User"
    )
    other_bot = fake_github.add_comment(PR, f"{github.MARKER}\nanother app", user="renovate[bot]")
    action, comment = github.upsert_comment(api_environ(fake_github), PR, "the report")
    assert action == "created"
    assert comment["id"] not in (mallory["id"], lookalike["id"], other_bot["id"])
    assert [c["body"] for c in (mallory, lookalike, other_bot)] == [
        f"{github.MARKER}\nplease edit me",
        f"{github.MARKER}\nme too",
        f"{github.MARKER}\nanother app",
    ]
    assert [method for method, _, _ in fake_github.requests] == ["GET", "POST"]
    again, edited = github.upsert_comment(api_environ(fake_github), PR, "the next report")
    assert (again, edited["id"]) == ("updated", comment["id"])


def failing_unit_suite(artifacts: Path, cases: int) -> None:
    """A unit job whose every test failed with a long message, as when a dependency breaks them all."""
    message = "AssertionError: " + "the replica answered something else entirely; " * 10
    rows = "".join(
        f'<testcase classname="tests.test_api" name="test_case_{index}" time="0.01">'
        f'<failure message="{message} (case {index})">trace</failure></testcase>'
        for index in range(cases)
    )
    counts = f'tests="{cases}" failures="{cases}" errors="0" skipped="0"'
    (artifacts / "unit-results").mkdir()
    (artifacts / "unit-results/junit.xml").write_text(f'<testsuite name="pytest" {counts}>{rows}</testsuite>')


def test_a_report_longer_than_a_comment_takes_still_reaches_the_pull_request(
    artifacts: Path, tmp_path: Path, fake_github: FakeGitHub
) -> None:
    failing_unit_suite(artifacts, 400)
    done = run_report_job(artifacts, **actions_environ(fake_github, tmp_path))
    assert done.returncode == 0, done.stderr
    assert f"created the report comment on PR #{PR}" in done.stdout
    (comment,) = fake_github.comments[PR]
    assert len(comment["body"]) <= GITHUB_MAX_COMMENT
    assert "Pipeline report" in comment["body"]
    assert "### Drift demo" in comment["body"]  # the sections after the long list are all there
    assert "and 390 more" in comment["body"]
    report_md = (artifacts / "final-demo-report/report.md").read_text()
    assert "test_case_0" in report_md


def test_a_body_over_the_limit_is_cut_at_a_line_with_its_blocks_closed() -> None:
    log = "\n".join(f"line {index} " + "x" * 200 for index in range(400))
    markdown = f"## Pipeline report\n\n<details><summary>log</summary>\n\n```text\n{log}\n```\n</details>\n"
    body = github.fit(markdown, limit=20_000)
    assert len(body) <= 20_000
    assert body.endswith(github.CUT_NOTE)
    kept = body.removesuffix(github.CUT_NOTE)
    assert kept.endswith("\n```\n</details>")
    assert re.search(r"\nline \d+ x{200}\n```", kept), "the cut falls after a whole line"
    assert github.fit("short", limit=20_000) == "short"


def test_a_cut_body_stays_within_the_limit_when_its_log_quotes_details_tags() -> None:
    # A tag inside a code block is text: counted as open, its closing tags overflowed the limit.
    log = "\n".join("<details> " + "L" * 280 for _ in range(400))
    markdown = f"<details><summary>log</summary>\n\n```text\n{log}\n```\n</details>\n"
    body = github.fit(markdown, limit=20_000)
    assert len(body) <= 20_000
    assert body.removesuffix(github.CUT_NOTE).endswith("L\n```\n</details>")
