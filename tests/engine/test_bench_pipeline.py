"""The runner benchmark (scripts/bench_pipeline.py) runs the real graph: every job, at a tiny scale."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.graph import JOBS

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_pipeline_benchmark_runs_every_job_of_the_graph(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts/bench_pipeline.py"), "--scale", "0.05"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    shape = next(line for line in done.stdout.splitlines() if line.startswith("Jobs (sleeps):"))
    assert all(f"{job.name} " in shape for job in JOBS), shape
    assert "| parallel / sequential |" in done.stdout
