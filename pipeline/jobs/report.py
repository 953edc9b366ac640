"""Report job: merge every job's artifacts into final-demo-report/report.html and report.md.

It runs whatever happened before (condition "always"): a missing or broken artifact shows in the
report as such. It exits 0 whenever it wrote the report, so the run's status stays the other jobs'.
With Chromium on PATH it also saves a full-page screenshot (report.png) of the HTML as rendered.
In GitHub Actions it appends report.md to the step summary and keeps one comment on the PR current.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pipeline import settings
from pipeline.artifacts import job_dir
from pipeline.context import RunContext
from pipeline.jobs._main import exit_with
from pipeline.report import browser, github
from pipeline.report.collect import collect
from pipeline.report.render import render

JOB = "report"


def write_report(artifacts_dir: Path, out: Path) -> tuple[Path, Path]:
    """Render the report of `artifacts_dir` into `out`; returns the HTML and Markdown paths."""
    html, markdown = render(collect(artifacts_dir))
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.png").unlink(missing_ok=True)  # an earlier report's; this one's is taken after
    (out / "report.html").write_text(html, encoding="utf-8")
    (out / "report.md").write_text(markdown, encoding="utf-8")
    return out / "report.html", out / "report.md"


def take_screenshot(html: Path) -> None:
    chromium = browser.find_chromium()
    if chromium is None:
        print("report: chromium not found on PATH; no screenshot (install chromium to get report.png)")
        return
    try:
        width, height = browser.screenshot(chromium, html, html.with_name("report.png"))
    except (browser.BrowserError, OSError, ValueError, KeyError) as error:
        print(f"report: screenshot failed, the report itself is fine: {error}")
        return
    print(f"report: screenshot {html.with_name('report.png')} ({width}x{height})")


def publish(markdown: str) -> None:
    """Hand the Markdown to GitHub Actions when running there; a failure here never fails the job."""
    markdown = github.with_run_link(markdown, os.environ)
    if github.append_step_summary(markdown, os.environ):
        print("report: appended report.md to the step summary")
    if os.environ.get("GITHUB_ACTIONS") == "true" or os.environ.get("GITHUB_EVENT_NAME"):
        print(f"report: {github.comment_on_pull_request(markdown, os.environ)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="nox -s report --",
        description=__doc__.splitlines()[0],
        epilog="Settings come from the PIPELINE_* variables (docs/configuration.md).",
    )
    parser.parse_args(argv)
    try:
        screenshot = settings.flag("PIPELINE_REPORT_SCREENSHOT")
    except ValueError as error:
        parser.error(str(error))
    context = RunContext.from_env()
    out = job_dir(JOB, context)
    try:
        html, markdown = write_report(context.artifacts_dir, out)
    except Exception as error:  # the one failure that matters: no report at all
        print(f"report: could not write the report: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(f"report: {html}\nreport: {markdown}")
    if screenshot:
        take_screenshot(html)
    publish(markdown.read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    exit_with(JOB, main)
