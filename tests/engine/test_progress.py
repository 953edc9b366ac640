"""What a person sees: the live table on a terminal, plain lines elsewhere, a summary at the end."""

from __future__ import annotations

import io
import re

from pipeline.graph import JOBS
from pipeline.progress import LiveProgress, Progress, make_progress
from pipeline.record import finish, new_record


def a_record() -> dict:
    record = new_record(run_id="r1", commit="c", target="local", demo_mode="full", parallel=True, jobs=JOBS)
    record["jobs"]["unit"].update(status="success", duration_seconds=1.5, exit_code=0)
    record["jobs"]["build"].update(status="running", started_at="2026-01-01T00:00:00.000Z")
    record["jobs"]["deploy"].update(status="skipped")
    return record


def test_plain_lines_when_not_a_terminal() -> None:
    stream = io.StringIO()
    progress = make_progress(stream)
    assert type(progress) is Progress
    progress.changed(a_record())
    lines = stream.getvalue().splitlines()
    assert "unit         success    1.5s" in lines
    assert any(line.startswith("build        running") for line in lines)
    progress.changed(a_record())  # nothing changed: nothing printed again
    assert stream.getvalue().splitlines() == lines


def test_summary_table_lists_every_job_with_status_time_and_log() -> None:
    record = a_record()
    finish(record)
    for progress in (Progress(io.StringIO()), LiveProgress(io.StringIO())):
        progress.summary(record)
        text = progress.stream.getvalue()
        assert "run r1" in text and "success" in text
        for name in record["jobs"]:
            assert name in text and f"logs/{name}.log" in text


def test_summary_marks_entries_kept_from_an_earlier_run() -> None:
    record = a_record()
    record["jobs"]["unit"]["reused"] = True
    finish(record)
    plain, live = Progress(io.StringIO()), LiveProgress(io.StringIO())
    for progress in (plain, live):
        progress.summary(record)
        assert progress.stream.getvalue().count("(earlier run)") == 1
    row = next(line for line in plain.stream.getvalue().splitlines() if "earlier run" in line)
    assert row.startswith("unit ") and row.endswith("logs/unit.log (earlier run)")


def test_live_table_shows_running_jobs_elapsed_time() -> None:
    stream = io.StringIO()
    progress = LiveProgress(stream)
    table = progress._table(a_record(), title="pipeline")
    progress.console.print(table)
    row = next(line for line in stream.getvalue().splitlines() if "build" in line and "running" in line)
    assert re.search(r"\d+\.\ds", row.split("running", 1)[1])  # elapsed so far, e.g. "12345.6s"
