"""Offline checks of everything the GitOps controllers deploy (`nox -s manifests`).

1. `kubectl kustomize` renders every overlay, gitops/argocd/, observability/, and the root
   Application's source as Argo CD renders it (every environment on, the run-time patches in).
2. Every rendered object validates against its schema: built-in kinds for the pinned Kubernetes
   version (strict), custom resources against CRD schemas (see `schemas`).
3. Policy: the hardening and coherence rules (`policy`) on each overlay; least privilege, sync and
   namespace rules (`argocd`) on the AppProjects, the root and every child Application.
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
ROOT = kube_argocd.root_application(CHECK_SOURCE, CHECK_IMAGE)
PROJECTS = kube_argocd.projects(CHECK_SOURCE)
#: The key of the root's source as Argo CD renders it, every environment on.
CHILDREN = "gitops/argocd/apps (the root's children, every environment)"


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
    try:
        components = [kube_argocd.environment_component(env) for env in kube_argocd.environments()]
        rendered[CHILDREN] = kube_argocd.render_children(ROOT, components)
    except RenderError as error:
        problems.append(str(error))
    return rendered, problems


def _argocd_problems(rendered: dict[str, list[Manifest]]) -> list[str]:
    """The AppProjects, the root and each child (checked against what its source path renders)."""
    children = rendered.get(CHILDREN, [])
    bootstrap_project, project = PROJECTS
    deployed = [
        m
        for path, objects in rendered.items()
        if path.startswith("gitops/overlays/") or path == "observability"
        for m in objects
    ]
    problems = argocd.check_project(project, deployed) + argocd.check_project(bootstrap_project, children)
    problems += argocd.check_root(ROOT, children, first=kube_argocd.OBSERVABILITY_APPLICATION)
    for child in children:
        problems += argocd.check_application(child, rendered.get(child["spec"]["source"]["path"], []))
    return problems


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
    record("schemas", schemas.validate([m for objects in rendered.values() for m in objects]))
    record("schemas (root and projects the target applies)", schemas.validate([ROOT, *PROJECTS]))
    for path, objects in rendered.items():
        if path.startswith("gitops/overlays/"):
            record(f"policy {path}", policy.check(objects))
    record("argocd projects, root and child applications", _argocd_problems(rendered))
    record("observability", _observability_checks())
    return results
