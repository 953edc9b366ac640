"""The drift driver's verdicts on paths the real local target cannot produce on demand.

The controllers here are fakes, named as such: a real reconciler always notices a drift, so
"never detected" and "the drift could not be caused" need a stand-in. The real passes and the
real "detected but not healed" are in test_demo_job.py, against the local target.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.checks.drift import Clock, run_drift
from pipeline.release import ControllerStatus, Drift

SYNCED = ControllerStatus("Synced", "Healthy")


class FakeController:
    """A fake environment whose controller reports `statuses` in turn, then Synced and Healthy forever."""

    name = "fake"
    endpoint = "http://127.0.0.1:9"
    prometheus_url = None

    def __init__(self, statuses: list[ControllerStatus] | None = None) -> None:
        self.statuses = statuses or []
        self.prometheus_selector: dict[str, str] = {}

    def status(self) -> ControllerStatus:
        return self.statuses.pop(0) if self.statuses else SYNCED

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
    result = run_drift(env, Drift("seen", "noticed and healed", lambda: None), Clock(), 5)
    assert result.passed
    timeline = result.to_json()
    assert 0 <= timeline["time_to_detect_seconds"] < timeline["time_to_heal_seconds"] < 1
