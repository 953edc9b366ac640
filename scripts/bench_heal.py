"""Benchmark how fast the local reconciler detects and heals each drift (not a test: it times).

Usage:  python scripts/bench_heal.py [--runs 5] [--rate 20]      (or: nox -s bench -- heal)
Needs:  requirements/deploy.txt, httpx and the service (the bench session installs them).

Trains a model into a temporary directory, brings up one environment (under a temporary state
root, so it never touches .pipeline/), and causes each drift `--runs` times while a sequential
load of `--rate` requests/s runs against the endpoint. Prints a Markdown table: time to detect
(Synced+Healthy lost) and to heal (Synced+Healthy again), median and max, and the requests that
failed during the drifts.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere: import the engine

from pipeline.context import RunContext
from pipeline.samples import predict_body
from pipeline.targets.local import LocalTarget
from pipeline.targets.local.environment import LocalEnvironment

PREDICT_BODY = predict_body()
POLL_SECONDS = 0.02
SETTLE_SECONDS = 1.0
DRIFT_TIMEOUT = 60.0


class Load:
    """A sequential load on new connections, counting answers other than 200."""

    def __init__(self, endpoint: str, rate: float) -> None:
        self.endpoint, self.interval = endpoint, 1 / rate
        self.sent = self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                ok = httpx.post(f"{self.endpoint}/predict", json=PREDICT_BODY, timeout=5).status_code == 200
            except httpx.HTTPError:
                ok = False
            self.sent += 1
            self.failed += not ok

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def time_drift(env: LocalEnvironment, cause, load: Load) -> tuple[float, float, int, int]:
    """Seconds to detect and to heal one drift, and the requests sent and failed meanwhile."""
    deadline = time.monotonic() + DRIFT_TIMEOUT
    while not env.status().converged and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    time.sleep(SETTLE_SECONDS)
    sent, failed = load.sent, load.failed
    started = time.monotonic()
    cause()
    detected = None
    while time.monotonic() < started + DRIFT_TIMEOUT:
        converged = env.status().converged
        if detected is None and not converged:
            detected = time.monotonic() - started
        if detected is not None and converged:
            return detected, time.monotonic() - started, load.sent - sent, load.failed - failed
        time.sleep(POLL_SECONDS)
    raise SystemExit(f"a drift was not healed within {DRIFT_TIMEOUT:g}s; see {env.state_dir}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="times each drift is caused")
    parser.add_argument("--rate", type=float, default=20, help="requests per second of the load")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="heal-benchmark-") as scratch:
        artifacts = Path(scratch) / "artifacts"
        model = artifacts / "build-output" / "model"
        subprocess.run([sys.executable, "-m", "ml_inference", "train", "--out", str(model)], check=True)
        context = RunContext("local", "full", artifacts, "heal-benchmark", dry_run=False, keep=False)
        started = time.monotonic()
        env = LocalTarget(state_root=Path(scratch) / "state").up("heal-benchmark", context)
        up_seconds = time.monotonic() - started
        results: dict[str, list[tuple[float, float, int, int]]] = {}
        try:
            with Load(env.endpoint, args.rate) as load:
                for _ in range(args.runs):
                    for drift in env.drifts():
                        results.setdefault(drift.name, []).append(time_drift(env, drift.cause, load))
        finally:
            env.down()
    print(f"\nup() until Synced, Healthy and scraped: {up_seconds:.1f} s\n")
    print("| drift | runs | detect median / max (s) | heal median / max (s) | failed requests |")
    print("|---|---|---|---|---|")
    for name, rows in results.items():
        detect, heal = [r[0] for r in rows], [r[1] for r in rows]
        print(
            f"| {name} | {len(rows)} | {statistics.median(detect):.2f} / {max(detect):.2f} "
            f"| {statistics.median(heal):.2f} / {max(heal):.2f} "
            f"| {sum(r[3] for r in rows)} of {sum(r[2] for r in rows)} |"
        )


if __name__ == "__main__":
    main()
