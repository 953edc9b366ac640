"""The deploy job as the pipeline runs it (`python -m pipeline.jobs.deploy`) on the local target."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest

from pipeline.targets.local import layout
from pipeline.targets.local.target import REPO_ROOT
from tests.helpers import interrupt_job, require_program, run_job

STDLIB_DOWN_ALL = "from pipeline.targets import get_target; print(get_target('local').down_all())"
CLUSTER_STATE_FILES = (
    "status.json",
    "manifests.yaml",
    "events.jsonl",
    "reconciler-history.jsonl",
    "processes.json",
    "prometheus-targets.json",
    "outputs.json",
)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An artifacts directory holding what the build job leaves: a real trained model."""
    from ml_inference.train import train

    artifacts = tmp_path_factory.mktemp("artifacts")
    train(artifacts / "build-output" / "model")
    return artifacts


def run_deploy(artifacts: Path, state_root: Path, **variables: str) -> subprocess.CompletedProcess:
    environ = os.environ | {
        "PIPELINE_ARTIFACTS_DIR": str(artifacts),
        "PIPELINE_LOCAL_STATE_DIR": str(state_root),
        "PIPELINE_TARGET": "local",
        **variables,
    }
    return run_job("deploy", environ, timeout=180)


def environment_processes(state_root: Path, environment_id: str) -> list[psutil.Process]:
    return [
        p
        for p in psutil.process_iter(["environ", "cmdline"])
        if (p.info["environ"] or {}).get(layout.ENVIRONMENT_LABEL) == environment_id
        or str(state_root) in " ".join(p.info["cmdline"] or [])
    ]


@pytest.mark.slow
def test_a_deploy_stopped_while_bringing_up_says_so_in_one_line_and_leaves_nothing(
    artifacts: Path, tmp_path: Path
) -> None:
    """Ctrl-C, or the runner's SIGINT to the job's group: no traceback in the job's log."""
    environ = os.environ | {
        "PIPELINE_ARTIFACTS_DIR": str(artifacts),
        "PIPELINE_LOCAL_STATE_DIR": str(tmp_path / "state"),
        "PIPELINE_TARGET": "local",
    }
    returncode, seen = interrupt_job("deploy", [], environ, bool)  # at its first line: the reconciler's pid
    assert returncode == 130, seen
    assert "Traceback" not in seen and "deploy: stopped" in seen, seen
    left = [" ".join(process.cmdline()) for process in environment_processes(tmp_path / "state", "none")]
    assert not left, f"the environment was left running: {left}"


@pytest.mark.slow
def test_deploy_saves_the_cluster_state_and_stops_the_environment(artifacts: Path, tmp_path: Path) -> None:
    require_program("prometheus")
    result = run_deploy(artifacts, tmp_path / "state")
    assert result.returncode == 0, result.stderr
    state = artifacts / "cluster-state"
    for name in CLUSTER_STATE_FILES:
        assert (state / name).stat().st_size > 0, name
    status = json.loads((state / "status.json").read_text())
    assert (status["target"], status["environment"], status["sync"], status["health"]) == (
        "local",
        "deploy",
        "Synced",
        "Healthy",
    )
    assert len([r for r in status["replicas"] if r["ready"]]) == status["desired_replicas"] == 3
    assert {t["health"] for t in status["prometheus"]["targets"]} == {"up"}
    outputs = json.loads((state / "outputs.json").read_text())
    assert outputs["endpoint"] == status["endpoint"]
    assert outputs["environment"] == "deploy"
    recorded = json.loads((tmp_path / "state" / "deploy" / layout.STATE).read_text())
    assert environment_processes(tmp_path / "state", recorded["environment_id"]) == []


@pytest.mark.slow
def test_deploy_with_keep_leaves_the_environment_up_until_down_all(artifacts: Path, tmp_path: Path) -> None:
    result = run_deploy(artifacts, tmp_path / "state", PIPELINE_KEEP="1")
    assert result.returncode == 0, result.stderr
    assert "left up (--keep)" in result.stdout
    endpoint = json.loads((artifacts / "cluster-state" / "outputs.json").read_text())["endpoint"]
    response = httpx.post(f"{endpoint}/predict", json={"features": [6.7, 3.0, 5.2, 2.3]})
    assert response.status_code == 200
    recorded = json.loads((tmp_path / "state" / "deploy" / layout.STATE).read_text())
    processes = environment_processes(tmp_path / "state", recorded["environment_id"])
    assert processes
    # As `invoke down` does it: a Python with nothing installed (-S: no site-packages).
    down = subprocess.run(
        [sys.executable, "-S", "-c", STDLIB_DOWN_ALL],
        cwd=REPO_ROOT,
        env=os.environ | {"PIPELINE_LOCAL_STATE_DIR": str(tmp_path / "state")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert down.returncode == 0, down.stderr
    assert down.stdout.strip() == "['deploy']"
    assert not [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_deploy_without_a_model_fails_with_one_clear_line(tmp_path: Path) -> None:
    result = run_deploy(tmp_path / "artifacts", tmp_path / "state")
    assert result.returncode == 1
    assert "run `nox -s build` first" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "state" / "deploy" / layout.RECONCILER_LOG).exists()


@pytest.mark.parametrize("dry_run", ["0", "1"])
def test_a_model_the_quality_gate_rejected_is_never_deployed(
    artifacts: Path, tmp_path: Path, dry_run: str
) -> None:
    """`invoke pipeline --only deploy` or `nox -s deploy` after a build whose gate failed."""
    rejected = tmp_path / "artifacts"
    shutil.copytree(artifacts / "build-output" / "model", rejected / "build-output" / "model")
    gate = {"verdict": "failed", "model_version": "v9", "test_accuracy": 0.5, "min_test_accuracy": 0.9,
            "max_drop": 0.02, "reasons": ["held-out accuracy 0.500 is below the floor 0.900"]}  # fmt: skip
    (rejected / "build-output" / "build-record.json").write_text(json.dumps({"quality_gate": gate}))
    result = run_deploy(rejected, tmp_path / "state", PIPELINE_DRY_RUN=dry_run)
    assert result.returncode == 1
    assert "failed the quality gate: held-out accuracy 0.500 is below the floor 0.900" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "state").exists()


def test_deploy_dry_run_starts_nothing(artifacts: Path, tmp_path: Path) -> None:
    result = run_deploy(artifacts, tmp_path / "state", PIPELINE_DRY_RUN="1")
    assert result.returncode == 0, result.stderr
    assert "deploy (dry run)" in result.stdout
    assert not (tmp_path / "state").exists()
