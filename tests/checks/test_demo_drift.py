"""The drift driver's verdicts on paths the real local target cannot produce on demand.

The controllers here are fakes, named as such: a real reconciler always notices a drift, so
"never detected" and "the drift could not be caused" need a stand-in. The real passes and the
real "detected but not healed" are in test_demo_job.py, against the local target.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from pipeline.checks.drift import Clock, run_drift
from pipeline.release import ControllerStatus, Drift, Observation
from tests.helpers import written_as_records_write_times

SYNCED = ControllerStatus("Synced", "Healthy")


class FakeController:
    """A fake environment whose controller reports `statuses` in turn, then Synced and Healthy forever."""

    name = "fake"
    endpoint = "http://127.0.0.1:9"
    prometheus_url = None

    def __init__(
        self, statuses: list[ControllerStatus] | None = None, observations: list[Observation] | None = None
    ) -> None:
        self.statuses = statuses or []
        self.observations = observations or []
        self.prometheus_selector: dict[str, str] = {}

    def status(self) -> ControllerStatus:
        return self.statuses.pop(0) if self.statuses else SYNCED

    def observed(self) -> Observation:
        """The fake's live state: `observations` in turn, then the last one forever."""
        if not self.observations:
            raise RuntimeError("nothing to observe")
        return self.observations.pop(0) if len(self.observations) > 1 else self.observations[0]

    def replica_urls(self) -> list[str]:
        return []

    def drifts(self) -> list[Drift]:
        return []

    def save_state(self, directory: Path) -> None:
        pass

    def down(self) -> None:
        pass


def test_a_drift_the_controller_never_reports_fails_as_not_detected() -> None:
    result = run_drift(FakeController(), Drift("blind", "nothing notices", lambda: None), Clock(), 0.5)
    assert not result.passed
    assert result.drift_at is not None and result.detected_at is None
    assert result.error == "not detected within 0.5 s"
    assert result.to_json()["time_to_detect_seconds"] is None


def test_a_drift_that_cannot_be_caused_fails_with_the_reason() -> None:
    def refuse() -> None:
        raise RuntimeError("no ready replica to drift")

    result = run_drift(FakeController(), Drift("broken", "cannot happen", refuse), Clock(), 0.5)
    assert not result.passed
    assert result.error == "causing the drift failed: RuntimeError: no ready replica to drift"


def test_detection_and_healing_are_timed_from_the_drift() -> None:
    # Converged before the drift, then two polls OutOfSync, then converged again.
    env = FakeController(
        [SYNCED, ControllerStatus("OutOfSync", "Progressing"), ControllerStatus("OutOfSync", "Healthy")]
    )
    result = run_drift(env, Drift("seen", "noticed and healed", lambda: None), SteppingClock(), 5)
    assert result.passed
    timeline = result.to_json()
    # Read at the drift (1 s), at its detection (2 s) and at its heal (3 s): both times count from the drift.
    assert (timeline["time_to_detect_seconds"], timeline["time_to_heal_seconds"]) == (1.0, 2.0)


def test_the_drift_times_are_written_as_every_record_writes_times() -> None:
    env = FakeController([SYNCED, ControllerStatus("OutOfSync", "Healthy")])
    timeline = run_drift(env, Drift("seen", "noticed and healed", lambda: None), Clock(), 5).to_json()
    times = [timeline[key] for key in ("drift_at", "detected_at", "healed_at")]
    assert all(map(written_as_records_write_times, times)), times


class SteppingClock(Clock):
    """Each reading one second after the last: the times count readings, whatever the machine's speed."""

    readings = 0

    def now(self) -> datetime:
        self.readings += 1
        return self.started_at + timedelta(seconds=self.readings)


class HealsJustTooLate(FakeController):
    """A fake controller that reports the drift until the driver has stopped waiting for the heal."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0  # of the live state: before the drift, just after it, once the wait is over

    def status(self) -> ControllerStatus:
        return ControllerStatus("OutOfSync", "Healthy") if self.reads in (1, 2) else SYNCED

    def observed(self) -> Observation:
        self.reads += 1
        raise RuntimeError("nothing to observe")


def test_a_heal_that_comes_too_late_is_reported_with_the_status_seen_while_waiting() -> None:
    result = run_drift(HealsJustTooLate(), Drift("late", "healed too late", lambda: None), Clock(), 0.3)
    assert not result.passed
    assert result.error == "detected but not healed within 0.3 s (still OutOfSync, Healthy)"


def test_the_live_replicas_and_the_checked_setting_are_recorded_before_during_and_after() -> None:
    env = FakeController(
        [SYNCED, ControllerStatus("OutOfSync", "Progressing")],
        [
            Observation(replicas=3, ready_replicas=3, config={"ML_INFERENCE_MAX_BATCH": ["1000"]}),
            Observation(replicas=4, ready_replicas=3, config={"ML_INFERENCE_MAX_BATCH": ["10", "1000"]}),
            Observation(replicas=3, ready_replicas=3, config={"ML_INFERENCE_MAX_BATCH": ["1000"]}),
        ],
    )
    timeline = run_drift(env, Drift("seen", "noticed and healed", lambda: None), Clock(), 5).to_json()
    assert timeline["replicas"] == {"before": 3, "during": 4, "after": 3}
    assert timeline["ready_replicas"] == {"before": 3, "during": 3, "after": 3}
    assert timeline["config"] == {
        "ML_INFERENCE_MAX_BATCH": {"before": ["1000"], "during": ["10", "1000"], "after": ["1000"]}
    }


def test_a_live_state_that_cannot_be_read_leaves_the_counts_empty_and_the_drift_timed() -> None:
    result = run_drift(
        FakeController([SYNCED, ControllerStatus("OutOfSync", "Healthy")]),
        Drift("seen", "", lambda: None),
        Clock(),
        5,
    )
    assert result.passed
    timeline = result.to_json()
    assert timeline["replicas"] == {"before": None, "during": None, "after": None}
    assert timeline["config"] == {}


def test_on_kubernetes_the_live_state_is_the_deployments_replicas_ready_pods_and_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pipeline.targets.kube.environment import DRIFTED_SETTING, KubeEnvironment

    env = KubeEnvironment(
        name="demo",
        namespace="ml-inference-demo",
        application="ml-inference-demo",
        kubectl=("kubectl",),
        context="kind-ml-gitops",
        desired=[],
        target="kind",
    )
    deployment = {
        "spec": {
            "replicas": 5,
            "template": {
                "spec": {
                    "containers": [
                        {"name": "ml-inference", "env": [{"name": DRIFTED_SETTING, "value": "debug"}]}
                    ]
                }
            },
        },
        "status": {"replicas": 4, "readyReplicas": 3},
    }
    asked = []
    monkeypatch.setattr(env, "_kubectl_json", lambda *args: asked.append(args) or deployment)
    assert env.observed() == Observation(replicas=5, ready_replicas=3, config={DRIFTED_SETTING: ["debug"]})
    assert asked == [("get", "deployment", "ml-inference", "-n", "ml-inference-demo")]
