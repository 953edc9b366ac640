"""Deployment targets: where deploy, test and demo run a release.

`local` runs replicas as processes behind one endpoint with a small reconciler standing in for
Argo CD; `kind` and `minikube` are real Kubernetes with Argo CD. A target is told what to run
(a `pipeline.release.Release`); it never reads a job's folders.
"""

from __future__ import annotations

import importlib
from typing import Protocol

from pipeline.context import RunContext
from pipeline.release import Environment, Release


class Target(Protocol):
    name: str

    def up(self, env_name: str, release: Release, context: RunContext) -> Environment:
        """Bring up `env_name` from Git's desired state running `release`; return once Synced and Healthy."""

    def plan(self, env_name: str, release: Release, context: RunContext) -> str:
        """What `up` would do, as text to print; runs nothing (the dry run)."""

    def down_all(self) -> list[str]:
        """Stop every environment this target started (`invoke down`); return their names."""


TARGET_MODULES = {
    "local": "pipeline.targets.local",
    "kind": "pipeline.targets.kube",
    "minikube": "pipeline.targets.kube",
}


def get_target(name: str) -> Target:
    """The target called `name`; each target package exposes `make_target(name)`."""
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
