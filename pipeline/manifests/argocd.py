"""Policy checks on the Argo CD AppProject and Applications.

They run on the files in gitops/argocd/ and on the Applications the kind/minikube target really
applies (built from those files per environment), so what is checked is what is deployed.
"""

from __future__ import annotations

from pipeline.manifests.render import Manifest, name_of

RESOURCES_FINALIZER = "resources-finalizer.argocd.argoproj.io"
SYNC_WAVE = "argocd.argoproj.io/sync-wave"
REPLICAS_POINTER = "/spec/replicas"


def _ignores_replicas(application: Manifest) -> bool:
    return any(
        rule.get("kind") == "Deployment" and REPLICAS_POINTER in rule.get("jsonPointers", [])
        for rule in application["spec"].get("ignoreDifferences", [])
    )


def check_application(application: Manifest, rendered: list[Manifest]) -> list[str]:
    """Problems of one Application, given the objects its source path renders to."""
    where = name_of(application)
    problems = []
    spec = application["spec"]
    policy = spec.get("syncPolicy", {})
    automated = policy.get("automated", {})
    if not (automated.get("prune") and automated.get("selfHeal")):
        problems.append(f"{where}: enable automated prune and selfHeal")
    options = set(policy.get("syncOptions", []))
    if "CreateNamespace=true" not in options:
        problems.append(f"{where}: add syncOption CreateNamespace=true")
    retry = policy.get("retry", {})
    if not retry.get("limit") or "maxDuration" not in retry.get("backoff", {}):
        problems.append(f"{where}: bound retries (retry.limit and retry.backoff.maxDuration)")
    if RESOURCES_FINALIZER not in application["metadata"].get("finalizers", []):
        problems.append(f"{where}: add the {RESOURCES_FINALIZER} finalizer")
    if SYNC_WAVE not in application["metadata"].get("annotations", {}):
        problems.append(f"{where}: set a {SYNC_WAVE} annotation")
    has_hpa = any(m.get("kind") == "HorizontalPodAutoscaler" for m in rendered)
    if has_hpa and not (_ignores_replicas(application) and "RespectIgnoreDifferences=true" in options):
        problems.append(
            f"{where}: its HPA owns spec.replicas; ignore {REPLICAS_POINTER} "
            "with RespectIgnoreDifferences=true"
        )
    if not has_hpa and _ignores_replicas(application):
        problems.append(
            f"{where}: ignores {REPLICAS_POINTER} without an HPA, so a scale drift is never healed"
        )
    return problems


def check_project(project: Manifest, deployed: list[Manifest]) -> list[str]:
    """Least privilege: one repository, named namespaces, only the kinds actually deployed."""
    where = name_of(project)
    spec = project["spec"]
    problems = []
    repos = spec.get("sourceRepos", [])
    if len(repos) != 1 or "*" in repos[0]:
        problems.append(f"{where}: allow exactly this repository as a source, not {repos}")
    for destination in spec.get("destinations", []):
        if destination.get("namespace") in (None, "*") or destination.get("server") in (None, "*"):
            problems.append(f"{where}: destination {destination} is not limited to named namespaces")
    cluster_kinds = {(k.get("group", ""), k["kind"]) for k in spec.get("clusterResourceWhitelist", [])}
    namespaced_kinds = {(k.get("group", ""), k["kind"]) for k in spec.get("namespaceResourceWhitelist", [])}
    if any("*" in part for kind in cluster_kinds | namespaced_kinds for part in kind):
        problems.append(f"{where}: resource whitelists must name kinds, not wildcards")
    for manifest in deployed:
        kind = (manifest["apiVersion"].rpartition("/")[0], manifest["kind"])
        if kind not in namespaced_kinds | cluster_kinds:
            problems.append(
                f"{where}: {name_of(manifest)} ({kind[0] or 'core'}) is deployed but not whitelisted"
            )
    return problems
