"""Argo CD: its pinned install, and the AppProject/Applications built from gitops/argocd/.

The files in gitops/argocd/ are the shape Git declares; this module fills in what only a run
knows (repository, commit, environment namespace, the build's image) and nothing else, so the
offline checks of those files hold for what is applied.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from pipeline.manifests.render import ARGOCD, Manifest
from pipeline.targets.kube.versions import ARGOCD_INSTALL_URL

ARGOCD_NAMESPACE = "argocd"
SERVICE_IMAGE = "ml-inference"
#: Which overlay each environment deploys: the demo's has no HPA, so self-heal owns replicas.
ENVIRONMENT_OVERLAYS = {"deploy": "kubernetes", "test": "kubernetes", "demo": "demo"}


@dataclass(frozen=True)
class GitSource:
    """Where Argo CD reads this repository from."""

    repo_url: str
    revision: str


def environment_namespace(env_name: str) -> str:
    return f"ml-inference-{env_name}"


def application_name(env_name: str) -> str:
    return f"ml-inference-{env_name}"


def overlay_path(env_name: str) -> str:
    if env_name not in ENVIRONMENT_OVERLAYS:
        raise SystemExit(f"no overlay for environment {env_name!r}; known: {', '.join(ENVIRONMENT_OVERLAYS)}")
    return f"gitops/overlays/{ENVIRONMENT_OVERLAYS[env_name]}"


def _template(relative: str) -> Manifest:
    return yaml.safe_load((ARGOCD / relative).read_text())


def _point_at(application: Manifest, source: GitSource) -> Manifest:
    application["spec"]["source"]["repoURL"] = source.repo_url
    application["spec"]["source"]["targetRevision"] = source.revision
    return application


def project(source: GitSource) -> Manifest:
    manifest = _template("ml-gitops-project.yaml")
    manifest["spec"]["sourceRepos"] = [source.repo_url]
    return manifest


def observability_application(source: GitSource) -> Manifest:
    return _point_at(_template("applications/observability.yaml"), source)


def ml_inference_application(
    env_name: str, source: GitSource, image: str | None, *, overlay_has_hpa: bool
) -> Manifest:
    """The Application of one environment; `image` is a kustomize override (`ml-inference=<ref>`)."""
    application = _point_at(_template("applications/ml-inference.yaml"), source)
    application["metadata"]["name"] = application_name(env_name)
    spec = application["spec"]
    spec["source"]["path"] = overlay_path(env_name)
    spec["destination"]["namespace"] = environment_namespace(env_name)
    if image:
        spec["source"]["kustomize"] = {"images": [image]}
    if not overlay_has_hpa:
        # Git owns replicas here: a scale by hand must be seen as drift and healed.
        spec.pop("ignoreDifferences", None)
        options = spec["syncPolicy"]["syncOptions"]
        spec["syncPolicy"]["syncOptions"] = [o for o in options if o != "RespectIgnoreDifferences=true"]
    return application


def install_argv(kubectl: tuple[str, ...]) -> tuple[str, ...]:
    """The install command from Argo CD's docs, for the pinned version (server-side apply)."""
    return (
        *kubectl,
        "apply",
        "-n",
        ARGOCD_NAMESPACE,
        "--server-side",
        "--force-conflicts",
        "-f",
        ARGOCD_INSTALL_URL,
    )
