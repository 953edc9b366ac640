"""The manifest policy checks pass on every overlay and each one fails on the breakage it exists for.

Each failure case breaks one rule in a freshly rendered overlay and asserts that the check made
for it reports the broken object, and that the other checks stay quiet (so a check cannot pass
by accident of another one firing).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import pytest

from pipeline.gitops.checks import policy
from pipeline.gitops.render import overlays, render
from tests.helpers import require_program

Manifests = list[dict[str, Any]]


@pytest.fixture(scope="module")
def kubernetes_overlay() -> Manifests:
    require_program("kubectl")
    return render(next(path for path in overlays() if path.name == "kubernetes"))


def _only(manifests: Manifests, kind: str) -> dict[str, Any]:
    (match,) = [m for m in manifests if m["kind"] == kind]
    return match


def _container(manifests: Manifests) -> dict[str, Any]:
    return _only(manifests, "Deployment")["spec"]["template"]["spec"]["containers"][0]


def _pod(manifests: Manifests) -> dict[str, Any]:
    return _only(manifests, "Deployment")["spec"]["template"]["spec"]


def _drop_pod_and_container(key: str) -> Callable[[Manifests], None]:
    def mutate(m: Manifests) -> None:
        _pod(m)["securityContext"].pop(key, None)
        _container(m)["securityContext"].pop(key, None)

    return mutate


def _set_replicas(m: Manifests, replicas: int) -> None:
    _only(m, "Deployment")["spec"]["replicas"] = replicas


def _remove_hpa(m: Manifests) -> None:
    m.remove(_only(m, "HorizontalPodAutoscaler"))


BREAKAGES: dict[str, tuple[Callable[[Manifests], None], Callable[[Manifests], list[str]], str]] = {
    "root user": (_drop_pod_and_container("runAsNonRoot"), policy.pod_security_restricted, "runAsNonRoot"),
    "uid 0": (
        lambda m: (
            _pod(m)["securityContext"].update(runAsUser=0),
            _container(m)["securityContext"].update(runAsUser=0),
        ),
        policy.pod_security_restricted,
        "non-root runAsUser",
    ),
    "privilege escalation": (
        lambda m: _container(m)["securityContext"].update(allowPrivilegeEscalation=True),
        policy.pod_security_restricted,
        "allowPrivilegeEscalation",
    ),
    "capabilities kept": (
        lambda m: _container(m)["securityContext"].pop("capabilities"),
        policy.pod_security_restricted,
        "drop ALL",
    ),
    "no seccomp": (
        _drop_pod_and_container("seccompProfile"),
        policy.pod_security_restricted,
        "seccompProfile",
    ),
    "writable root": (
        lambda m: _container(m)["securityContext"].update(readOnlyRootFilesystem=False),
        policy.pod_security_restricted,
        "readOnlyRootFilesystem",
    ),
    "host path volume": (
        lambda m: _pod(m)["volumes"].append({"name": "host", "hostPath": {"path": "/var/run"}}),
        policy.pod_security_restricted,
        "volume host is hostPath",
    ),
    "no /tmp": (lambda m: _container(m).pop("volumeMounts"), policy.writable_tmp, "emptyDir at /tmp"),
    "no memory limit": (
        lambda m: _container(m)["resources"]["limits"].pop("memory"),
        policy.resources_bounded,
        "limits.memory",
    ),
    "no startup probe": (
        lambda m: _container(m).pop("startupProbe"),
        policy.probes_distinct_and_named,
        "startupProbe",
    ),
    "probes share a path": (
        lambda m: _container(m)["livenessProbe"]["httpGet"].update(path="/ready"),
        policy.probes_distinct_and_named,
        "share a path",
    ),
    "probe on an unnamed port": (
        lambda m: _container(m)["readinessProbe"]["httpGet"].update(port="metrics"),
        policy.probes_distinct_and_named,
        "'metrics' is not a named container port",
    ),
    "readiness not the model check": (
        lambda m: _container(m)["readinessProbe"]["httpGet"].update(path="/v2/health/ready"),
        policy.probes_distinct_and_named,
        "must use /ready",
    ),
    "no spread": (
        lambda m: _pod(m).pop("topologySpreadConstraints"),
        policy.spread_across_nodes,
        "topology spread",
    ),
    "service selects nothing": (
        lambda m: _only(m, "Service")["spec"]["selector"].update({"app.kubernetes.io/name": "other"}),
        policy.selectors_match_pods,
        "Service/ml-inference: its selector matches no pod",
    ),
    "pdb selects nothing": (
        lambda m: _only(m, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"].update(
            {"app.kubernetes.io/name": "other"}
        ),
        policy.selectors_match_pods,
        "PodDisruptionBudget/ml-inference: its selector matches no pod",
    ),
    "hpa targets nothing": (
        lambda m: _only(m, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"].update(name="other"),
        policy.selectors_match_pods,
        "scaleTargetRef",
    ),
    "service targets a missing port": (
        lambda m: _only(m, "Service")["spec"]["ports"][0].update(targetPort=9999),
        policy.service_targets_container_port,
        "targetPort 9999",
    ),
    "network policy shuts the port": (
        lambda m: _only(m, "NetworkPolicy")["spec"]["ingress"][0]["ports"][0].update(port=9999),
        policy.network_policy_admits_service_and_prometheus,
        "admits the service's container port",
    ),
    "network policy shuts prometheus out": (
        lambda m: _only(m, "NetworkPolicy")["spec"]["ingress"][0]["from"].pop(1),
        policy.network_policy_admits_service_and_prometheus,
        "admit Prometheus",
    ),
    "replicas in git beside an hpa": (
        lambda m: _set_replicas(m, 3),
        policy.replicas_owned_once,
        "remove spec.replicas",
    ),
    "pdb blocks every drain": (
        lambda m: _only(m, "PodDisruptionBudget")["spec"].update(maxUnavailable=0),
        policy.disruption_budget_coherent,
        "allows no disruption",
    ),
    "pdb with one replica": (
        lambda m: (_remove_hpa(m), _set_replicas(m, 1)),
        policy.disruption_budget_coherent,
        "at least 2 replicas",
    ),
    "latest image": (
        lambda m: _container(m).update(image="ml-inference:latest"),
        policy.image_pinned,
        "not pinned",
    ),
    "untagged image": (
        lambda m: _container(m).update(image="ml-inference"),
        policy.image_pinned,
        "not pinned",
    ),
    "token mounted": (
        lambda m: _pod(m).pop("automountServiceAccountToken"),
        policy.service_account_token_not_mounted,
        "automountServiceAccountToken",
    ),
    "no preStop": (
        lambda m: _container(m).pop("lifecycle"),
        policy.drain_fits_grace_period,
        "lifecycle.preStop.sleep.seconds",
    ),
    "exec preStop": (
        lambda m: _container(m).update(lifecycle={"preStop": {"exec": {"command": ["sleep", "5"]}}}),
        policy.drain_fits_grace_period,
        "an exec preStop needs a shell",
    ),
    "zero preStop sleep": (
        lambda m: _container(m).update(lifecycle={"preStop": {"sleep": {"seconds": 0}}}),
        policy.drain_fits_grace_period,
        "an integer of at least 1",
    ),
    "settle from a ConfigMap": (
        lambda m: _from_config_map(_env(m, "ML_INFERENCE_SETTLE_SECONDS")),
        policy.drain_fits_grace_period,
        "ML_INFERENCE_SETTLE_SECONDS must be a literal number",
    ),
    "grace period shorter than the drain": (
        lambda m: _pod(m).update(terminationGracePeriodSeconds=20),
        policy.drain_fits_grace_period,
        "terminationGracePeriodSeconds 20",
    ),
}


def _env(manifests: Manifests, name: str) -> dict[str, Any]:
    (variable,) = [v for v in _container(manifests)["env"] if v["name"] == name]
    return variable


def _from_config_map(variable: dict[str, Any]) -> None:
    del variable["value"]
    variable["valueFrom"] = {"configMapKeyRef": {"name": "timings", "key": variable["name"]}}


#: Breakages that rightly trip a second check too (a PDB that selects nothing protects no pod).
CASCADES = {
    "pdb selects nothing": policy.disruption_budget_coherent,
    "hpa targets nothing": policy.disruption_budget_coherent,
}


def test_every_overlay_passes_every_policy() -> None:
    require_program("kubectl")
    for overlay in overlays():
        assert policy.check(render(overlay)) == [], overlay.name


def test_every_check_has_a_breakage() -> None:
    covered = {check for _, check, _ in BREAKAGES.values()}
    assert covered == set(policy.CHECKS)


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_check_fails_on_its_breakage(kubernetes_overlay: Manifests, breakage: str) -> None:
    mutate, check, expected = BREAKAGES[breakage]
    broken = copy.deepcopy(kubernetes_overlay)
    mutate(broken)
    problems = check(broken)
    assert any(expected in problem for problem in problems), problems
    quiet = [other for other in policy.CHECKS if other not in (check, CASCADES.get(breakage))]
    others = [p for other in quiet for p in other(broken)]
    assert others == [], f"{breakage} also tripped: {others}"


def test_pinned_digest_without_tag_passes() -> None:
    deployment = {
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {
            "template": {"spec": {"containers": [{"name": "x", "image": f"ml-inference@sha256:{'a' * 64}"}]}}
        },
    }
    assert policy.image_pinned([deployment]) == []


def _with_init_container(manifests: Manifests) -> dict[str, Any]:
    """Give the pod an init container hardened like the service's (no ports or probes: it exits)."""
    init = copy.deepcopy(_container(manifests))
    for key in ("ports", "startupProbe", "readinessProbe", "livenessProbe", "env"):
        init.pop(key, None)
    init.update(name="prepare", command=["python", "-c", "pass"])
    _pod(manifests)["initContainers"] = [init]
    return init


INIT_CONTAINER_BREAKAGES: dict[str, tuple[Callable[[dict[str, Any]], None], policy.Check, str]] = {
    "root": (lambda c: c["securityContext"].update(runAsUser=0), policy.pod_security_restricted, "runAsUser"),
    "escalation": (
        lambda c: c["securityContext"].update(allowPrivilegeEscalation=True),
        policy.pod_security_restricted,
        "allowPrivilegeEscalation",
    ),
    "no /tmp": (lambda c: c.pop("volumeMounts"), policy.writable_tmp, "emptyDir at /tmp"),
    "unbounded": (lambda c: c.pop("resources"), policy.resources_bounded, "limits.cpu"),
    "latest": (lambda c: c.update(image="busybox:latest"), policy.image_pinned, "not pinned"),
}


def test_a_hardened_init_container_passes(kubernetes_overlay: Manifests) -> None:
    manifests = copy.deepcopy(kubernetes_overlay)
    _with_init_container(manifests)
    assert policy.check(manifests) == []


@pytest.mark.parametrize("breakage", INIT_CONTAINER_BREAKAGES)
def test_workload_rules_cover_init_containers(kubernetes_overlay: Manifests, breakage: str) -> None:
    mutate, check, expected = INIT_CONTAINER_BREAKAGES[breakage]
    manifests = copy.deepcopy(kubernetes_overlay)
    mutate(_with_init_container(manifests))
    problems = check(manifests)
    assert any("container prepare" in p and expected in p for p in problems), problems


def test_workload_rules_cover_every_pod_template_kind() -> None:
    statefulset = {
        "kind": "StatefulSet",
        "metadata": {"name": "x"},
        "spec": {"template": {"spec": {"containers": [{"name": "x", "image": "x:latest"}]}}},
    }
    assert any("StatefulSet/x" in p for p in policy.pod_security_restricted([statefulset]))
    assert any("StatefulSet/x" in p for p in policy.image_pinned([statefulset]))


def _drain_problems(manifests: Manifests, *, grace: int | None, env: dict[str, str | None]) -> list[str]:
    broken = copy.deepcopy(manifests)
    if grace is None:
        _pod(broken).pop("terminationGracePeriodSeconds")
    else:
        _pod(broken)["terminationGracePeriodSeconds"] = grace
    container = _container(broken)
    container["env"] = [v for v in container["env"] if v["name"] not in env]
    container["env"] += [{"name": name, "value": value} for name, value in env.items() if value is not None]
    return policy.drain_fits_grace_period(broken)


def test_the_drain_must_end_before_the_grace_period_and_the_message_names_all_four(
    kubernetes_overlay: Manifests,
) -> None:
    prestop = _container(kubernetes_overlay)["lifecycle"]["preStop"]["sleep"]["seconds"]
    settle, drain = 2.5, 20.0
    grace = math.floor(prestop + settle + drain)
    env = {"ML_INFERENCE_SETTLE_SECONDS": str(settle), "ML_INFERENCE_DRAIN_TIMEOUT_SECONDS": str(drain)}
    (problem,) = _drain_problems(kubernetes_overlay, grace=grace, env=env)
    numbers = (f"terminationGracePeriodSeconds {grace}", f"preStop {prestop}", "settle 2.5", "drain 20.0")
    for number in numbers:
        assert number in problem
    assert "change them together" in problem
    assert _drain_problems(kubernetes_overlay, grace=grace + 1, env=env) == []


def test_absent_timings_count_as_the_services_defaults(kubernetes_overlay: Manifests) -> None:
    prestop = _container(kubernetes_overlay)["lifecycle"]["preStop"]["sleep"]["seconds"]
    absent: dict[str, str | None] = dict.fromkeys(policy.drain_defaults())
    total = prestop + sum(policy.drain_defaults().values())
    assert _drain_problems(kubernetes_overlay, grace=math.ceil(total) + 1, env=absent) == []
    (problem,) = _drain_problems(kubernetes_overlay, grace=math.floor(total), env=absent)
    assert "(the service's default)" in problem
    # No grace period: Kubernetes' default of 30 s, enough for the defaults.
    assert _drain_problems(kubernetes_overlay, grace=None, env=absent) == []


def test_the_checks_defaults_are_the_services_settings() -> None:
    from ml_inference.settings import Settings

    assert policy.drain_defaults() == {
        "ML_INFERENCE_SETTLE_SECONDS": Settings.model_fields["settle_seconds"].default,
        "ML_INFERENCE_DRAIN_TIMEOUT_SECONDS": Settings.model_fields["drain_timeout_seconds"].default,
    }
