"""`nox -s <job> -- --help` prints that job's options and does nothing else, for every entry point;
a setting a job cannot use is refused before it starts, in one line that names it.

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


@pytest.mark.parametrize(
    ("job", "setting", "named"),
    [
        ("test", {"PIPELINE_LOAD_USERS": "abc"}, "PIPELINE_LOAD_USERS='abc' is not a whole number"),
        ("test", {"PIPELINE_LOAD_USER_RPS": "fast"}, "PIPELINE_LOAD_USER_RPS='fast' is not a number"),
        ("test", {"PIPELINE_LOAD_DURATION": "0"}, "duration_seconds=0"),
        ("test", {"PIPELINE_LOAD_THRESHOLDS": "no-such.toml"}, "no-such.toml"),
        ("demo", {"PIPELINE_DEMO_HEAL_TIMEOUT": "soon"}, "PIPELINE_DEMO_HEAL_TIMEOUT='soon' is not a number"),
        (
            "demo",
            {"PIPELINE_DEMO_LOAD_RATE": "0"},
            "--load-rate (or PIPELINE_DEMO_LOAD_RATE) must be above 0",
        ),
    ],
)
def test_a_bad_setting_is_refused_in_one_line_that_names_it(
    job: str, setting: dict[str, str], named: str, tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", f"pipeline.jobs.{job}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **setting, "PIPELINE_ARTIFACTS_DIR": str(tmp_path / "artifacts")},
    )
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert named in done.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "artifacts").exists()  # refused before anything ran


@pytest.mark.parametrize(
    ("job", "flags", "named"),
    [
        (
            "demo",
            ["--heal-timeout", "inf"],
            "(or PIPELINE_DEMO_HEAL_TIMEOUT) must be above 0 and finite",
        ),
        ("demo", ["--load-rate", "nan"], "(or PIPELINE_DEMO_LOAD_RATE) must be above 0 and finite"),
        ("test", ["--spawn-rate", "nan"], "spawn_rate=nan"),
        ("test", ["--user-rps", "inf"], "user_rps must be >= 0 and finite"),
    ],
)
def test_a_flag_that_is_not_a_finite_number_is_refused(
    job: str, flags: list[str], named: str, tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", f"pipeline.jobs.{job}", *flags],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PIPELINE_ARTIFACTS_DIR": str(tmp_path / "artifacts")},
    )
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert named in done.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "artifacts").exists()
