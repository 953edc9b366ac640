"""Every offline check of what the GitOps controllers deploy, in one run (`nox -s manifests`).

1. `kubectl kustomize` renders every overlay, gitops/argocd/, observability/, and the root
   Application's source as Argo CD renders it (every environment on, the run-time patches in),
   through `pipeline.gitops`.
2. Every rendered object validates against its schema: built-in kinds for the pinned Kubernetes
   version (strict), custom resources against CRD schemas (see `schemas`).
3. Policy: the hardening and coherence rules (`policy`) on each overlay; least privilege, sync and
   namespace rules (`argocd_rules`) on the AppProjects, the root and every child Application.
4. The observability checks (`pipeline.gitops.checks.observability`).

`run()` returns every problem, grouped by check; an empty result means all passed.
"""

from __future__ import annotations

from collections.abc import Callable

from pipeline.gitops import appofapps
from pipeline.gitops.checks import argocd_rules, observability, policy, schemas
from pipeline.gitops.render import (
    ARGOCD,
    OBSERVABILITY,
    REPO_ROOT,
    Manifest,
    RenderError,
    overlays,
    render,
)
from pipeline.gitops.source import GitSource

#: Stands in for the run's repository and commit when checking the Applications the target builds.
CHECK_SOURCE = GitSource("https://github.com/example/ml-gitops-pipeline.git", "0" * 40)
CHECK_IMAGE = f"{appofapps.SERVICE_IMAGE}=ml-inference:check@sha256:{'0' * 64}"
#: The key of the root's source as Argo CD renders it, every environment on.
CHILDREN = "gitops/argocd/apps (the root's children, every environment)"


def _rendered(root: Manifest) -> tuple[dict[str, list[Manifest]], list[str]]:
    """Every kustomize directory rendered, keyed by its path relative to the repository."""
    rendered, problems = {}, []
    for directory in [*overlays(), ARGOCD, OBSERVABILITY]:
        try:
            rendered[str(directory.relative_to(REPO_ROOT))] = render(directory)
        except RenderError as error:
            problems.append(str(error))
    try:
        components = [appofapps.environment_component(env) for env in appofapps.environments()]
        rendered[CHILDREN] = appofapps.render_children(root, components)
    except RenderError as error:
        problems.append(str(error))
    return rendered, problems


def _argocd_problems(
    root: Manifest, projects: list[Manifest], rendered: dict[str, list[Manifest]]
) -> list[str]:
    """The AppProjects, the root and each child (checked against what its source path renders)."""
    children = rendered.get(CHILDREN, [])
    bootstrap_project, project = projects
    deployed = [
        m
        for path, objects in rendered.items()
        if path.startswith("gitops/overlays/") or path == "observability"
        for m in objects
    ]
    problems = argocd_rules.check_project(project, deployed) + argocd_rules.check_project(
        bootstrap_project, children
    )
    problems += argocd_rules.check_root(root, children, first=appofapps.OBSERVABILITY_APPLICATION)
    for child in appofapps.applications(children):
        problems += argocd_rules.check_application(child, rendered.get(child["spec"]["source"]["path"], []))
    return problems


def run(report: Callable[[str, list[str]], None] = lambda name, problems: None) -> dict[str, list[str]]:
    """Run every check; `report(name, problems)` is called as each finishes (for progress)."""
    results: dict[str, list[str]] = {}

    def record(name: str, problems: list[str]) -> None:
        results[name] = problems
        report(name, problems)

    root = appofapps.root_application(CHECK_SOURCE, CHECK_IMAGE)
    projects = appofapps.projects(CHECK_SOURCE)
    rendered, render_problems = _rendered(root)
    record("render", render_problems)
    record("schemas", schemas.validate([m for objects in rendered.values() for m in objects]))
    record("schemas (root and projects the target applies)", schemas.validate([root, *projects]))
    for path, objects in rendered.items():
        if path.startswith("gitops/overlays/"):
            record(f"policy {path}", policy.check(objects))
    record("argocd projects, root and child applications", _argocd_problems(root, projects, rendered))
    record("observability", observability.check(REPO_ROOT))
    return results
