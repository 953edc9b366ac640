"""Deployment targets: where deploy, test and demo bring the service up.

`local` runs replicas as processes behind one endpoint with a small reconciler standing in for
Argo CD; `kind` and `minikube` are real Kubernetes with Argo CD. Jobs talk to a target only
through the two protocols below, so the test suite, the load and the drift timeline are shared.

Status values mirror Argo CD's: sync is "Synced" or "OutOfSync"; health is "Healthy",
"Progressing", "Degraded" or "Missing".
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pipeline.context import RunContext


@dataclass(frozen=True)
class Status:
    sync: str
    health: str

    @property
    def converged(self) -> bool:
        return self.sync == "Synced" and self.health == "Healthy"


@dataclass(frozen=True)
class Drift:
    """A change made by hand, outside Git, that the GitOps controller must undo."""

    name: str
    description: str
    cause: Callable[[], None]


class Environment(Protocol):
    """One deployed copy of the service (a namespace on Kubernetes, a process group locally)."""

    name: str
    #: Base URL of the single load-balanced endpoint, e.g. "http://127.0.0.1:41234".
    endpoint: str
    #: Base URL of Prometheus' HTTP API for this environment, or None when none runs.
    prometheus_url: str | None
    #: Labels selecting this environment's series in that Prometheus: {} when the Prometheus is the
    #: environment's own (local); {"namespace": ...} where environments share one (Kubernetes).
    prometheus_selector: dict[str, str]

    def replica_urls(self) -> list[str]:
        """Base URLs of each ready replica, for probes and metrics (like pod IPs)."""

    def status(self) -> Status:
        """The GitOps controller's current view of this environment."""

    def drifts(self) -> list[Drift]:
        """The demo's hand-made drifts, in the order the demo causes them."""

    def save_state(self, directory: Path) -> None:
        """Write the environment's state (never a secret) for the cluster-state artifact."""

    def down(self) -> None:
        """Stop everything this environment started."""


class Target(Protocol):
    name: str

    def up(self, env_name: str, context: RunContext) -> Environment:
        """Bring up `env_name` from Git's desired state; return once Synced and Healthy.

        A target in PLANNING_TARGETS, given a dry-run context, prints every command and object
        instead and returns the environment never started.
        """

    def down_all(self) -> list[str]:
        """Stop every environment this target started (`invoke down`); return their names."""


TARGET_MODULES = {
    "local": "pipeline.targets.local",
    "kind": "pipeline.targets.kube",
    "minikube": "pipeline.targets.kube",
}
#: Targets whose `up` prints its whole plan in a dry run (local has nothing to plan: it starts processes).
PLANNING_TARGETS = frozenset({"kind", "minikube"})


def get_target(name: str) -> Target:
    """The target called `name`; each target module exposes `make_target(name)`."""
    if name not in TARGET_MODULES:
        raise SystemExit(f"unknown target {name!r}; choose one of {', '.join(TARGET_MODULES)}")
    module = importlib.import_module(TARGET_MODULES[name])
    return module.make_target(name)


def summarize_prometheus_targets(active_targets: list[dict], selector: dict[str, str]) -> list[dict]:
    """status.json's view of Prometheus' active targets (its /api/v1/targets), those `selector` matches."""
    return [
        {
            "pod": target["labels"].get("pod"),
            "url": target["scrapeUrl"],
            "health": target["health"],
            "last_scrape": target.get("lastScrape"),
            "last_error": target.get("lastError") or None,
        }
        for target in active_targets
        if selector.items() <= target["labels"].items()
    ]


def bring_up(job: str, target: Target, env_name: str, context: RunContext) -> Environment | None:
    """`target.up(env_name)` for `job`, or None after one clear line on stderr naming the cause."""
    try:
        return target.up(env_name, context)
    except Exception as error:  # any target's failure: one clear line, and the job fails
        print(f"{job}: could not bring up '{env_name}' on {context.target}: {error}", file=sys.stderr)
        return None


def release(job: str, env: Environment, context: RunContext) -> None:
    """Stop `env` at the end of `job`, unless the run keeps it (`--keep`, until `invoke down`)."""
    if context.keep:
        print(f"{job}: environment '{env.name}' left up (--keep); `invoke down` stops it")
    else:
        env.down()


def print_plan(env_name: str, context: RunContext) -> None:
    """In a dry run, let the target print what bringing up `env_name` would do (a no-op for local)."""
    if context.target in PLANNING_TARGETS:
        get_target(context.target).up(env_name, context)
