"""The unit job stopped part-way (Ctrl-C, the runner's SIGINT): it keeps what pytest managed to record,
and says it was stopped."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.slow


def test_a_stopped_unit_job_still_writes_its_junit_xml_and_summary(tmp_path: Path) -> None:
    environ = {**os.environ, "PIPELINE_ARTIFACTS_DIR": str(tmp_path)}
    # The drain tests take seconds each, so the stop comes while they run.
    job = subprocess.Popen(
        [sys.executable, "-m", "pipeline.jobs.unit", "-k", "drain", "-p", "no:cacheprovider"],
        cwd=REPO,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the runner signals a job's whole group, pytest included
    )
    try:
        assert job.stdout is not None
        seen = ""
        deadline = time.monotonic() + 60
        while "workers [" not in seen and time.monotonic() < deadline:  # xdist has collected
            seen += job.stdout.readline()
        os.killpg(job.pid, signal.SIGINT)
        seen += job.communicate(timeout=60)[0]
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait()
    out = tmp_path / "unit-results"
    summary = json.loads((out / "summary.json").read_text())
    assert "junit_missing" not in summary, "pytest was killed before it wrote its XML"
    assert (out / "junit.xml").exists() and json.loads((out / "outputs.json").read_text())["tests"]
    # Only the tests that ran are in the XML: its tally alone would read as a full pass.
    assert re.search(r"unit: stopped part-way: \d+ tests ran, \d+ passed", seen), seen[-2000:]
