"""Offline checks of everything the GitOps controllers deploy (`nox -s manifests`).

1. `kubectl kustomize` renders every overlay, gitops/argocd/ and observability/.
2. Every rendered object validates against its schema: built-in kinds for the pinned Kubernetes
   version (strict), custom resources against CRD schemas (see `schemas`).
3. Policy: the hardening and coherence rules (`policy`) on each overlay; least privilege and sync
   rules (`argocd`) on the AppProject and on the Applications the kind/minikube target builds.
4. The observability checks (`pipeline.manifests.observability.check`), when that module exists.

`run()` returns every problem, grouped by check; an empty result means all passed.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable

from pipeline.manifests import argocd, policy, schemas
from pipeline.manifests.render import (
    ARGOCD,
    OBSERVABILITY,
    REPO_ROOT,
    Manifest,
    RenderError,
    overlays,
    render,
)
from pipeline.targets.kube import argocd as kube_argocd

#: Stands in for the run's repository and commit when checking the Applications the target builds.
CHECK_SOURCE = kube_argocd.GitSource("https://github.com/example/ml-gitops-pipeline.git", "0" * 40)
CHECK_IMAGE = f"{kube_argocd.SERVICE_IMAGE}=ml-inference:check@sha256:{'0' * 64}"


def _rendered() -> tuple[dict[str, list[Manifest]], list[str]]:
    """Every kustomize directory rendered, keyed by its path relative to the repository."""
    directories = [*overlays(), ARGOCD]
    if (OBSERVABILITY / "kustomization.yaml").is_file():
        directories.append(OBSERVABILITY)
    rendered, problems = {}, []
    for directory in directories:
        try:
            rendered[str(directory.relative_to(REPO_ROOT))] = render(directory)
        except RenderError as error:
            problems.append(str(error))
    return rendered, problems


def _target_objects(rendered: dict[str, list[Manifest]]) -> list[tuple[Manifest, list[Manifest]]]:
    """The Applications kind/minikube really apply, each with what its source path renders to."""
    applications = [(kube_argocd.observability_application(CHECK_SOURCE), rendered.get("observability", []))]
    for env_name in kube_argocd.ENVIRONMENT_OVERLAYS:
        path = kube_argocd.overlay_path(env_name)
        objects = rendered.get(path, [])
        has_hpa = any(m["kind"] == "HorizontalPodAutoscaler" for m in objects)
        application = kube_argocd.ml_inference_application(
            env_name, CHECK_SOURCE, CHECK_IMAGE, overlay_has_hpa=has_hpa
        )
        applications.append((application, objects))
    return applications


def _observability_checks() -> list[str]:
    if importlib.util.find_spec("pipeline.manifests.observability") is None:
        return []
    module = importlib.import_module("pipeline.manifests.observability")
    return module.check(REPO_ROOT)


def run(report: Callable[[str, list[str]], None] = lambda name, problems: None) -> dict[str, list[str]]:
    """Run every check; `report(name, problems)` is called as each finishes (for progress)."""
    results: dict[str, list[str]] = {}

    def record(name: str, problems: list[str]) -> None:
        results[name] = problems
        report(name, problems)

    rendered, render_problems = _rendered()
    record("render", render_problems)
    targets = _target_objects(rendered)
    record("schemas", schemas.validate([m for objects in rendered.values() for m in objects]))
    record("schemas (applications the target applies)", schemas.validate([app for app, _ in targets]))
    for path, objects in rendered.items():
        if path.startswith("gitops/overlays/"):
            record(f"policy {path}", policy.check(objects))
    argocd_dir = str(ARGOCD.relative_to(REPO_ROOT))
    deployed = [m for path, objects in rendered.items() if path != argocd_dir for m in objects]
    project = kube_argocd.project(CHECK_SOURCE)
    argocd_problems = argocd.check_project(project, deployed)
    for application, objects in targets:
        argocd_problems += argocd.check_application(application, objects)
    record("argocd project and applications", argocd_problems)
    record("observability", _observability_checks())
    return results
