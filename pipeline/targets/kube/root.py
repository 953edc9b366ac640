"""Environments join and leave the root Application (app of apps) one job at a time.

The root's spec.source.kustomize.components lists the environments on this cluster. Jobs that
share a cluster (test and demo, locally) change it at the same moment, so each change is a
read, then a replace at the resourceVersion read: the API server refuses (409 Conflict) a
replace whose object changed in between, and the change is made again on the fresh object.
Adding an environment makes Argo CD create its Application; removing it makes Argo CD prune the
Application, whose resources finalizer then deletes everything it deployed.
"""

from __future__ import annotations

from typing import Any

from pipeline.gitops.appofapps import ARGOCD_NAMESPACE, ROOT_APPLICATION
from pipeline.targets.kube.api import APPLICATIONS

CONFLICT = 409
ATTEMPTS = 10


def set_component(api: Any, component: str, *, present: bool) -> list[str]:
    """Add (or remove) `component` on the root, race-free; returns the root's components after."""
    from kubernetes.client.exceptions import ApiException

    where = (*APPLICATIONS, ROOT_APPLICATION)
    for _ in range(ATTEMPTS):
        root = api.get_namespaced_custom_object(*where)
        current = list(root["spec"]["source"].get("kustomize", {}).get("components", []))
        wanted = sorted(set(current) | {component}) if present else [c for c in current if c != component]
        if wanted == current:
            return current
        root["spec"]["source"].setdefault("kustomize", {})["components"] = wanted
        try:
            api.replace_namespaced_custom_object(*where, root)  # carries the resourceVersion read
        except ApiException as error:
            if error.status == CONFLICT:
                continue
            raise
        return wanted
    raise RuntimeError(
        f"Application {ARGOCD_NAMESPACE}/{ROOT_APPLICATION} kept changing; {component} not "
        f"{'added' if present else 'removed'} after {ATTEMPTS} attempts"
    )
