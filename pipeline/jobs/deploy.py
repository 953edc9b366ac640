"""Deploy job: bring up the "deploy" environment from Git's desired state and save its state.

Target-agnostic: the target (local processes, or kind/minikube with Argo CD) brings the
environment up and returns once its GitOps controller reports Synced and Healthy; the job then
waits until the environment's Prometheus scrapes every replica. The environment's state
(rendered manifests, process or pod table, controller status and events, Prometheus targets;
never a secret) goes to cluster-state/, and the endpoint to the job's outputs. The environment
is stopped at the end unless the run keeps it (PIPELINE_KEEP=1, `invoke pipeline --keep`); test
and demo bring up their own, isolated ones.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import httpx

from pipeline.artifacts import job_dir, write_outputs
from pipeline.checks import metrics
from pipeline.context import RunContext
from pipeline.jobs._environment import run_on_environment
from pipeline.jobs._main import exit_with
from pipeline.release import Environment

JOB = "deploy"


def prometheus_scrapes(env: Environment) -> bool:
    """Whether the environment's Prometheus (when it runs one) scrapes every replica; said either way."""
    if not env.prometheus_url:
        return True
    print("deploy: waiting for Prometheus to scrape every replica (it applies new targets every 5 s)")
    source = metrics.PrometheusSource(env.prometheus_url, env.prometheus_selector)
    try:
        up, detail = metrics.wait_until_scraping(source, len(env.replica_urls()))
    except httpx.HTTPError as error:
        up, detail = False, f"its HTTP API failed: {error}"
    print(f"deploy: Prometheus {'scrapes' if up else 'does NOT scrape'} every replica: {detail}")
    return up


def publish_state(env: Environment, out: Path, context: RunContext) -> bool:
    """Save `env`'s state into `out` and its endpoint and status into the job's outputs."""
    try:
        env.save_state(out)
        status = env.status()
        write_outputs(
            JOB,
            {
                "endpoint": env.endpoint,
                "environment": env.name,
                "prometheus_url": env.prometheus_url or "",
                "sync": status.sync,
                "health": status.health,
                "replicas": str(len(env.replica_urls())),
            },
            context,
        )
    except Exception as error:
        print(f"deploy: saving the state of '{env.name}' failed: {error}", file=sys.stderr)
        return False
    print(f"deploy: {env.name} is {status.sync} and {status.health} at {env.endpoint}; state in {out}")
    return True


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(
        prog="nox -s deploy --",
        description=__doc__.splitlines()[0],
        epilog="Settings come from the PIPELINE_* variables (docs/configuration.md).",
    ).parse_args(argv)
    context = RunContext.from_env()
    out = job_dir(JOB, context, fresh=True)
    dry_run = (
        f"deploy (dry run): bring up '{JOB}' on target {context.target} from gitops/, "
        f"wait until Synced and Healthy and Prometheus scrapes every replica, save its state into {out}"
        + ("" if context.keep else ", then stop it")
    )
    return run_on_environment(
        JOB,
        context,
        dry_run=dry_run,
        # Both run: the state is saved even when Prometheus does not scrape every replica.
        body=lambda env: all([prometheus_scrapes(env), publish_state(env, out, context)]),
    )


if __name__ == "__main__":
    exit_with(JOB, main)
