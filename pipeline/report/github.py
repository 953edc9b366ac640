"""Publish the Markdown report in GitHub Actions: the job's step summary and one comment per pull request.

The comment is found again on the next run by a hidden marker and edited in place, so a PR carries
one report comment, always the latest. Only a comment the workflow's own identity wrote is ours:
anyone can post the marker, and editing their comment would put our report under their name (or
fail on a token that may not edit it). Everything goes through the REST API at GITHUB_API_URL
(GitHub Enterprise works too) with GITHUB_TOKEN, by `pipeline.record.github_api`; without a token,
or on a fork's read-only token, it says what it skipped and the job goes on.
"""

from __future__ import annotations

import json
import urllib.error
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.record import API_ERRORS, github_api
from pipeline.scrub import mask_text

MARKER = "<!-- ml-gitops-pipeline:report -->"
#: Who posts with the workflow's GITHUB_TOKEN, as the REST API names it (`user.login`, `user.type`).
BOT_LOGIN = "github-actions[bot]"
BOT_TYPE = "Bot"
PAGE_SIZE = 100
#: GitHub refuses a longer comment body: 422 "Body is too long (maximum is 65536 characters)".
COMMENT_LIMIT = 65_536
CUT_NOTE = "\n\n… cut to fit a GitHub comment: the final-demo-report artifact has the whole report.\n"


def with_run_link(markdown: str, environ: Mapping[str, str]) -> str:
    """The report plus where its HTML version is: the final-demo-report artifact of this workflow run."""
    needed = ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    if not all(environ.get(key) for key in needed):
        return markdown
    server, repository, run_id = (environ[key] for key in needed)
    link = f"[this run]({server}/{repository}/actions/runs/{run_id})"
    return (
        f"{markdown.rstrip()}\n\nThe HTML report, with every chart: artifact `final-demo-report` of {link}.\n"
    )


def append_step_summary(markdown: str, environ: Mapping[str, str]) -> bool:
    """Append the report to $GITHUB_STEP_SUMMARY when Actions provides one."""
    path = environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return False
    with open(path, "a", encoding="utf-8") as summary:
        markdown = mask_text(markdown)
        summary.write(markdown if markdown.endswith("\n") else markdown + "\n")
    return True


def is_our_comment(comment: Mapping[str, Any]) -> bool:
    """A comment with the marker, written by the workflow's bot identity (not a user who copied it)."""
    user = comment.get("user")
    if not isinstance(user, Mapping):
        return False
    written_by_us = user.get("login") == BOT_LOGIN and user.get("type") == BOT_TYPE
    return written_by_us and MARKER in str(comment.get("body") or "")


def pull_request_number(environ: Mapping[str, str]) -> int | None:
    """The PR this run belongs to, from the event payload, or None when it is not a PR run."""
    if environ.get("GITHUB_EVENT_NAME") not in ("pull_request", "pull_request_target"):
        return None
    try:
        event = json.loads(Path(environ["GITHUB_EVENT_PATH"]).read_text())
    except (KeyError, OSError, ValueError):
        return None
    number = (event.get("pull_request") or {}).get("number") or event.get("number")
    return number if isinstance(number, int) else None


def find_comment(environ: Mapping[str, str], number: int) -> dict[str, Any] | None:
    """Our earlier report comment on the PR (the first of ours), paging through them all."""
    path = f"/repos/{environ['GITHUB_REPOSITORY']}/issues/{number}/comments"
    page = 1
    while True:
        comments = github_api(environ, path, per_page=PAGE_SIZE, page=page)
        ours = next((comment for comment in comments if is_our_comment(comment)), None)
        if ours is not None or len(comments) < PAGE_SIZE:
            return ours
        page += 1


def fit(markdown: str, limit: int = COMMENT_LIMIT) -> str:
    """`markdown` within `limit` characters: cut after a whole line, an open code block and <details> closed.

    The report bounds its lists and log lines, so only an unforeseen long value ends up here.
    """
    if len(markdown) <= limit:
        return markdown
    lines = markdown[: limit - len(CUT_NOTE)].split("\n")[:-1]  # whole lines only
    while True:
        cut = "\n".join(lines) + _closing(lines) + CUT_NOTE
        if len(cut) <= limit:
            return cut
        lines.pop()


def _closing(lines: list[str]) -> str:
    """What closes the code block and the <details> still open after `lines` (a tag in code is text)."""
    in_code, open_details = False, 0
    for line in lines:
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code:
            open_details += line.count("<details>") - line.count("</details>")
    return "\n```" * in_code + "\n</details>" * max(open_details, 0)


def upsert_comment(environ: Mapping[str, str], number: int, markdown: str) -> tuple[str, dict[str, Any]]:
    """Create the report comment, or edit ours in place; returns ("created"|"updated", comment)."""
    body = {"body": fit(f"{MARKER}\n{mask_text(markdown)}")}  # the last check before it leaves the run
    repository = environ["GITHUB_REPOSITORY"]
    existing = find_comment(environ, number)
    if existing is None:
        path = f"/repos/{repository}/issues/{number}/comments"
        return "created", github_api(environ, path, body, method="POST")
    path = f"/repos/{repository}/issues/comments/{existing['id']}"
    return "updated", github_api(environ, path, body, method="PATCH")


def comment_on_pull_request(markdown: str, environ: Mapping[str, str]) -> str:
    """Create or update the PR's report comment; returns one line saying what happened."""
    number = pull_request_number(environ)
    if number is None:
        return "not a pull request run: no PR comment"
    for needed in ("GITHUB_TOKEN", "GITHUB_REPOSITORY"):
        if not environ.get(needed):
            return f"{needed} is not set: skipped the comment on PR #{number}"
    try:
        action, comment = upsert_comment(environ, number, markdown)
    except urllib.error.HTTPError as error:
        hint = (
            " (a fork's token cannot write; the step summary has the report)"
            if error.code in (403, 404)
            else ""
        )
        return f"could not comment on PR #{number}: HTTP {error.code} {error.reason}{hint}"
    except API_ERRORS as error:
        return f"could not comment on PR #{number}: {type(error).__name__}: {error}"
    return f"{action} the report comment on PR #{number}: {comment.get('html_url', '')}".rstrip(": ")
