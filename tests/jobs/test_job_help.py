"""`nox -s <job> -- --help` prints that job's options and does nothing else, for every entry point.

The sessions pass their arguments straight to these modules (noxfile.py), so each module is run
with `--help` here: it must exit 0 with a usage line and leave no artifact, state or process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

ENTRY_POINTS = [
    *(f"pipeline.jobs.{job}" for job in ("unit", "build", "deploy", "scan", "test", "demo", "report")),
    "pipeline.gitops.checks",
    "pipeline.targets.local.reconciler",
]


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_help_prints_the_options_and_does_nothing_else(module: str, tmp_path: Path) -> None:
    artifacts, state = tmp_path / "artifacts", tmp_path / "state"
    done = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "PIPELINE_ARTIFACTS_DIR": str(artifacts),
            "PIPELINE_LOCAL_STATE_DIR": str(state),
            "PIPELINE_DRY_RUN": "1",  # if --help is ignored, do as little as possible
        },
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert done.stdout.startswith("usage: "), done.stdout[:500]
    if module.startswith("pipeline.jobs."):  # named as it is run: the session passes what follows `--`
        assert done.stdout.startswith(f"usage: nox -s {module.rpartition('.')[2]} -- "), done.stdout[:200]
    assert "--help" in done.stdout
    left = [str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*")]
    assert left == [], f"--help did something: {left}"
