"""What reaches the cluster: every rule file and dashboard shipped (the dashboard current), and the
rendered in-cluster stack: workload policy, the repo's rules loaded, no Grafana password in Git.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from pipeline.gitops.checks import policy
from pipeline.gitops.checks.observability.layout import DASHBOARDS, KUSTOMIZATION, OBSERVABILITY, RULES
from pipeline.gitops.render import Manifest, RenderError, name_of, render

#: The policies that hold for any workload; the rest are about ml-inference itself (probe paths,
#: spreading replicas, HPA, NetworkPolicy) or do not fit Prometheus, which needs its API token.
WORKLOAD_POLICIES = (
    policy.pod_security_restricted,
    policy.resources_bounded,
    policy.image_pinned,
    policy.selectors_match_pods,
    policy.service_targets_container_port,
)
PROMETHEUS_CONFIG_MAP = "prometheus-config"
PROMETHEUS_RULES_CONFIG_MAP = "prometheus-rules"
GRAFANA_PASSWORD_FILE_ENV = "GF_SECURITY_ADMIN_PASSWORD__FILE"
DASHBOARD_GENERATOR = OBSERVABILITY / "grafana" / "dashboard.py"


def check_generated_dashboard(repo_root: Path) -> list[str]:
    result = subprocess.run(
        [sys.executable, str(repo_root / DASHBOARD_GENERATOR), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return [] if result.returncode == 0 else [(result.stdout + result.stderr).strip()]


def check_shipped_to_cluster(repo_root: Path) -> list[str]:
    """Every rule file and dashboard is in a configMapGenerator (kustomize has no globs)."""
    kustomization = yaml.safe_load((repo_root / KUSTOMIZATION).read_text())
    shipped = {
        (OBSERVABILITY / entry.rpartition("=")[2]).as_posix()
        for generator in kustomization.get("configMapGenerator", [])
        for entry in generator.get("files", [])
    }
    local = [*sorted((repo_root / RULES).glob("*.yml")), *sorted((repo_root / DASHBOARDS).glob("*.json"))]
    return [
        f"{KUSTOMIZATION}: {path.relative_to(repo_root).as_posix()} is not in any configMapGenerator, so "
        f"the cluster would not load it; list it there"
        for path in local
        if path.relative_to(repo_root).as_posix() not in shipped
    ]


def _config_map(objects: list[Manifest], generated_name: str) -> Manifest | None:
    """The ConfigMap kustomize generated as `generated_name` (it appends a content hash)."""
    for manifest in objects:
        name = manifest["metadata"]["name"]
        if manifest.get("kind") == "ConfigMap" and name.rpartition("-")[0] == generated_name:
            return manifest
    return None


def _mount_path(deployment: Manifest, config_map: Manifest) -> str | None:
    """Where the Deployment's first container mounts `config_map` (the file itself for a subPath)."""
    pod = deployment["spec"]["template"]["spec"]
    volumes = {
        v["name"]
        for v in pod.get("volumes", [])
        if v.get("configMap", {}).get("name") == config_map["metadata"]["name"]
    }
    mounts = pod["containers"][0].get("volumeMounts", [])
    return next((mount["mountPath"] for mount in mounts if mount["name"] in volumes), None)


def _rules_loaded_as_in_git(repo_root: Path, objects: list[Manifest]) -> list[str]:
    """The cluster's Prometheus loads the repo's rule files, unchanged, from where its config says."""
    config_map = _config_map(objects, PROMETHEUS_CONFIG_MAP)
    rules_map = _config_map(objects, PROMETHEUS_RULES_CONFIG_MAP)
    prometheus = next((m for m in objects if name_of(m) == "Deployment/prometheus"), None)
    if config_map is None or rules_map is None or prometheus is None:
        return [
            f"{KUSTOMIZATION}: render Deployment/prometheus with the {PROMETHEUS_CONFIG_MAP} and "
            f"{PROMETHEUS_RULES_CONFIG_MAP} ConfigMaps"
        ]
    in_git = {path.name: path.read_text() for path in sorted((repo_root / RULES).glob("*.yml"))}
    problems = []
    if rules_map.get("data", {}) != in_git:
        problems.append(
            f"{KUSTOMIZATION}: the {PROMETHEUS_RULES_CONFIG_MAP} ConfigMap differs from {RULES}/*.yml"
        )
    config_path = _mount_path(prometheus, config_map)
    rules_path = _mount_path(prometheus, rules_map)
    config = yaml.safe_load(next(iter(config_map.get("data", {}).values()), "")) or {}
    expected = {f"{rules_path}/*.yml"}
    resolved = {str(Path(config_path or "/").parent / pattern) for pattern in config.get("rule_files", [])}
    if config_path is None or rules_path is None or resolved != expected:
        problems.append(
            f"Deployment/prometheus: its config looks for rules at {sorted(resolved)} but the rules are "
            f"mounted at {rules_path}; mount {PROMETHEUS_RULES_CONFIG_MAP} next to the config file"
        )
    return problems


def _grafana_password_generated(objects: list[Manifest]) -> list[str]:
    """No Secret, no password in env: Grafana reads one its pod generated into an emptyDir."""
    problems = [
        f"{name_of(m)}: no Secret belongs in Git; generate credentials in the cluster"
        for m in objects
        if m.get("kind") == "Secret"
    ]
    grafana = next((m for m in objects if name_of(m) == "Deployment/grafana"), None)
    if grafana is None:
        return [*problems, f"{KUSTOMIZATION}: render Deployment/grafana"]
    pod = grafana["spec"]["template"]["spec"]
    container = next(c for c in pod["containers"] if c["name"] == "grafana")
    env = {e["name"]: e for e in container.get("env", [])}
    if "GF_SECURITY_ADMIN_PASSWORD" in env:
        problems.append(
            "Deployment/grafana: remove GF_SECURITY_ADMIN_PASSWORD; the password must not be in Git"
        )
    password_file = env.get(GRAFANA_PASSWORD_FILE_ENV, {}).get("value", "")
    mounts = [m for m in container.get("volumeMounts", []) if password_file.startswith(m["mountPath"] + "/")]
    if not any(m["name"] in policy.empty_dirs(pod) for m in mounts):
        problems.append(
            f"Deployment/grafana: set {GRAFANA_PASSWORD_FILE_ENV} to a file in an emptyDir that an init "
            "container fills with a random password"
        )
    return problems


def check_cluster_stack(repo_root: Path) -> list[str]:
    try:
        objects = render(repo_root / OBSERVABILITY)
    except RenderError as error:
        return [str(error)]
    problems = [problem for rule in WORKLOAD_POLICIES for problem in rule(objects)]
    problems += policy.writable_tmp(objects)
    problems += _rules_loaded_as_in_git(repo_root, objects)
    problems += _grafana_password_generated(objects)
    return problems
