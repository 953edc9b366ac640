"""Policy checks on the Argo CD AppProjects, the root Application and its children.

They run on what the kind/minikube target really applies (the root, built from gitops/argocd/
with a run's repository, commit and image) and on the child Applications Argo CD renders from
the root's source with every environment switched on, so what is checked is what is deployed.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from pipeline.gitops.appofapps import ARGOCD_NAMESPACE, SYNC_WAVE
from pipeline.gitops.render import Manifest, name_of

RESOURCES_FINALIZER = "resources-finalizer.argocd.argoproj.io"
REPLICAS_POINTER = "/spec/replicas"
#: Pod Security Admission labels every namespace Argo CD creates must carry.
RESTRICTED_NAMESPACE_LABELS = {
    f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "audit", "warn")
}
RBAC_GROUP = "rbac.authorization.k8s.io"
#: Cluster-scoped RBAC: whoever may create these may grant anything, since Argo CD applies with
#: cluster-admin. A project may whitelist them only by name, and only the root's project does.
CLUSTER_RBAC = frozenset({(RBAC_GROUP, "ClusterRole"), (RBAC_GROUP, "ClusterRoleBinding")})
#: Kubernetes' built-in user-facing roles (RBAC docs): a binding to one is an escalation.
ADMIN_ROLES = frozenset({"cluster-admin", "admin", "edit"})
READ_ONLY_VERBS = frozenset({"get", "list", "watch"})


def _ignores_replicas(application: Manifest) -> bool:
    return any(
        rule.get("kind") == "Deployment" and REPLICAS_POINTER in rule.get("jsonPointers", [])
        for rule in application["spec"].get("ignoreDifferences", [])
    )


def _sync_rules(application: Manifest) -> list[str]:
    """What every Application here needs, root or child."""
    where = name_of(application)
    problems = []
    policy = application["spec"].get("syncPolicy", {})
    automated = policy.get("automated", {})
    if not (automated.get("prune") and automated.get("selfHeal")):
        problems.append(f"{where}: enable automated prune and selfHeal")
    retry = policy.get("retry", {})
    if not retry.get("limit") or "maxDuration" not in retry.get("backoff", {}):
        problems.append(f"{where}: bound retries (retry.limit and retry.backoff.maxDuration)")
    if RESOURCES_FINALIZER not in application["metadata"].get("finalizers", []):
        problems.append(f"{where}: add the {RESOURCES_FINALIZER} finalizer")
    return problems


def _wave(application: Manifest) -> int | None:
    value = application["metadata"].get("annotations", {}).get(SYNC_WAVE)
    return int(value) if value is not None and value.lstrip("-").isdigit() else None


def check_application(application: Manifest, rendered: list[Manifest]) -> list[str]:
    """Problems of one child Application, given the objects its source path renders to."""
    where = name_of(application)
    problems = _sync_rules(application)
    spec = application["spec"]
    policy = spec.get("syncPolicy", {})
    options = set(policy.get("syncOptions", []))
    if "CreateNamespace=true" not in options:
        problems.append(f"{where}: add syncOption CreateNamespace=true")
    labels = policy.get("managedNamespaceMetadata", {}).get("labels", {})
    missing = {key: value for key, value in RESTRICTED_NAMESPACE_LABELS.items() if labels.get(key) != value}
    if missing:
        problems.append(
            f'{where}: label the namespace it creates for Pod Security "restricted" '
            f"(syncPolicy.managedNamespaceMetadata.labels {missing})"
        )
    if spec.get("destination", {}).get("namespace") == ARGOCD_NAMESPACE:
        problems.append(f"{where}: deploys into {ARGOCD_NAMESPACE}, which only the root may do")
    if _wave(application) is None:
        problems.append(f"{where}: set an integer {SYNC_WAVE} annotation")
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


def check_root(root: Manifest, children: list[Manifest], first: str) -> list[str]:
    """The app of apps: its own rules, children in Argo CD's namespace, `first` in the earliest wave."""
    where = name_of(root)
    problems = _sync_rules(root)
    spec = root["spec"]
    if spec.get("destination", {}).get("namespace") != ARGOCD_NAMESPACE:
        problems.append(f"{where}: its destination must be the {ARGOCD_NAMESPACE} namespace")
    if "ServerSideApply=true" in spec.get("syncPolicy", {}).get("syncOptions", []):
        problems.append(
            f"{where}: apply the child Applications client-side (drop ServerSideApply=true): server-side, "
            "a sync of the root strips a syncing child's operation state (argoproj/argo-cd#29253)"
        )
    applications = [child for child in children if child.get("kind") == "Application"]
    child_projects = {child["spec"].get("project") for child in applications}
    if spec.get("project") in child_projects:
        problems.append(
            f"{where}: give the root a project of its own; "
            f"a child's project must not reach {ARGOCD_NAMESPACE}"
        )
    for child in children:
        if _group_kind(child) in CLUSTER_RBAC and "namespace" not in child["metadata"]:
            continue  # its project names each one (check_project)
        if child.get("kind") != "Application" or child["metadata"].get("namespace") != ARGOCD_NAMESPACE:
            problems.append(
                f"{where}: renders {name_of(child)}, neither an Application in {ARGOCD_NAMESPACE} "
                "nor cluster RBAC its project names"
            )
    waves = {child["metadata"]["name"]: _wave(child) for child in applications}
    if first not in waves:
        problems.append(f"{where}: renders no {first} Application")
    elif any(w is not None and w <= (waves[first] or 0) for name, w in waves.items() if name != first):
        problems.append(f"{where}: {first} must sync in an earlier wave than every other child ({waves})")
    return problems


def _group_kind(manifest: Manifest) -> tuple[str, str]:
    return manifest["apiVersion"].rpartition("/")[0], manifest["kind"]


def _whitelisted(manifest: Manifest, whitelist: list[Manifest]) -> bool:
    """Argo CD's rule: group and kind match, and the entry's name (a glob), if any, matches."""
    group, kind = _group_kind(manifest)
    return any(
        entry.get("group", "") == group
        and entry["kind"] == kind
        and fnmatchcase(manifest["metadata"]["name"], entry.get("name") or "*")
        for entry in whitelist
    )


def _rbac_problems(where: str, manifest: Manifest) -> list[str]:
    """A deployed binding must not grant a built-in admin role; a cluster-wide role must only read."""
    kind = _group_kind(manifest)
    if kind in {(RBAC_GROUP, "ClusterRoleBinding"), (RBAC_GROUP, "RoleBinding")}:
        role = manifest.get("roleRef", {}).get("name")
        if role in ADMIN_ROLES:
            return [
                f"{where}: {name_of(manifest)} binds the built-in {role!r} ClusterRole; "
                "bind a read-only role of this repository's instead"
            ]
    if kind == (RBAC_GROUP, "ClusterRole"):
        for rule in manifest.get("rules", []):
            verbs = set(rule.get("verbs", []))
            resources = set(rule.get("resources", []))
            if not verbs <= READ_ONLY_VERBS or resources & {"*", "secrets"}:
                return [
                    f"{where}: {name_of(manifest)} grants {sorted(verbs)} on {sorted(resources)}; a cluster-"
                    f"wide role here may only {', '.join(sorted(READ_ONLY_VERBS))} (and never secrets)"
                ]
    return []


def check_project(project: Manifest, deployed: list[Manifest]) -> list[str]:
    """Least privilege: one repository, named namespaces, only the kinds actually deployed.

    Cluster-scoped RBAC only by name, and what is deployed of it grants no admin role.
    """
    where = name_of(project)
    spec = project["spec"]
    problems = []
    repos = spec.get("sourceRepos", [])
    if len(repos) != 1 or "*" in repos[0]:
        problems.append(f"{where}: allow exactly this repository as a source, not {repos}")
    for destination in spec.get("destinations", []):
        if destination.get("namespace") in (None, "*") or destination.get("server") in (None, "*"):
            problems.append(f"{where}: destination {destination} is not limited to named namespaces")
    reaches_argocd = any(d.get("namespace") == ARGOCD_NAMESPACE for d in spec.get("destinations", []))
    cluster_whitelist = spec.get("clusterResourceWhitelist", [])
    namespaced_whitelist = spec.get("namespaceResourceWhitelist", [])
    cluster_kinds = {(k.get("group", ""), k["kind"]) for k in cluster_whitelist}
    namespaced_kinds = {(k.get("group", ""), k["kind"]) for k in namespaced_whitelist}
    if any("*" in part for kind in cluster_kinds | namespaced_kinds for part in kind):
        problems.append(f"{where}: resource whitelists must name kinds, not wildcards")
    named_rbac = []
    for entry in cluster_whitelist:
        if (entry.get("group", ""), entry["kind"]) in CLUSTER_RBAC:
            if not entry.get("name") or any(c in entry["name"] for c in "*?["):
                problems.append(
                    f"{where}: whitelists {entry['kind']} of any name (cluster-scoped RBAC: a commit "
                    "could bind cluster-admin); name each one, in the root's project only"
                )
            else:
                named_rbac.append(entry)
    unnamed_cluster_kinds = [entry for entry in cluster_whitelist if entry not in named_rbac]
    if reaches_argocd and (unnamed_cluster_kinds or namespaced_kinds != {("argoproj.io", "Application")}):
        problems.append(
            f"{where}: reaches the {ARGOCD_NAMESPACE} namespace (admin-level), so it may hold "
            "Applications and named read-only cluster RBAC, nothing else"
        )
    for manifest in deployed:
        if not _whitelisted(manifest, [*namespaced_whitelist, *cluster_whitelist]):
            group = _group_kind(manifest)[0] or "core"
            problems.append(f"{where}: {name_of(manifest)} ({group}) is deployed but not whitelisted")
        problems += _rbac_problems(where, manifest)
    return problems
