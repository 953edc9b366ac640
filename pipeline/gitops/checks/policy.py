"""Policy checks on rendered objects: what a schema cannot see.

Each check takes every object of one rendered overlay and returns problems, one sentence each,
naming the object and the fix. `CHECKS` lists them; tests break a good overlay once per check and
prove that check (and only the broken rule) reports it.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Callable, Iterator
from typing import Any

from pipeline.gitops.render import REPO_ROOT, Manifest, name_of

MONITORING_NAMESPACE = "monitoring"
READINESS_PATH = "/ready"
#: Every kind with a pod template (the hardening rules hold for each pod, whoever runs it).
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job")
#: The kinds that pick the service's pods with a selector, and the spec field holding it.
SELECTOR_FIELDS = {"Service": "selector", "PodDisruptionBudget": "selector", "NetworkPolicy": "podSelector"}
#: The volume types the Pod Security Standards "restricted" profile allows.
RESTRICTED_VOLUME_TYPES = {
    "configMap", "csi", "downwardAPI", "emptyDir",
    "ephemeral", "persistentVolumeClaim", "projected", "secret",
}  # fmt: skip

#: The service whose shutdown timing `drain_fits_grace_period` checks, and where its defaults live.
SERVICE_DEPLOYMENT = "ml-inference"
SERVICE_CONTAINER = "ml-inference"
SERVICE_SETTINGS = REPO_ROOT / "services/ml-inference/src/ml_inference/settings.py"
#: The environment variables of the drain timing, and the Settings fields they set.
DRAIN_VARIABLES = {
    "ML_INFERENCE_SETTLE_SECONDS": "settle_seconds",
    "ML_INFERENCE_DRAIN_TIMEOUT_SECONDS": "drain_timeout_seconds",
}
#: Kubernetes' terminationGracePeriodSeconds when a pod spec sets none.
DEFAULT_GRACE_PERIOD_SECONDS = 30

Check = Callable[[list[Manifest]], list[str]]


def _of_kind(manifests: list[Manifest], *kinds: str) -> list[Manifest]:
    return [m for m in manifests if m.get("kind") in kinds]


def _pod_spec(workload: Manifest) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def _serving_containers(workload: Manifest) -> list[dict[str, Any]]:
    """The long-running containers: the ones with ports, probes and the HPA's CPU requests."""
    return _pod_spec(workload).get("containers", [])


def _every_container(manifests: list[Manifest]) -> Iterator[tuple[Manifest, dict[str, Any], str]]:
    """(workload, container, where) for every container of every workload: init containers too, which
    run with the same privileges."""
    for workload in _of_kind(manifests, *WORKLOAD_KINDS):
        pod = _pod_spec(workload)
        for container in [*pod.get("initContainers", []), *pod.get("containers", [])]:
            yield workload, container, f"{name_of(workload)} container {container['name']}"


def empty_dirs(pod: dict[str, Any]) -> set[str]:
    """The names of the pod's emptyDir volumes."""
    return {volume["name"] for volume in pod.get("volumes", []) if "emptyDir" in volume}


def _pod_labels(deployment: Manifest) -> dict[str, str]:
    return deployment["spec"]["template"].get("metadata", {}).get("labels", {})


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a matchLabels-style selector (or a Service's plain map) selects `labels`."""
    if "matchExpressions" in selector:
        return False
    match = selector.get("matchLabels", selector)
    return bool(match) and all(labels.get(key) == value for key, value in match.items())


def _hpa_for(manifests: list[Manifest], deployment: Manifest) -> Manifest | None:
    for hpa in _of_kind(manifests, "HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        if target.get("kind") == "Deployment" and target.get("name") == deployment["metadata"]["name"]:
            return hpa
    return None


def _min_replicas(manifests: list[Manifest], deployment: Manifest) -> int:
    hpa = _hpa_for(manifests, deployment)
    return int(hpa["spec"].get("minReplicas", 1) if hpa else deployment["spec"].get("replicas", 1))


def _setting(workload: Manifest, container: dict[str, Any], key: str) -> Any:
    """A securityContext setting, the container's overriding the pod's."""
    value = container.get("securityContext", {}).get(key)
    return _pod_spec(workload).get("securityContext", {}).get(key) if value is None else value


def pod_security_restricted(manifests: list[Manifest]) -> list[str]:
    """The Pod Security Standards "restricted" profile, plus a read-only root filesystem."""
    problems = []
    for workload in _of_kind(manifests, *WORKLOAD_KINDS):
        for _, container, where in _every_container([workload]):
            context = container.get("securityContext", {})
            user = _setting(workload, container, "runAsUser")
            seccomp = (_setting(workload, container, "seccompProfile") or {}).get("type")
            holds = {  # each rule's fix: whether the container keeps it
                "set runAsNonRoot: true": _setting(workload, container, "runAsNonRoot") is True,
                "set a numeric non-root runAsUser": isinstance(user, int) and user != 0,
                "set allowPrivilegeEscalation: false": context.get("allowPrivilegeEscalation") is False,
                "drop ALL capabilities": context.get("capabilities", {}).get("drop") == ["ALL"],
                "set seccompProfile type RuntimeDefault": seccomp == "RuntimeDefault",
                "set readOnlyRootFilesystem: true": context.get("readOnlyRootFilesystem") is True,
                "must not be privileged": not context.get("privileged"),
            }
            problems += [f"{where}: {fix}" for fix, held in holds.items() if not held]
        pod = _pod_spec(workload)
        for volume in pod.get("volumes", []):
            kinds = set(volume) - {"name"}
            if not kinds <= RESTRICTED_VOLUME_TYPES:
                problems.append(
                    f"{name_of(workload)}: volume {volume.get('name')} is {', '.join(sorted(kinds))}, "
                    "which the restricted profile forbids"
                )
        for flag in ("hostNetwork", "hostPID", "hostIPC"):
            if pod.get(flag):
                problems.append(f"{name_of(workload)}: {flag} is not allowed")
    return problems


def writable_tmp(manifests: list[Manifest]) -> list[str]:
    """A read-only root filesystem still needs an emptyDir at /tmp."""
    return [
        f"{where}: mount an emptyDir at /tmp"
        for workload, container, where in _every_container(manifests)
        if {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}.get("/tmp")
        not in empty_dirs(_pod_spec(workload))
    ]


def resources_bounded(manifests: list[Manifest]) -> list[str]:
    return [
        f"{where}: set {bound}.{resource}"
        for _, container, where in _every_container(manifests)
        for bound in ("requests", "limits")
        for resource in ("cpu", "memory")
        if resource not in container.get("resources", {}).get(bound, {})
    ]


def probes_distinct_and_named(manifests: list[Manifest]) -> list[str]:
    """Startup, readiness and liveness probes on distinct paths, on named ports that exist."""
    problems = []
    for deployment in _of_kind(manifests, "Deployment"):
        for container in _serving_containers(deployment):
            where = f"{name_of(deployment)} container {container['name']}"
            port_names = {port.get("name") for port in container.get("ports", [])}
            paths = {}
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                http = container.get(probe, {}).get("httpGet")
                if http is None:
                    problems.append(f"{where}: add an HTTP {probe}")
                    continue
                paths[probe] = http.get("path")
                if http.get("port") not in port_names:
                    problems.append(
                        f"{where}: {probe} port {http.get('port')!r} is not a named container port"
                    )
            if len(set(paths.values())) != len(paths):
                problems.append(
                    f"{where}: probes share a path ({paths}); each probe asks a different question"
                )
            if paths.get("readinessProbe", READINESS_PATH) != READINESS_PATH:
                problems.append(f"{where}: readinessProbe must use {READINESS_PATH} (ready = model loaded)")
    return problems


def spread_across_nodes(manifests: list[Manifest]) -> list[str]:
    problems = []
    for deployment in _of_kind(manifests, "Deployment"):
        pod = _pod_spec(deployment)
        spread = [
            constraint
            for constraint in pod.get("topologySpreadConstraints", [])
            if _selects(constraint.get("labelSelector", {}), _pod_labels(deployment))
        ]
        anti_affinity = pod.get("affinity", {}).get("podAntiAffinity")
        if not spread and not anti_affinity:
            problems.append(f"{name_of(deployment)}: add a topology spread constraint selecting its own pods")
    return problems


def selectors_match_pods(manifests: list[Manifest]) -> list[str]:
    """Every selector (Deployment, Service, PDB, NetworkPolicy, HPA target) finds the pods."""
    problems = []
    deployments = _of_kind(manifests, "Deployment")
    pod_labels = [_pod_labels(d) for d in deployments]
    for deployment in deployments:
        if not _selects(deployment["spec"]["selector"], _pod_labels(deployment)):
            problems.append(f"{name_of(deployment)}: spec.selector does not match the pod template labels")
    for kind, key in SELECTOR_FIELDS.items():
        for manifest in _of_kind(manifests, kind):
            if not any(_selects(manifest["spec"].get(key, {}), labels) for labels in pod_labels):
                problems.append(f"{name_of(manifest)}: its selector matches no pod of any Deployment")
    names = {d["metadata"]["name"] for d in deployments}
    for hpa in _of_kind(manifests, "HorizontalPodAutoscaler"):
        if hpa["spec"]["scaleTargetRef"].get("name") not in names:
            problems.append(f"{name_of(hpa)}: scaleTargetRef names no Deployment in this overlay")
    return problems


def _container_ports(manifests: list[Manifest]) -> set[Any]:
    """The Deployments' container ports, by name and by number."""
    return {
        identifier
        for deployment in _of_kind(manifests, "Deployment")
        for container in _serving_containers(deployment)
        for port in container.get("ports", [])
        for identifier in (port.get("name"), port["containerPort"])
    } - {None}


def service_targets_container_port(manifests: list[Manifest]) -> list[str]:
    ports = _container_ports(manifests)
    return [
        f"{name_of(service)}: targetPort {target!r} is not a container port"
        for service in _of_kind(manifests, "Service")
        for port in service["spec"].get("ports", [])
        if (target := port.get("targetPort", port.get("port"))) not in ports
    ]


def network_policy_admits_service_and_prometheus(manifests: list[Manifest]) -> list[str]:
    problems = []
    ports = _container_ports(manifests)
    policies = _of_kind(manifests, "NetworkPolicy")
    if _of_kind(manifests, "Deployment") and not policies:
        problems.append("no NetworkPolicy: add one admitting only the service port")
    for policy in policies:
        rules = policy["spec"].get("ingress", [])
        admitted = {port.get("port") for rule in rules for port in rule.get("ports", [])}
        if not admitted & ports:
            problems.append(f"{name_of(policy)}: no ingress rule admits the service's container port")
        namespaces = {
            peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
            for rule in rules
            for peer in rule.get("from", [])
        }
        if MONITORING_NAMESPACE not in namespaces:
            problems.append(f"{name_of(policy)}: admit Prometheus from the {MONITORING_NAMESPACE} namespace")
    return problems


def replicas_owned_once(manifests: list[Manifest]) -> list[str]:
    """Either the HPA owns spec.replicas (and Git leaves it out) or Git does; never both."""
    problems = []
    for deployment in _of_kind(manifests, "Deployment"):
        hpa = _hpa_for(manifests, deployment)
        if hpa is None:
            continue
        if "replicas" in deployment["spec"]:
            problems.append(f"{name_of(deployment)}: remove spec.replicas; {name_of(hpa)} owns it")
        spec = hpa["spec"]
        if int(spec.get("minReplicas", 1)) > int(spec["maxReplicas"]):
            problems.append(f"{name_of(hpa)}: minReplicas is above maxReplicas")
        uses_cpu = any(m.get("resource", {}).get("name") == "cpu" for m in spec.get("metrics", []))
        if uses_cpu and any(
            "cpu" not in c.get("resources", {}).get("requests", {}) for c in _serving_containers(deployment)
        ):
            problems.append(f"{name_of(hpa)}: scales on CPU utilization but a container has no CPU request")
    return problems


def disruption_budget_coherent(manifests: list[Manifest]) -> list[str]:
    """The PDB allows at least one voluntary disruption and never all pods at once."""
    problems = []
    deployments = _of_kind(manifests, "Deployment")
    budgets = _of_kind(manifests, "PodDisruptionBudget")
    for deployment in deployments:
        if not any(_selects(b["spec"].get("selector", {}), _pod_labels(deployment)) for b in budgets):
            problems.append(f"{name_of(deployment)}: add a PodDisruptionBudget for its pods")
    for budget in budgets:
        for deployment in deployments:
            if not _selects(budget["spec"].get("selector", {}), _pod_labels(deployment)):
                continue
            replicas = _min_replicas(manifests, deployment)
            spec = budget["spec"]
            if isinstance(spec.get("minAvailable"), int):
                allowed = replicas - spec["minAvailable"]
            elif isinstance(spec.get("maxUnavailable"), int):
                allowed = min(spec["maxUnavailable"], replicas)
            else:
                problems.append(f"{name_of(budget)}: use an integer minAvailable or maxUnavailable")
                continue
            if replicas < 2:
                problems.append(
                    f"{name_of(deployment)}: run at least 2 replicas so the PDB can allow a disruption"
                )
            elif allowed < 1:
                problems.append(
                    f"{name_of(budget)}: allows no disruption with {replicas} replicas (drains hang)"
                )
            elif allowed >= replicas:
                problems.append(f"{name_of(budget)}: allows all {replicas} replicas down at once")
    return problems


def image_pinned(manifests: list[Manifest]) -> list[str]:
    problems = []
    for _, container, where in _every_container(manifests):
        image = container.get("image", "")
        name, _, digest = image.partition("@")
        tag = name.rpartition(":")[2] if ":" in name.rpartition("/")[2] else ""
        if not digest and (not tag or tag == "latest"):
            problems.append(f"{where}: image {image!r} is not pinned to a tag or digest (never :latest)")
    return problems


def service_account_token_not_mounted(manifests: list[Manifest]) -> list[str]:
    return [
        f"{name_of(workload)}: set automountServiceAccountToken: false (no API access needed)"
        for workload in _of_kind(manifests, *WORKLOAD_KINDS)
        if _pod_spec(workload).get("automountServiceAccountToken") is not False
    ]


@functools.cache
def drain_defaults() -> dict[str, float]:
    """The service's defaults for each of DRAIN_VARIABLES, read from its Settings class.

    Parsed, not imported: the offline checks run without the service installed (nox -s manifests).
    """
    tree = ast.parse(SERVICE_SETTINGS.read_text(), str(SERVICE_SETTINGS))
    (settings,) = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "Settings"]
    fields = set(DRAIN_VARIABLES.values())
    defaults = {}
    for node in settings.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id in fields:
            value = node.value
            if isinstance(value, ast.Call):  # Field(default=..., ...)
                value = next(k.value for k in value.keywords if k.arg == "default")
            if value is not None:
                defaults[node.target.id] = float(ast.literal_eval(value))
    return {variable: defaults[field] for variable, field in DRAIN_VARIABLES.items()}


def _literal_seconds(container: dict[str, Any], variable: str) -> tuple[float, str] | None:
    """A drain variable's seconds and a note on where they come from; None if not a literal number."""
    for entry in container.get("env", []):
        if entry.get("name") == variable:
            try:
                return float(entry["value"]), ""
            except (KeyError, TypeError, ValueError):
                return None
    return drain_defaults()[variable], " (the service's default)"


def drain_fits_grace_period(manifests: list[Manifest]) -> list[str]:
    """The service's shutdown ends before the kubelet's SIGKILL: preStop + settle + drain < grace.

    The grace period counts from the start of preStop. The preStop must be the kubelet's own
    `sleep` (an exec one needs a shell and a sleep binary the image may not have).
    """
    return [
        problem
        for deployment in _of_kind(manifests, "Deployment")
        if deployment["metadata"]["name"] == SERVICE_DEPLOYMENT
        for container in _serving_containers(deployment)
        if container["name"] == SERVICE_CONTAINER
        for problem in _drain_problems(deployment, container)
    ]


def _drain_problems(deployment: Manifest, container: dict[str, Any]) -> list[str]:
    where = f"{name_of(deployment)} container {SERVICE_CONTAINER}"
    pre_stop = container.get("lifecycle", {}).get("preStop", {})
    sleep = pre_stop.get("sleep", {}).get("seconds")
    if "exec" in pre_stop:
        return [f"{where}: an exec preStop needs a shell in the image; use lifecycle.preStop.sleep.seconds"]
    if isinstance(sleep, bool) or not isinstance(sleep, int) or sleep < 1:
        return [
            f"{where}: set lifecycle.preStop.sleep.seconds to an integer of at least 1, so the pod "
            f"leaves the Service's endpoints before it stops listening (found {sleep!r})"
        ]
    settle_timing, drain_timing = (_literal_seconds(container, v) for v in DRAIN_VARIABLES)
    if settle_timing is None or drain_timing is None:
        return [
            f'{where}: {variable} must be a literal number in env (value: "..."), so the drain '
            "timing can be checked against the grace period"
            for variable, timing in zip(DRAIN_VARIABLES, (settle_timing, drain_timing), strict=True)
            if timing is None
        ]
    (settle, settle_note), (drain, drain_note) = settle_timing, drain_timing
    grace = _pod_spec(deployment).get("terminationGracePeriodSeconds", DEFAULT_GRACE_PERIOD_SECONDS)
    if grace > sleep + settle + drain:
        return []
    return [
        f"{where}: terminationGracePeriodSeconds {grace} must exceed preStop {sleep} + settle "
        f"{settle}{settle_note} + drain {drain}{drain_note} = {sleep + settle + drain} s, or "
        "SIGKILL cuts the drain short; change them together"
    ]


CHECKS: tuple[Check, ...] = (
    pod_security_restricted,
    writable_tmp,
    resources_bounded,
    probes_distinct_and_named,
    spread_across_nodes,
    selectors_match_pods,
    service_targets_container_port,
    network_policy_admits_service_and_prometheus,
    replicas_owned_once,
    disruption_budget_coherent,
    image_pinned,
    service_account_token_not_mounted,
    drain_fits_grace_period,
)


def check(manifests: list[Manifest]) -> list[str]:
    """Every policy problem of one rendered overlay."""
    return [problem for rule in CHECKS for problem in rule(manifests)]
