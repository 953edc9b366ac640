"""Test job: API suite, Locust load with thresholds, and metrics verification, on its own environment.

`nox -s test -- --users 50 --duration 60` (or PIPELINE_LOAD_* variables) tunes the load. The job
brings up an environment of its own ("test", same desired state as deploy's) so the demo's drift
never disturbs the load. Every part runs and writes its artifact even when an earlier one failed;
the job fails when any part failed. Artifacts, in test-results/: api-junit.xml, load/ (Locust's
CSVs, stats history, HTML report, log), load-summary.json, metrics-verification.json and
environment/: the environment's state when the checks ended, scrubbed (its controller's status,
events, and each replica's status and log; pods, events and container logs on Kubernetes).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pipeline.artifacts import job_dir, write_json_atomic, write_outputs
from pipeline.checks import metrics
from pipeline.checks.api import run_api_suite
from pipeline.checks.load import (
    DEFAULT_THRESHOLDS,
    LoadSettings,
    LoadStopped,
    Thresholds,
    locust_command,
    run_load,
)
from pipeline.context import RunContext
from pipeline.contracts import LoadSummary, MetricsVerification, encode
from pipeline.jobs._environment import run_on_environment
from pipeline.jobs._main import exit_with
from pipeline.release import Environment

JOB = "test"
Result = TypeVar("Result")


def parse_args(argv: list[str] | None) -> tuple[LoadSettings, Thresholds]:
    """The load and its thresholds, from the flags over the PIPELINE_LOAD_* variables; refused if unusable."""
    parser = argparse.ArgumentParser(prog="nox -s test --", description=__doc__.splitlines()[0])
    try:
        defaults = LoadSettings.from_env()
    except ValueError as error:
        parser.error(str(error))
    for flag, kind, default, meaning in (
        ("--users", int, defaults.users, "concurrent Locust users"),
        ("--spawn-rate", float, defaults.spawn_rate, "users started per second"),
        ("--duration", int, defaults.duration_seconds, "load time in seconds"),
        ("--user-rps", float, defaults.user_rps, "requests/s per user; 0: no wait"),
        ("--max-requests", int, defaults.max_requests, "hard cap on requests"),
    ):
        parser.add_argument(flag, type=kind, default=default, help=meaning)
    parser.add_argument(
        "--thresholds",
        type=Path,
        default=Path(os.environ.get("PIPELINE_LOAD_THRESHOLDS") or DEFAULT_THRESHOLDS),
        help="TOML file of pass/fail thresholds",
    )
    args = parser.parse_args(argv)
    try:
        load = LoadSettings(args.users, args.spawn_rate, args.duration, args.user_rps, args.max_requests)
        return load, Thresholds.load(args.thresholds)
    except (OSError, ValueError) as error:  # a broken TOML file is a ValueError too
        parser.error(str(error))


def _guarded(part: str, run: Callable[[], Result], fallback: Result) -> Result:
    """Run one part of the job; a crash is reported and becomes `fallback` so later parts still run."""
    try:
        return run()
    except Exception as error:
        print(f"test: {part} crashed: {type(error).__name__}: {error}", file=sys.stderr)
        return fallback


def _metrics_source(env: Environment) -> metrics.MetricsSource:
    if env.prometheus_url:
        return metrics.PrometheusSource(env.prometheus_url, env.prometheus_selector)
    print(
        "test: this environment runs no Prometheus; metrics are scraped from each replica's /metrics directly"
    )
    return metrics.DirectSource(env.replica_urls)


def run_checks(
    env: Environment, settings: LoadSettings, thresholds: Thresholds, out: Path, target: str
) -> bool:
    """The three parts against `env` (on `target`), artifacts into `out`; True when all passed."""
    print(f"test: API suite against {env.endpoint}")
    api_passed = _guarded("API suite", lambda: run_api_suite(env.endpoint, out / "api-junit.xml"), False)

    source = _metrics_source(env)
    before = _guarded("metrics baseline", lambda: metrics.baseline(env.replica_urls), None)

    def save_load(summary: dict[str, Any]) -> None:
        write_json_atomic(out / "load-summary.json", encode(LoadSummary, {**summary, "target": target}))

    failed_load: dict[str, Any] = {"passed": False, "requests": 0, "requests_by_route": {}, "history": []}
    try:
        summary = _guarded(
            "load", lambda: run_load(env.endpoint, settings, thresholds, out / "load"), failed_load
        )
    except LoadStopped as stopped:  # the job is being stopped: keep what the load measured
        save_load(stopped.summary)
        raise
    load_ended = time.time()
    save_load(summary)
    print(
        f"test: load {'passed' if summary['passed'] else 'FAILED'}: {summary['requests']} requests, "
        f"p99 {summary.get('p99_ms')} ms, failure ratio {summary.get('failure_ratio')}"
        + "".join(f"\n  - {violation}" for violation in summary.get("violations", []))
    )

    def verify() -> dict[str, Any]:
        if before is None:
            raise RuntimeError("no baseline was taken before the load")
        return metrics.verify(
            source, before, summary["requests_by_route"], load_ended, len(env.replica_urls())
        )

    crashed = {"name": "metrics verification ran", "passed": False, "detail": "crashed; see the job log"}
    failed = {"mode": source.mode, "prometheus_url": source.url, "checks": [crashed]}
    verification = _guarded("metrics verification", verify, encode(MetricsVerification, failed))
    write_json_atomic(out / "metrics-verification.json", encode(MetricsVerification, verification))
    for check in verification["checks"]:
        outcome = "ok" if check["passed"] else "FAILED"
        print(f"test: metrics ({source.mode}): {outcome} {check['name']}: {check['detail']}")

    write_outputs(
        JOB,
        {
            "api_passed": str(api_passed).lower(),
            "load_passed": str(summary["passed"]).lower(),
            "metrics_passed": str(verification["passed"]).lower(),
            "requests": str(summary["requests"]),
            "p99_ms": str(summary.get("p99_ms") or ""),
        },
    )
    return bool(api_passed and summary["passed"] and verification["passed"])


def main(argv: list[str] | None = None) -> int:
    settings, thresholds = parse_args(argv)
    context = RunContext.from_env()
    out = job_dir(JOB, context, fresh=True)
    dry_run = "\n".join(
        [
            f"test (dry run): bring up environment 'test' on target {context.target}; against its endpoint:",
            "  pytest pipeline/checks/api --junitxml test-results/api-junit.xml",
            "  " + " ".join(locust_command("<endpoint>", settings, out / "load")),
            "  metrics verification: counts before the load from each replica's /metrics, after it via",
            "  Prometheus' HTTP API (or each replica's /metrics directly when it runs no Prometheus)",
            "  then, passed or not: save the environment's state into test-results/environment/",
            f"  pass/fail thresholds: {thresholds}",
        ]
    )

    def checks(env: Environment) -> bool:
        try:
            passed = run_checks(env, settings, thresholds, out, context.target)
        finally:
            # What the environment looked like when the checks ended, passed or not.
            _guarded("saving the environment's state", lambda: env.save_state(out / "environment"), None)
        print(f"test: {'passed' if passed else 'FAILED'}; artifacts in {out}")
        return passed

    return run_on_environment(JOB, context, dry_run=dry_run, body=checks)


if __name__ == "__main__":
    exit_with(JOB, main)
