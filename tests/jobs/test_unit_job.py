"""The unit job stopped part-way (Ctrl-C, the runner's SIGINT): it keeps what pytest managed to record,
and says it was stopped."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tests.helpers import interrupt_job

pytestmark = pytest.mark.slow


def test_a_stopped_unit_job_still_writes_its_junit_xml_and_summary(tmp_path: Path) -> None:
    environ = {**os.environ, "PIPELINE_ARTIFACTS_DIR": str(tmp_path)}
    # The drain tests take seconds each, so the stop comes while they run (once xdist has collected).
    _, seen = interrupt_job(
        "unit", ["-k", "drain", "-p", "no:cacheprovider"], environ, lambda seen: "workers [" in seen
    )
    out = tmp_path / "unit-results"
    summary = json.loads((out / "summary.json").read_text())
    assert "junit_missing" not in summary, "pytest was killed before it wrote its XML"
    assert (out / "junit.xml").exists() and json.loads((out / "outputs.json").read_text())["tests"]
    # Only the tests that ran are in the XML: its tally alone would read as a full pass.
    assert re.search(r"unit: stopped part-way: \d+ tests ran, \d+ passed", seen), seen[-2000:]
