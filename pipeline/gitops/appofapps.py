"""The app of apps of gitops/argocd/, built for one run.

Git declares everything: the AppProjects, the root Application and, under gitops/argocd/apps/,
the child Applications (observability always; each environment a kustomize component). A run
knows three more facts, the repository, the commit and the build's image. They reach the root
as fields (repoURL, targetRevision) and reach the children the way Argo CD supports: kustomize
patches in the root's spec.source.kustomize.patches, which Argo CD applies when it renders the
root's source. `render_children` renders that source offline exactly so, for the dry run and the
offline checks.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from pipeline.gitops.render import ARGOCD, GITOPS, Manifest, render
from pipeline.gitops.source import GitSource

ARGOCD_NAMESPACE = "argocd"
SERVICE_IMAGE = "ml-inference"
ROOT_APPLICATION = "ml-gitops"
OBSERVABILITY_APPLICATION = "observability"
APPS = ARGOCD / "apps"
ENVIRONMENTS = APPS / "environments"
SYNC_WAVE = "argocd.argoproj.io/sync-wave"
APPLICATION_TARGET = {"group": "argoproj.io", "kind": "Application"}
#: Which child Applications deploy the service (and so take the build's image).
SERVICE_APPLICATIONS = "ml-gitops.dev/component=ml-inference"


def environments() -> list[str]:
    """The environments Git declares (gitops/argocd/apps/environments/<env>/)."""
    return sorted(path.name for path in ENVIRONMENTS.iterdir() if (path / "kustomization.yaml").is_file())


def environment_component(env_name: str) -> str:
    """The root's component for one environment, relative to the root's source path."""
    if env_name not in environments():
        raise SystemExit(
            f"no environment {env_name!r} in {ENVIRONMENTS.relative_to(GITOPS.parent)}; "
            f"known: {', '.join(environments())}"
        )
    return str((ENVIRONMENTS / env_name).relative_to(APPS))


def application_name(env_name: str) -> str:
    return f"ml-inference-{env_name}"


def _from_git(relative: str) -> Manifest:
    return yaml.safe_load((ARGOCD / relative).read_text())


def observability_namespace() -> str:
    """Where Git puts the observability stack (Prometheus, Grafana): its Application's destination."""
    return _from_git("apps/observability-application.yaml")["spec"]["destination"]["namespace"]


def json_patch(target: dict[str, str], operations: Sequence[Mapping[str, object]]) -> Manifest:
    """A kustomize patch of `target`: JSON patch `operations`, inline as YAML."""
    return {"target": target, "patch": yaml.safe_dump(operations, sort_keys=False)}


def root_application(
    source: GitSource,
    image_override: str | None,
    workload_patches: list[Manifest] | None = None,
    environment_patches: dict[str, list[Manifest]] | None = None,
) -> Manifest:
    """Git's root Application pointed at `source`, carrying the run-time patches for its children.

    Its kustomize patches make every child read `source` and the service's children take the
    image: `workload_patches` (kustomize patches) reach every service child's
    spec.source.kustomize, `environment_patches` only the child of that environment (a NodePort
    of its own). It holds no `components`: environments join and leave through
    `pipeline.targets.kube.root` on the cluster, so applying the root again (another job, a later
    run) never drops another job's environment.
    """
    source_fields = [
        {"op": "replace", "path": "/spec/source/repoURL", "value": source.repo_url},
        {"op": "replace", "path": "/spec/source/targetRevision", "value": source.revision},
    ]
    patches = [json_patch(dict(APPLICATION_TARGET), source_fields)]
    if image_override:
        kustomize = {"images": [image_override], "patches": list(workload_patches or [])}
        patches.append(
            json_patch(
                {**APPLICATION_TARGET, "labelSelector": SERVICE_APPLICATIONS},
                [{"op": "add", "path": "/spec/source/kustomize", "value": kustomize}],
            )
        )
        for env_name, env_patches in (environment_patches or {}).items():
            patches.append(
                json_patch(
                    {**APPLICATION_TARGET, "labelSelector": f"ml-gitops.dev/environment={env_name}"},
                    [
                        {"op": "add", "path": "/spec/source/kustomize/patches/-", "value": p}
                        for p in env_patches
                    ],
                )
            )
    root = _from_git("ml-gitops-root-application.yaml")
    root["spec"]["source"].update(
        repoURL=source.repo_url, targetRevision=source.revision, kustomize={"patches": patches}
    )
    return root


def projects(source: GitSource) -> list[Manifest]:
    """The root's AppProject and the children's, each allowing only `source`'s repository."""
    result = []
    for filename in ("ml-gitops-bootstrap-project.yaml", "ml-gitops-project.yaml"):
        project = _from_git(filename)
        project["spec"]["sourceRepos"] = [source.repo_url]
        result.append(project)
    return result


def application_health() -> Manifest:
    """The argocd-cm key that gives Applications a health (so the root waits for each wave)."""
    return _from_git("argocd-cm-application-health.yaml")


def _render_extended(path: str, **additions: list[Any]) -> list[Manifest]:
    """Render `path` (relative to the repository) with `additions` appended to its kustomization's lists.

    On a scratch copy of gitops/, so the repository is never touched.
    """
    with tempfile.TemporaryDirectory() as scratch:
        shutil.copytree(GITOPS, Path(scratch) / GITOPS.name)
        directory = Path(scratch) / path
        kustomization_file = directory / "kustomization.yaml"
        kustomization = yaml.safe_load(kustomization_file.read_text())
        for key, values in additions.items():
            kustomization[key] = [*kustomization.get(key, []), *values]
        kustomization_file.write_text(yaml.safe_dump(kustomization, sort_keys=False))
        return render(directory)


def render_children(root: Manifest, components: list[str]) -> list[Manifest]:
    """What Argo CD renders from `root`'s source with `components` switched on, by sync wave.

    The child Applications, and the cluster-scoped RBAC only the root's project may create
    (Prometheus' read-only ClusterRole and binding); `applications` keeps the former.

    Like Argo CD: `kustomize edit add component`, then its patches appended.
    """
    source = root["spec"]["source"]
    patches = source.get("kustomize", {}).get("patches", [])
    children = _render_extended(source["path"], components=components, patches=patches)
    return sorted(children, key=lambda child: int(child["metadata"].get("annotations", {}).get(SYNC_WAVE, 0)))


def applications(children: list[Manifest]) -> list[Manifest]:
    """The child Applications among what the root renders."""
    return [child for child in children if child["kind"] == "Application"]


def render_application(application: Manifest) -> list[Manifest]:
    """What Argo CD deploys for a child `application`: its path with its kustomize images and patches.

    As Argo CD does it: `kustomize edit set image`, the patches appended.
    """
    kustomize = application["spec"]["source"].get("kustomize", {})
    images = [
        {"name": name, "newName": ref.rpartition(":")[0], "newTag": ref.rpartition(":")[2]}
        for name, _, ref in (image.partition("=") for image in kustomize.get("images", []))
    ]
    patches = kustomize.get("patches", [])
    return _render_extended(application["spec"]["source"]["path"], images=images, patches=patches)
