"""The demo's drift timeline: cause each drift by hand, time its detection and its healing.

Only the Environment protocol is used: `drifts()` says what to break and `status()` is the GitOps
controller's view (Argo CD's Application status, or the local reconciler's). A drift is detected
when the controller stops reporting Synced + Healthy, and healed when it reports both again. A
drift that is not both detected and healed within the bound fails; so does the final check that
the live state is Git's again. Around each drift the environment's live state (`observed()`:
replica counts and the setting the config drift changes) is read before it, just after it was
caused (a controller may heal in the very observation that detects it) and once it is healed, so
the timeline shows what the drift changed and that it came back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from pipeline import settings
from pipeline.checks import tally
from pipeline.release import ControllerStatus, Drift, Environment, Observation
from pipeline.samples import predict_body
from pipeline.timestamps import iso

POLL_SECONDS = 0.1
#: How long the controller may take to heal one drift before the demo calls it failed.
HEAL_TIMEOUT_SECONDS = settings.number("PIPELINE_DEMO_HEAL_TIMEOUT", float, {})
#: The final check: the live state must stay converged this long, not just flicker through it.
HOLD_SECONDS = 3.0


class Clock:
    """Wall-clock times for the timeline, and every printed step prefixed with the elapsed time."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.started_at = datetime.now(UTC)

    def now(self) -> datetime:
        return self.started_at + timedelta(seconds=time.monotonic() - self.started)

    def say(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:7.2f}s] {message}", flush=True)


@dataclass
class DriftResult:
    name: str
    description: str
    drift_at: datetime | None = None
    detected_at: datetime | None = None
    healed_at: datetime | None = None
    error: str | None = None
    #: The live state before the drift, just after it was caused, and once healed (or the bound passed).
    before: Observation | None = None
    during: Observation | None = None
    after: Observation | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and self.detected_at is not None and self.healed_at is not None

    def to_json(self) -> dict[str, Any]:
        def since_drift(moment: datetime | None) -> float | None:
            if moment is None or self.drift_at is None:
                return None
            return round((moment - self.drift_at).total_seconds(), 3)

        seen = {"before": self.before, "during": self.during, "after": self.after}

        def moments(figure: Callable[[Observation], Any]) -> dict[str, Any]:
            return {moment: None if at is None else figure(at) for moment, at in seen.items()}

        settings = sorted({name for at in seen.values() if at is not None for name in at.config})
        return {
            "name": self.name,
            "description": self.description,
            "drift_at": self.drift_at and iso(self.drift_at),
            "detected_at": self.detected_at and iso(self.detected_at),
            "healed_at": self.healed_at and iso(self.healed_at),
            "time_to_detect_seconds": since_drift(self.detected_at),
            "time_to_heal_seconds": since_drift(self.healed_at),
            "passed": self.passed,
            "error": self.error,
            "replicas": moments(lambda at: at.replicas),
            "ready_replicas": moments(lambda at: at.ready_replicas),
            "config": {
                name: {moment: None if at is None else at.config.get(name) for moment, at in seen.items()}
                for name in settings
            },
        }


def _status(env: Environment) -> ControllerStatus | None:
    try:
        return env.status()
    except Exception:  # a status read racing a rewrite is retried on the next poll
        return None


def _observed(env: Environment) -> Observation | None:
    try:
        return env.observed()
    except Exception as error:  # the figures are for the record: their loss never fails a drift
        print(f"could not read the live state: {type(error).__name__}: {error}", flush=True)
        return None


def wait_converged(env: Environment, timeout: float) -> ControllerStatus | None:
    """Poll until Synced and Healthy; the last status seen when that never happened, else None."""
    deadline = time.monotonic() + timeout
    status = _status(env)
    while not (status and status.converged) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        status = _status(env)
    return None if status and status.converged else status


def run_drift(
    env: Environment, drift: Drift, clock: Clock, heal_timeout: float = HEAL_TIMEOUT_SECONDS
) -> DriftResult:
    """Cause `drift` on a converged environment and follow the controller's status until healed."""
    result = DriftResult(drift.name, drift.description)
    unconverged = wait_converged(env, heal_timeout)
    if unconverged:
        result.error = f"not Synced and Healthy before the drift ({unconverged}); drift not caused"
        clock.say(f"{drift.name}: {result.error}")
        return result
    clock.say(f"{drift.name}: {drift.description}")
    result.before = _observed(env)
    result.drift_at = clock.now()
    try:
        drift.cause()
    except Exception as error:
        result.error = f"causing the drift failed: {type(error).__name__}: {error}"
        clock.say(f"{drift.name}: {result.error}")
        return result
    # At once: a controller may heal in the very observation that detects the drift.
    result.during = _observed(env)
    deadline = time.monotonic() + heal_timeout
    seen: ControllerStatus | None = None
    while time.monotonic() < deadline:
        status = _status(env)
        seen = status or seen
        if status is not None and result.detected_at is None and not status.converged:
            result.detected_at = clock.now()
            clock.say(f"{drift.name}: detected ({status})")
        elif status is not None and result.detected_at is not None and status.converged:
            result.healed_at = clock.now()
            result.after = _observed(env)
            clock.say(f"{drift.name}: healed (Synced, Healthy)")
            return result
        time.sleep(POLL_SECONDS)
    result.after = _observed(env)
    result.error = (
        f"not detected within {heal_timeout:g} s"
        if result.detected_at is None
        else f"detected but not healed within {heal_timeout:g} s (still {seen})"
    )
    clock.say(f"{drift.name}: FAILED, {result.error}")
    return result


def verify_git_state(env: Environment, clock: Clock, timeout: float = HEAL_TIMEOUT_SECONDS) -> dict[str, Any]:
    """After the drifts: converged and staying so, every replica ready, and the endpoint answering."""
    checks: list[dict[str, Any]] = []
    started_at, started = clock.now(), time.monotonic()

    def check(name: str, passed: bool, detail: str) -> None:
        checks.append({"name": name, "passed": passed, "detail": detail})
        clock.say(f"verify: {name}: {'ok' if passed else 'FAILED'} ({detail})")

    unconverged = wait_converged(env, timeout)
    held_until = time.monotonic() + HOLD_SECONDS
    while unconverged is None and time.monotonic() < held_until:
        status = _status(env)
        if status is not None and not status.converged:
            unconverged = status
        time.sleep(POLL_SECONDS)
    check(
        "Synced and Healthy, and staying so",
        unconverged is None,
        f"held for {HOLD_SECONDS:g} s" if unconverged is None else f"saw {unconverged}",
    )
    replicas = env.replica_urls()
    ready = {url: _answers(f"{url}/ready") for url in replicas}
    check("every replica is ready", bool(ready) and all(ready.values()), tally(ready, "ready"))
    check("the endpoint answers /predict", _answers(f"{env.endpoint}/predict", predict=True), env.endpoint)
    return {
        "passed": all(item["passed"] for item in checks),
        "checks": checks,
        "started_at": iso(started_at),
        "seconds": round(time.monotonic() - started, 3),
    }


def _answers(url: str, *, predict: bool = False) -> bool:
    try:
        if predict:
            return httpx.post(url, json=predict_body(), timeout=5).status_code == 200
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False
