"""A job run alone (`nox -s test`) starts from an empty folder of its own, as under the runner.

Else what an earlier run of it left (a metrics verification, outputs.json) would pass for this
run's beside the files this one did write, in its artifact and in the report.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.graph import JOBS_BY_NAME

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("job", ["deploy", "test", "demo"])
def test_a_job_run_alone_leaves_nothing_of_an_earlier_run_of_it(job: str, tmp_path: Path) -> None:
    folder = tmp_path / str(JOBS_BY_NAME[job].artifact)
    (folder / "raw").mkdir(parents=True)
    (folder / "outputs.json").write_text('{"passed": "true"}')
    (folder / "raw" / "earlier.json").write_text("{}")
    done = subprocess.run(
        [sys.executable, "-m", f"pipeline.jobs.{job}"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PIPELINE_ARTIFACTS_DIR": str(tmp_path), "PIPELINE_DRY_RUN": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-1000:] + done.stderr[-1000:]
    assert folder.is_dir() and list(folder.iterdir()) == []


@pytest.mark.parametrize("job", ["unit", "build", "deploy", "scan", "test", "demo", "report"])
def test_an_artifacts_folder_that_cannot_be_made_is_one_line_naming_it(job: str, tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    done = subprocess.run(
        [sys.executable, "-m", f"pipeline.jobs.{job}"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PIPELINE_ARTIFACTS_DIR": str(blocked / "artifacts"), "PIPELINE_DRY_RUN": "1"},
    )  # fmt: skip
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert str(blocked / "artifacts") in done.stderr
