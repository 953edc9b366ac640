"""`invoke pipeline --target kind|minikube --dry-run` through real nox sessions.

The job modules' own dry-run tests run them in the test environment; this one runs them as users
do, each in its own nox environment, so a job session missing a package the kube target needs
fails here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("target", "creates_cluster"),
    [("kind", "kind create cluster --name ml-gitops"), ("minikube", "minikube start --profile ml-gitops")],
)
def test_dry_run_plans_deploy_test_and_demo_in_their_own_sessions(tmp_path, target, creates_cluster):
    artifacts = tmp_path / "artifacts"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "invoke",
            "pipeline",
            "--parallel",
            "--target",
            target,
            "--dry-run",
            "--only",
            "deploy,test,demo",
            "--artifacts-dir",
            str(artifacts),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for job in ("deploy", "test", "demo"):
        plan = (artifacts / "logs" / f"{job}.log").read_text()
        assert creates_cluster in plan
        assert "argo-cd/v3" in plan and "--server-side" in plan
        assert f"ml-inference-{job}" in plan
