"""Offline checks of observability/: Prometheus configs, alert rules and their tests, dashboards.

`check(repo_root)` returns problems, one sentence each naming the file and the fix:

- `promtool check config` for the local and the in-cluster Prometheus config, `promtool check
  rules` for every rule file and `promtool test rules` for every rule test file;
- every alert follows the house style (prefix, severity, summary, description, a runbook_url
  whose anchor exists in observability/runbook.md) and has a rule test on both sides of its
  `for:` window: a quiet case at most one evaluation interval before a firing case;
- every metric named in a rule or a dashboard query (parsed as PromQL, not grepped) is one the
  service exports, a recording rule defines, or Prometheus writes itself (`up`, `ALERTS`, ...);
- generated files are current (the dashboard JSON, the exported-metrics snapshot) and every
  rule file and dashboard is shipped to the cluster by observability/kustomization.yaml;
- the rendered in-cluster stack meets the workload policies of `pipeline.gitops.checks.policy` (init
  containers included), loads exactly the repo's rule files where its config looks for them, and
  keeps Grafana's admin password out of Git: generated in the pod, read from a file.

What the service exports is read from observability/exported-metrics.txt, a snapshot made by
scraping the real service (`--update-exported-metrics` builds the app with the trained model and
rewrites it; the test suite proves it current), or from a /metrics text given with
`--metrics-file`.

Usage: python -m pipeline.gitops.checks.observability [--metrics-file FILE] [--update-exported-metrics]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import yaml
from prometheus_client.parser import text_string_to_metric_families

from pipeline.gitops.checks import policy
from pipeline.gitops.render import Manifest, RenderError, name_of, render

OBSERVABILITY = Path("observability")
PROMETHEUS = OBSERVABILITY / "prometheus"
CONFIGS = (PROMETHEUS / "local.yml", PROMETHEUS / "kubernetes.yml")
RULES = PROMETHEUS / "rules"
RULE_TESTS = PROMETHEUS / "tests"
DASHBOARDS = OBSERVABILITY / "grafana" / "dashboards"
DASHBOARD_GENERATOR = OBSERVABILITY / "grafana" / "dashboard.py"
RUNBOOK = OBSERVABILITY / "runbook.md"
KUSTOMIZATION = OBSERVABILITY / "kustomization.yaml"
EXPORTED_METRICS = OBSERVABILITY / "exported-metrics.txt"

ALERT_PREFIX = "MLInference"
SEVERITIES = ("critical", "warning", "info")
#: Series Prometheus writes itself for every target and alert; no exporter provides them.
PROMETHEUS_SERIES = frozenset(
    {
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
        "ALERTS",
        "ALERTS_FOR_STATE",
    }
)
#: Grafana's interval variables, replaced by a duration so the query parses as PromQL.
GRAFANA_INTERVALS = re.compile(r"\$\{?__(rate_interval|interval|range)\}?")
#: The Debian build of Prometheus 2.x leaves Kubernetes discovery out; promtool then rejects it.
NO_KUBERNETES_SD = "field kubernetes_sd_configs not found"
KUBERNETES_SD_ROLES = ("node", "service", "pod", "endpoints", "endpointslice", "ingress")
PROMTOOL_TIMEOUT_SECONDS = 120
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


# --- promtool ------------------------------------------------------------------------------------


def _promtool(promtool: str, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=PROMTOOL_TIMEOUT_SECONDS,
        check=False,
    )


def _failure(what: str, result: subprocess.CompletedProcess[str]) -> str:
    output = (result.stdout + result.stderr).strip()
    return f"{what} failed:\n{output}"


def _without_kubernetes_sd(config: Path) -> tuple[dict[str, Any], list[str]]:
    """`config` with Kubernetes discovery swapped for a static target, and problems in what was cut.

    Lets a promtool built without Kubernetes discovery still check the rest of the file (rule
    files, relabelling, intervals); the discovery blocks themselves are checked here for their role.
    """
    data = yaml.safe_load(config.read_text())
    problems = []
    for job in data.get("scrape_configs", []):
        for sd in job.pop("kubernetes_sd_configs", None) or []:
            if sd.get("role") not in KUBERNETES_SD_ROLES:
                problems.append(
                    f"{config}: job {job.get('job_name')!r} has kubernetes_sd role {sd.get('role')!r}; "
                    f"use one of {', '.join(KUBERNETES_SD_ROLES)}"
                )
            job.setdefault("static_configs", []).append({"targets": ["kubernetes-sd.invalid:80"]})
    # Relative rule paths must still resolve against the original file's directory.
    data["rule_files"] = [str((config.parent / pattern).resolve()) for pattern in data.get("rule_files", [])]
    return data, problems


def check_configs(repo_root: Path, promtool: str) -> list[str]:
    problems = []
    for config in CONFIGS:
        result = _promtool(promtool, "check", "config", config, cwd=repo_root)
        if result.returncode != 0 and NO_KUBERNETES_SD in result.stdout + result.stderr:
            stripped, problems_cut = _without_kubernetes_sd(repo_root / config)
            problems += problems_cut
            with tempfile.TemporaryDirectory() as tmp:
                copy = Path(tmp) / config.name
                copy.write_text(yaml.safe_dump(stripped))
                result = _promtool(promtool, "check", "config", copy, cwd=repo_root)
        if result.returncode != 0:
            problems.append(_failure(f"promtool check config {config}", result))
    return problems


def _promtool_on_folder(repo_root: Path, promtool: str, folder: Path, what: str, *command: str) -> list[str]:
    """`promtool <command>` over every *.yml file of `folder`, which must hold at least one `what` file."""
    files = sorted((repo_root / folder).glob("*.yml"))
    if not files:
        return [f"{folder}/ has no *.yml {what} file"]
    result = _promtool(promtool, *command, *files, cwd=repo_root)
    what_ran = f"promtool {' '.join(command)} {folder}/*.yml"
    return [] if result.returncode == 0 else [_failure(what_ran, result)]


def check_rules(repo_root: Path, promtool: str) -> list[str]:
    return _promtool_on_folder(repo_root, promtool, RULES, "rule", "check", "rules")


def run_rule_tests(repo_root: Path, promtool: str) -> list[str]:
    return _promtool_on_folder(repo_root, promtool, RULE_TESTS, "rule test", "test", "rules")


# --- alerts: style and test coverage -------------------------------------------------------------


def rules(repo_root: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted((repo_root / RULES).glob("*.yml")):
        data = yaml.safe_load(path.read_text()) or {}
        for group in data.get("groups", []):
            for rule in group.get("rules", []):
                yield path.relative_to(repo_root), rule


def _github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def check_alert_style(repo_root: Path) -> list[str]:
    runbook = repo_root / RUNBOOK
    anchors = {
        _github_anchor(line.lstrip("#"))
        for line in (runbook.read_text().splitlines() if runbook.exists() else [])
        if line.startswith("#")
    }
    problems = []
    for path, rule in rules(repo_root):
        name = rule.get("alert")
        if name is None:
            continue
        where = f"{path}: alert {name}"
        if not re.fullmatch(rf"{ALERT_PREFIX}(?:[A-Z][a-z0-9]*)+", name):
            problems.append(f"{where}: name it in CamelCase starting with {ALERT_PREFIX}")
        severity = (rule.get("labels") or {}).get("severity")
        if severity not in SEVERITIES:
            problems.append(f"{where}: label severity is {severity!r}; use one of {', '.join(SEVERITIES)}")
        annotations = rule.get("annotations") or {}
        summary = annotations.get("summary", "")
        if not summary.endswith("."):
            problems.append(f"{where}: annotation summary must be a sentence ending in a period")
        if not annotations.get("description"):
            problems.append(f"{where}: add a description annotation")
        runbook_url = annotations.get("runbook_url", "")
        target, _, anchor = runbook_url.partition("#")
        if not target.endswith(str(RUNBOOK)) or anchor not in anchors:
            problems.append(
                f"{where}: runbook_url {runbook_url!r} must point at a section of {RUNBOOK} "
                f"(expected {RUNBOOK}#{_github_anchor(name)})"
            )
    return problems


def _duration_seconds(text: str | int | None, default: float) -> float:
    """Seconds in a Prometheus duration such as "1m30s"."""
    if text is None:
        return default
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", str(text))
    if not parts:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(number) * units[unit] for number, unit in parts)


def check_alert_tests(repo_root: Path) -> list[str]:
    """Every alert needs, in one test group, a quiet case within one evaluation of a firing case."""
    covered: set[str] = set()
    for path in sorted((repo_root / RULE_TESTS).glob("*.yml")):
        data = yaml.safe_load(path.read_text()) or {}
        interval = _duration_seconds(data.get("evaluation_interval"), 60)
        for test in data.get("tests", []):
            quiet: dict[str, list[float]] = {}
            firing: dict[str, list[float]] = {}
            for case in test.get("alert_rule_test", []):
                side = firing if case.get("exp_alerts") else quiet
                side.setdefault(case["alertname"], []).append(_duration_seconds(case["eval_time"], 0))
            for alert, fire_times in firing.items():
                if any(0 < fire - calm <= interval for fire in fire_times for calm in quiet.get(alert, [])):
                    covered.add(alert)
    return [
        f"{path}: alert {rule['alert']} has no test on both sides of its for: window; add to {RULE_TESTS}/ "
        f"a case expecting no alert one evaluation before a case expecting it to fire"
        for path, rule in rules(repo_root)
        if "alert" in rule and rule["alert"] not in covered
    ]


# --- metric names --------------------------------------------------------------------------------


def exported_series_names(metrics_text: str) -> set[str]:
    """Every series name a /metrics text lets PromQL select, declared families included."""
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_count", "_sum"),
        "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
        "summary": ("", "_count", "_sum"),
        "info": ("_info",),
    }
    names = set()
    for family in text_string_to_metric_families(metrics_text):
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def _selected_names(node: Any) -> Iterator[str | None]:
    """Metric names a PromQL AST selects; None for a selector whose name cannot be known."""
    if isinstance(node, promql_parser.VectorSelector):
        if node.name:
            yield node.name
            return
        names = [
            m.value
            for m in node.matchers.matchers
            if m.name == "__name__" and m.op == promql_parser.MatchOp.Equal
        ]
        yield from names or [None]
    elif isinstance(node, promql_parser.MatrixSelector):
        yield from _selected_names(node.vector_selector)
    elif isinstance(node, promql_parser.Call):
        for arg in node.args:
            yield from _selected_names(arg)
    elif isinstance(node, promql_parser.BinaryExpr):
        yield from _selected_names(node.lhs)
        yield from _selected_names(node.rhs)
    elif isinstance(node, promql_parser.AggregateExpr):
        yield from _selected_names(node.expr)
        if node.param is not None:
            yield from _selected_names(node.param)
    elif isinstance(node, promql_parser.UnaryExpr | promql_parser.ParenExpr | promql_parser.SubqueryExpr):
        yield from _selected_names(node.expr)


def metric_names(expr: str) -> set[str | None]:
    """Names selected by `expr` (Grafana interval variables allowed); raises ValueError if invalid."""
    return set(_selected_names(promql_parser.parse(GRAFANA_INTERVALS.sub("5m", expr))))


def _queries(repo_root: Path) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every rule and every dashboard panel query."""
    for path, rule in rules(repo_root):
        kind = "alert" if "alert" in rule else "record"
        yield f"{path}: {kind} {rule[kind]}", rule["expr"]
    for path in sorted((repo_root / DASHBOARDS).glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in dashboard.get("panels", []):
            for target in panel.get("targets", []):
                if "expr" in target:
                    yield f"{path.relative_to(repo_root)}: panel {panel.get('title')!r}", target["expr"]


def check_metric_names(repo_root: Path, exported: set[str]) -> list[str]:
    recorded = {rule["record"] for _, rule in rules(repo_root) if "record" in rule}
    known = exported | recorded | PROMETHEUS_SERIES
    problems = []
    for where, expr in _queries(repo_root):
        try:
            names = metric_names(str(expr))
        except ValueError as error:
            problems.append(f"{where}: invalid PromQL ({error}): {expr}")
            continue
        if None in names:
            problems.append(f"{where}: select metrics by exact name so they can be checked: {expr}")
        for name in sorted(n for n in names - known if n is not None):
            problems.append(
                f"{where}: metric {name} is not exported by the service, recorded by a rule, or "
                f"written by Prometheus; use a name from {EXPORTED_METRICS}"
            )
    return problems


# --- generated files and what the cluster ships --------------------------------------------------


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
    for mount in pod["containers"][0].get("volumeMounts", []):
        if mount["name"] in volumes:
            return mount["mountPath"]
    return None


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
    empty_dirs = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
    container = next(c for c in pod["containers"] if c["name"] == "grafana")
    env = {e["name"]: e for e in container.get("env", [])}
    if "GF_SECURITY_ADMIN_PASSWORD" in env:
        problems.append(
            "Deployment/grafana: remove GF_SECURITY_ADMIN_PASSWORD; the password must not be in Git"
        )
    password_file = env.get(GRAFANA_PASSWORD_FILE_ENV, {}).get("value", "")
    mounts = [m for m in container.get("volumeMounts", []) if password_file.startswith(m["mountPath"] + "/")]
    if not any(m["name"] in empty_dirs for m in mounts):
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


def read_exported_snapshot(repo_root: Path) -> set[str]:
    lines = (repo_root / EXPORTED_METRICS).read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def render_exported_snapshot(names: set[str]) -> str:
    header = (
        "# Series names the ml-inference service exports, scraped from the real app.\n"
        "# Generated: python -m pipeline.gitops.checks.observability --update-exported-metrics\n"
    )
    return header + "".join(f"{name}\n" for name in sorted(names))


def scrape_service() -> str:
    """/metrics of the real service, built by its factory with a freshly trained model.

    Needs the service installed with its `train` and `test` extras (the `tests` session has them).
    One request of each kind runs first, so labelled families carry samples too.
    """
    from fastapi.testclient import TestClient
    from ml_inference.app import create_app
    from ml_inference.settings import Settings
    from ml_inference.train import train

    with tempfile.TemporaryDirectory() as model_dir:
        train(Path(model_dir))
        with TestClient(create_app(Settings(model_dir=Path(model_dir)))) as client:
            for _ in range(500):
                if client.get("/ready").status_code == 200:
                    break
                time.sleep(0.02)
            client.post("/predict", json={"features": [5.1, 3.5, 1.4, 0.2]})
            client.post("/predict/batch", json={"instances": [[6.7, 3.0, 5.2, 2.3]]})
            client.post("/predict", json={"features": "bad"})
            return client.get("/metrics").text


def check(repo_root: Path, metrics_text: str | None = None) -> list[str]:
    """Every problem in observability/ (empty when all is well); see the module docstring."""
    problems = []
    promtool = shutil.which("promtool")
    if promtool is None:
        problems.append(
            "promtool not found on PATH; install Prometheus (Debian: apt-get install prometheus) "
            "to check the configs and run the rule tests"
        )
    else:
        problems += check_configs(repo_root, promtool)
        problems += check_rules(repo_root, promtool)
        problems += run_rule_tests(repo_root, promtool)
    problems += check_alert_style(repo_root)
    problems += check_alert_tests(repo_root)
    exported = exported_series_names(metrics_text) if metrics_text else read_exported_snapshot(repo_root)
    problems += check_metric_names(repo_root, exported)
    problems += check_generated_dashboard(repo_root)
    problems += check_shipped_to_cluster(repo_root)
    problems += check_cluster_stack(repo_root)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.gitops.checks.observability", description=__doc__)
    parser.add_argument("--metrics-file", type=Path, help="a /metrics text to take exported names from")
    parser.add_argument(
        "--update-exported-metrics",
        action="store_true",
        help=f"scrape the real service and rewrite {EXPORTED_METRICS}",
    )
    args = parser.parse_args(argv)
    repo_root = Path.cwd()
    if args.update_exported_metrics:
        names = exported_series_names(scrape_service())
        (repo_root / EXPORTED_METRICS).write_text(render_exported_snapshot(names))
        print(f"wrote {EXPORTED_METRICS}")
        return 0
    metrics_text = args.metrics_file.read_text() if args.metrics_file else None
    problems = check(repo_root, metrics_text)
    for problem in problems:
        print(f"observability: {problem}", file=sys.stderr)
    print(f"observability: {'FAILED' if problems else 'ok'} ({len(problems)} problems)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
