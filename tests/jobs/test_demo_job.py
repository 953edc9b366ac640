"""The demo job against the real local target: it passes when the reconciler heals, fails when it cannot.

The environment is the local target's own (real replicas, reconciler, Prometheus when installed);
only its state directory is a temporary one, so the test never touches a developer's environments.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.checks.drift import HOLD_SECONDS
from pipeline.jobs import demo
from pipeline.targets.local.target import LocalTarget
from tests.helpers import local_job_artifacts, train_model, written_as_records_write_times

pytestmark = pytest.mark.slow
#: Drifts heal in about a second here; a failing drift waits this long before the job gives up.
HEAL_TIMEOUT = "8"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_model(tmp_path_factory)


@pytest.fixture
def artifacts(model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return local_job_artifacts(model_dir, tmp_path, monkeypatch)


def _timeline(artifacts: Path) -> dict:
    return json.loads((artifacts / "demo-artifacts" / "timeline.json").read_text())


def test_demo_passes_when_every_drift_is_detected_and_healed(artifacts: Path) -> None:
    assert demo.main(["--heal-timeout", HEAL_TIMEOUT]) == 0

    timeline = _timeline(artifacts)
    assert timeline["passed"] and timeline["target"] == "local"
    assert [d["name"] for d in timeline["drifts"]] == ["replica-count", "replica-killed", "config-drift"]
    for drift in timeline["drifts"]:
        assert drift["passed"], drift
        assert drift["drift_at"] < drift["detected_at"] < drift["healed_at"]
        assert 0 < drift["time_to_detect_seconds"] < drift["time_to_heal_seconds"] < float(HEAL_TIMEOUT)
    assert timeline["verification"]["passed"]
    # The final check is a timed step too: after the last heal, holding converged for HOLD_SECONDS.
    verification = timeline["verification"]
    assert verification["started_at"] >= timeline["drifts"][-1]["healed_at"]
    assert verification["seconds"] >= HOLD_SECONDS
    assert timeline["load"]["requests"] > 0
    times = [timeline["started_at"], timeline["finished_at"], verification["started_at"]]
    times += [drift[key] for drift in timeline["drifts"] for key in ("drift_at", "detected_at", "healed_at")]
    assert all(map(written_as_records_write_times, times)), times
    counts = {d["name"]: d["replicas"] for d in timeline["drifts"]}
    git = counts["replica-count"]["before"]
    assert all(c["before"] == c["after"] == git for c in counts.values()), counts
    assert counts["replica-count"]["during"] == git + 1, "the extra replica started by hand"
    checked = {d["name"]: d["config"]["ML_INFERENCE_MAX_BATCH"] for d in timeline["drifts"]}
    drifted = checked["config-drift"]
    assert len(drifted["during"]) == 2 and drifted["before"] == drifted["after"]
    assert set(drifted["before"]) < set(drifted["during"])
    saved = artifacts / "demo-artifacts"
    assert (saved / "reconciler-history.jsonl").stat().st_size > 0
    assert (saved / "events.jsonl").stat().st_size > 0
    outputs = json.loads((saved / "outputs.json").read_text())
    assert outputs["passed"] == "true" and outputs["drifts"] == "3"


def test_demo_fails_when_healing_is_disabled(
    artifacts: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PIPELINE_RECONCILER_HEAL", "0")
    assert demo.main(["--heal-timeout", "3"]) == 1
    said = capsys.readouterr().out
    assert "None" not in said and "ControllerStatus(" not in said, "a verdict reads as words, not reprs"
    assert "not healed" in said

    timeline = _timeline(artifacts)
    assert not timeline["passed"]
    first = timeline["drifts"][0]
    assert first["detected_at"] is not None, "the reconciler still reports drift without healing it"
    assert first["healed_at"] is None and not first["passed"]
    assert "not healed" in first["error"] and "ControllerStatus(" not in first["error"]
    assert not timeline["verification"]["passed"]
    assert (artifacts / "demo-artifacts" / "events.jsonl").exists(), "a failed demo keeps its artifacts"
    for drift in timeline["drifts"]:  # the closing lines say why each drift failed, as the timeline does
        assert f"demo: {drift['name']}: FAILED, {drift['error']}" in said


def test_dry_run_prints_the_plan_and_brings_nothing_up(
    artifacts: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PIPELINE_DRY_RUN", "1")
    monkeypatch.setattr(LocalTarget, "up", lambda *args: pytest.fail("a dry run brought an environment up"))
    assert demo.main([]) == 0
    assert "dry run" in capsys.readouterr().out
