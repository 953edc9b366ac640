"""Demo job: drift the environment by hand, time the GitOps controller detecting and healing it.

On its own environment ("demo"), under a light steady load, each of the target's drifts is caused
in turn and followed through the controller's status; then the live state must be Git's again.
The job fails when any drift is not detected and healed within the bound, or that final check
fails. Artifacts, in demo-artifacts/: timeline.json (written after every drift), plus what the
environment's save_state gives (reconciler history, events). The report draws the timeline.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from pipeline import settings
from pipeline.artifacts import job_dir, write_json_atomic, write_outputs
from pipeline.checks.drift import Clock, run_drift, verify_git_state
from pipeline.checks.steady_load import SteadyLoad
from pipeline.context import RunContext
from pipeline.contracts import Timeline, encode
from pipeline.jobs._environment import run_on_environment
from pipeline.jobs._main import exit_with
from pipeline.release import Environment
from pipeline.timestamps import iso

JOB = "demo"
#: Beyond the drifts' own bounds, how long the background load may run at most.
LOAD_MARGIN_SECONDS = 120


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The flags over the PIPELINE_DEMO_* variables; a value the demo cannot use is refused."""
    parser = argparse.ArgumentParser(prog="nox -s demo --", description=__doc__.splitlines()[0])
    try:
        heal_timeout = settings.number("PIPELINE_DEMO_HEAL_TIMEOUT", float)
        load_rate = settings.number("PIPELINE_DEMO_LOAD_RATE", float)
    except ValueError as error:
        parser.error(str(error))
    parser.add_argument(
        "--heal-timeout",
        type=float,
        default=heal_timeout,
        help="seconds a drift may take to be detected and healed before it fails",
    )
    parser.add_argument(
        "--load-rate", type=float, default=load_rate, help="requests per second of the background load"
    )
    args = parser.parse_args(argv)
    for flag, value in (("--heal-timeout", args.heal_timeout), ("--load-rate", args.load_rate)):
        if not 0 < value < math.inf:
            variable = "PIPELINE_DEMO_" + flag[2:].replace("-", "_").upper()
            parser.error(f"{flag} (or {variable}) must be above 0 and finite, got {value:g}")
    return args


def run_demo(env: Environment, target: str, out: Path, heal_timeout: float, load_rate: float) -> bool:
    """Every drift, then the final check, under load; timeline.json kept current in `out`."""
    clock = Clock()
    drifts = env.drifts()
    # The rest of the Timeline contract is filled in as the demo goes (its defaults until then).
    timeline: dict[str, Any] = {
        "target": target,
        "environment": env.name,
        "started_at": iso(clock.started_at),
        "drifts": [],
    }
    clock.say(
        f"demo: {len(drifts)} drifts on '{env.name}' ({target}), {load_rate:g} req/s against {env.endpoint}"
    )
    max_seconds = len(drifts) * 2 * heal_timeout + LOAD_MARGIN_SECONDS
    with SteadyLoad(env.endpoint, rate=load_rate, max_seconds=max_seconds) as load:
        for drift in drifts:
            timeline["drifts"].append(run_drift(env, drift, clock, heal_timeout).to_json())
            timeline["load"] = load.summary()
            write_json_atomic(out / "timeline.json", encode(Timeline, timeline))
        timeline["verification"] = verify_git_state(env, clock, heal_timeout)
    timeline["load"] = load.summary()
    timeline["finished_at"] = iso(clock.now())
    timeline["passed"] = (
        bool(drifts)
        and all(drift["passed"] for drift in timeline["drifts"])
        and timeline["verification"]["passed"]
    )
    write_json_atomic(out / "timeline.json", encode(Timeline, timeline))
    for drift in timeline["drifts"]:
        detect, heal = drift["time_to_detect_seconds"], drift["time_to_heal_seconds"]
        ok = f"ok, detected after {detect} s, healed after {heal} s"
        clock.say(f"demo: {drift['name']}: {ok if drift['passed'] else 'FAILED, ' + str(drift['error'])}")
    load_summary = timeline["load"]
    clock.say(
        f"demo: background load {load_summary['requests']} requests, {load_summary['failures']} failed "
        f"(ratio {load_summary['failure_ratio']:.4f})"
    )
    healed = [drift["time_to_heal_seconds"] for drift in timeline["drifts"] if drift["passed"]]
    write_outputs(
        JOB,
        {
            "passed": str(timeline["passed"]).lower(),
            "drifts": str(len(drifts)),
            "max_time_to_heal_seconds": str(max(healed)) if healed else "",
            "load_failure_ratio": f"{load_summary['failure_ratio']:.4f}",
        },
    )
    return timeline["passed"]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    context = RunContext.from_env()
    out = job_dir(JOB, context, fresh=True)
    dry_run = (
        f"demo (dry run): bring up environment 'demo' on target {context.target}; under a "
        f"{args.load_rate:g} req/s load, cause each of its drifts and wait up to {args.heal_timeout:g} s "
        "for it to be detected (not Synced+Healthy) and healed (Synced+Healthy again); then check that "
        "the live state is Git's."
    )

    def demo(env: Environment) -> bool:
        try:
            passed = run_demo(env, context.target, out, args.heal_timeout, args.load_rate)
        finally:
            env.save_state(out)
        print(f"demo: {'passed' if passed else 'FAILED'}; artifacts in {out}")
        return passed

    return run_on_environment(JOB, context, dry_run=dry_run, body=demo)


if __name__ == "__main__":
    exit_with(JOB, main)
