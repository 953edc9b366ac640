"""Benchmark how fast the local reconciler detects and heals each drift (not a test: it times).

Usage:  python scripts/bench_heal.py [--runs 5] [--rate 20]      (or: nox -s bench -- heal)
Needs:  requirements/deploy.txt, httpx and the service (the bench session installs them).

The load and the drift loop are the demo's own (pipeline.checks.steady_load, pipeline.checks.drift).

Trains a model into a temporary directory, brings up one environment (under a temporary state
root, so it never touches .pipeline/), and causes each drift `--runs` times while a steady
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
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere: import the engine

from pipeline.checks.drift import Clock, run_drift
from pipeline.checks.steady_load import SteadyLoad
from pipeline.context import RunContext
from pipeline.jobs._environment import release_from_build
from pipeline.release import Drift, Environment
from pipeline.targets.local import LocalTarget

DRIFT_TIMEOUT = 60.0
#: Beyond the drifts' own bounds, how long the load may run at most.
LOAD_MARGIN_SECONDS = 120


def time_drift(env: Environment, drift: Drift, load: SteadyLoad) -> tuple[float, float, int, int]:
    """Seconds to detect and to heal one drift (the demo's own loop), and the requests sent and failed."""
    sent, failed = load.requests, load.failure_count
    result = run_drift(env, drift, Clock(), DRIFT_TIMEOUT)
    if not result.passed:
        raise SystemExit(f"{drift.name}: {result.error}")
    timing = result.to_json()
    return (
        timing["time_to_detect_seconds"],
        timing["time_to_heal_seconds"],
        load.requests - sent,
        load.failure_count - failed,
    )


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
        target = LocalTarget(state_root=Path(scratch) / "state")
        env = target.up("heal-benchmark", release_from_build(context), context)
        up_seconds = time.monotonic() - started
        results: dict[str, list[tuple[float, float, int, int]]] = {}
        try:
            max_seconds = args.runs * 3 * DRIFT_TIMEOUT + LOAD_MARGIN_SECONDS
            with SteadyLoad(
                env.endpoint, rate=args.rate, max_seconds=max_seconds, max_requests=10**6
            ) as load:
                for _ in range(args.runs):
                    for drift in env.drifts():
                        results.setdefault(drift.name, []).append(time_drift(env, drift, load))
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
