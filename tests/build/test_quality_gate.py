"""The model quality gate: a worse model fails the build with both figures, and the record says why.

The job-level tests run the real build job with no Docker engine (the gate comes before the image).
One makes the model worse on purpose by training the service's own `train()` on shuffled labels;
another plants a better previous model in the build's folder.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.build import BuildError, quality
from pipeline.build.training import CARD_FILE
from pipeline.context import RunContext
from pipeline.graph import JOBS_BY_NAME
from pipeline.jobs import build as build_job
from pipeline.jobs._environment import release_from_build
from pipeline.progress import Progress
from pipeline.runner import Runner, RunOptions

REPO = Path(__file__).resolve().parents[2]
DEAD_ENGINE = "unix:///nonexistent/docker.sock"
CONFIG = {"min_test_accuracy": 0.9, "max_drop": 0.02}
RECORD = "build-record.json"


def card(accuracy: float, version: str = "0.1.0+new") -> dict:
    return {
        "name": "sklearn-iris",
        "version": version,
        "artifact_sha256": "0" * 64,
        "test_accuracy": accuracy,
    }


def run_build(artifacts: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.jobs.build"],
        cwd=REPO,
        env={**os.environ, "PIPELINE_ARTIFACTS_DIR": str(artifacts), "DOCKER_HOST": DEAD_ENGINE},
        capture_output=True,
        text=True,
        timeout=600,
    )


def plant_previous(build_dir: Path, accuracy: float, version: str = "0.1.0+previous") -> None:
    (build_dir / "model").mkdir(parents=True, exist_ok=True)
    (build_dir / "model" / CARD_FILE).write_text(json.dumps(card(accuracy, version)))


# --- the rule -----------------------------------------------------------------------------------


def test_a_model_below_the_floor_fails_naming_its_accuracy_and_the_floor() -> None:
    gate = quality.evaluate(card(0.85), None, CONFIG)
    assert gate["verdict"] == "failed"
    with pytest.raises(BuildError, match=r"accuracy 0\.850 is below the floor 0\.900"):
        quality.enforce(gate)


def test_a_model_worse_than_the_previous_by_more_than_the_margin_fails_with_both_figures() -> None:
    previous = {"version": "0.1.0+old", "test_accuracy": 0.97, "source": "x"}
    gate = quality.evaluate(card(0.94), previous, CONFIG)
    assert gate["verdict"] == "failed"
    assert gate["reasons"] == [
        "held-out accuracy 0.940 is more than 0.020 below the previous model's 0.970 (0.1.0+old)"
    ]


def test_a_model_within_the_margin_of_the_previous_and_above_the_floor_passes() -> None:
    previous = {"version": "0.1.0+old", "test_accuracy": 0.95, "source": "x"}
    gate = quality.evaluate(card(0.935), previous, CONFIG)
    assert (gate["verdict"], gate["reasons"], gate["previous"]) == ("passed", [], previous)
    quality.enforce(gate)


def test_the_baseline_is_the_last_build_and_a_rejected_model_never_becomes_one(tmp_path: Path) -> None:
    assert quality.previous_model(tmp_path, RECORD) is None
    plant_previous(tmp_path, 0.95, "0.1.0+good")
    good = quality.previous_model(tmp_path, RECORD)
    assert good is not None and (good["version"], good["test_accuracy"]) == ("0.1.0+good", 0.95)
    # A later build failed the gate: its rejected model sits in model/, its record keeps the baseline.
    plant_previous(tmp_path, 0.33, "0.1.0+rejected")
    (tmp_path / RECORD).write_text(json.dumps({"quality_gate": {"verdict": "failed", "previous": good}}))
    assert quality.previous_model(tmp_path, RECORD) == good


def test_the_thresholds_file_in_the_repository_is_valid_and_a_broken_one_is_named(tmp_path: Path) -> None:
    assert set(quality.load_config()) == {"min_test_accuracy", "max_drop"}
    broken = tmp_path / "gate.toml"
    broken.write_text("min_test_accuracy = 0.9\n")
    with pytest.raises(BuildError, match=r"gate\.toml"):
        quality.load_config(broken)


# --- the build job ------------------------------------------------------------------------------


def _train_on_shuffled_labels(service_dir: Path, model_dir: Path, cache_dir: Path, **_: object) -> dict:
    """The service's own training, on labels shuffled with a fixed seed: a model that learned nothing."""
    import sklearn.datasets
    from ml_inference.train import train

    real_load_iris = sklearn.datasets.load_iris

    def shuffled_iris():
        iris = real_load_iris()
        iris.target = np.random.default_rng(7).permutation(iris.target)
        return iris

    sklearn.datasets.load_iris = shuffled_iris
    try:
        train(model_dir)
    finally:
        sklearn.datasets.load_iris = real_load_iris
    return json.loads((model_dir / CARD_FILE).read_text())


def _stop_while_training(service_dir: Path, model_dir: Path, cache_dir: Path, **_: object) -> dict:
    shutil.rmtree(model_dir, ignore_errors=True)  # as training does first
    raise BuildError("training stopped")


def _train_a_poor_model(service_dir: Path, model_dir: Path, cache_dir: Path, **_: object) -> dict:
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / CARD_FILE).write_text(json.dumps(card(0.5, "0.1.0+ungated")))
    return card(0.5, "0.1.0+ungated")


def _unreadable_thresholds() -> dict[str, float]:
    raise BuildError("cannot read the quality gate's thresholds")


def test_a_build_that_stops_before_its_gate_keeps_the_baseline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Else the next build, with no previous model, is held to the floor alone.
    monkeypatch.setenv("PIPELINE_ARTIFACTS_DIR", str(tmp_path))
    monkeypatch.setenv("DOCKER_HOST", DEAD_ENGINE)
    build_dir = tmp_path / "build-output"
    plant_previous(build_dir, 1.0, "0.1.0+better")
    monkeypatch.setattr(build_job, "train_model", _stop_while_training)
    assert build_job.main([]) == 1
    baseline = quality.previous_model(build_dir, RECORD)
    assert baseline is not None and (baseline["version"], baseline["test_accuracy"]) == ("0.1.0+better", 1.0)


def test_a_model_whose_build_never_reached_the_gate_is_never_deployed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_ARTIFACTS_DIR", str(tmp_path))
    monkeypatch.setenv("DOCKER_HOST", DEAD_ENGINE)
    plant_previous(tmp_path / "build-output", 0.97, "0.1.0+good")
    monkeypatch.setattr(build_job, "train_model", _train_a_poor_model)
    monkeypatch.setattr(quality, "load_config", _unreadable_thresholds)
    assert build_job.main([]) == 1
    with pytest.raises(SystemExit, match="quality gate"):
        release_from_build(RunContext.from_env())
    baseline = quality.previous_model(tmp_path / "build-output", RECORD)
    assert baseline is not None and baseline["version"] == "0.1.0+good"


@pytest.mark.slow
def test_a_model_trained_on_shuffled_labels_fails_the_build_and_the_record_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PIPELINE_ARTIFACTS_DIR", str(tmp_path))
    monkeypatch.setenv("DOCKER_HOST", DEAD_ENGINE)
    monkeypatch.setattr(build_job, "train_model", _train_on_shuffled_labels)
    with caplog.at_level(logging.ERROR, logger="build"):
        assert build_job.main([]) == 1
    record = json.loads((tmp_path / "build-output" / RECORD).read_text())
    gate = record["quality_gate"]
    assert gate["verdict"] == "failed" and gate["test_accuracy"] < CONFIG["min_test_accuracy"]
    assert f"held-out accuracy {gate['test_accuracy']:.3f} is below the floor 0.900" in caplog.text
    assert record["image"]["tag"] is None  # no image was built for a rejected model


@pytest.mark.slow
def test_the_build_fails_when_its_model_is_worse_than_the_previous_builds(tmp_path: Path) -> None:
    build_dir = tmp_path / "build-output"
    plant_previous(build_dir, 1.0, "0.1.0+better")
    run = run_build(tmp_path)
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    gate = json.loads((build_dir / RECORD).read_text())["quality_gate"]
    assert gate["verdict"] == "failed"
    assert gate["previous"]["version"] == "0.1.0+better" and gate["previous"]["test_accuracy"] == 1.0
    assert (
        f"accuracy {gate['test_accuracy']:.3f} is more than 0.020 below the previous model's 1.000"
        in run.stdout
    )


@pytest.mark.slow
def test_a_failed_build_leaves_no_file_of_an_earlier_build_beside_its_record(tmp_path: Path) -> None:
    """`nox -s build` writes where an earlier build wrote: its SBOM must not pass for this one's."""
    build_dir = tmp_path / "build-output"
    plant_previous(build_dir, 1.0, "0.1.0+better")
    earlier = {"sbom.cdx.json": "{}", "verification.json": "[]", "verify-container.log": "ok\n"}
    for name, text in earlier.items():
        (build_dir / name).write_text(text)
    run = run_build(tmp_path)
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    assert json.loads((build_dir / RECORD).read_text())["sbom"] is None
    assert not [name for name in earlier if (build_dir / name).exists()]


@pytest.mark.slow
def test_a_rebuild_of_the_same_model_passes_against_itself(tmp_path: Path) -> None:
    first = run_build(tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert json.loads((tmp_path / "build-output" / RECORD).read_text())["quality_gate"]["previous"] is None
    second = run_build(tmp_path)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    gate = json.loads((tmp_path / "build-output" / RECORD).read_text())["quality_gate"]
    assert gate["verdict"] == "passed" and gate["previous"]["test_accuracy"] == gate["test_accuracy"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("options", "last_run_recorded"),
    [({}, True), ({"only": ("build",)}, True), ({"rerun_failed": True}, True), ({}, False)],
    ids=["fresh-run", "only-build", "rerun-failed", "after-nox-s-build"],
)
def test_a_pipeline_run_gates_its_model_against_the_last_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, options: dict, last_run_recorded: bool
) -> None:
    """invoke pipeline empties the build's folder before the build runs: the baseline must outlive that,
    whichever way the run was started and whether or not the last build ran in a recorded run."""
    artifacts = tmp_path / "artifacts"
    plant_previous(artifacts / "build-output", 1.0, "0.1.0+better")
    if last_run_recorded:
        build = {"status": "failure", "needs": []}
        (artifacts / "pipeline-run.json").write_text(
            json.dumps({"run_id": "the-last-run", "jobs": {"build": build}})
        )
    monkeypatch.setenv("DOCKER_HOST", DEAD_ENGINE)
    runner = Runner(
        RunOptions(artifacts_dir=artifacts, **options),
        jobs=(JOBS_BY_NAME["build"],),
        cwd=REPO,
        progress=Progress(io.StringIO()),
    )
    record = runner.run()
    log = (artifacts / "logs/build.log").read_text()
    assert record["jobs"]["build"]["status"] == "failure", log[-3000:]
    gate = json.loads((artifacts / "build-output" / RECORD).read_text())["quality_gate"]
    assert gate["verdict"] == "failed"
    assert gate["previous"]["version"] == "0.1.0+better" and gate["previous"]["test_accuracy"] == 1.0
