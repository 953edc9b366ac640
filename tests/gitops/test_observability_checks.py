"""The offline observability checks pass on the repo and fail on each kind of breakage.

Each failure test breaks one thing in a copy of observability/ and asserts that the check made
for it reports it, naming the file or alert.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from pipeline.gitops.checks import observability
from pipeline.gitops.checks.observability import promql
from pipeline.gitops.checks.observability.layout import EXPORTED_METRICS
from tests.helpers import require_program

REPO_ROOT = Path(__file__).resolve().parents[2]
RULES_FILE = "observability/prometheus/rules/ml-inference.yml"
TESTS_FILE = "observability/prometheus/tests/ml-inference.yml"
DASHBOARD_FILE = "observability/grafana/dashboards/ml-inference.json"

NEW_ALERT = {
    "alert": "MLInferenceTooManyInFlight",
    "expr": 'sum(ml_inference_requests_in_flight{job="ml-inference"}) > 100',
    "for": "5m",
    "labels": {"severity": "warning"},
    "annotations": {
        "summary": "Too many requests are in flight.",
        "description": "More than 100 requests are being served at once.",
        "runbook_url": "observability/runbook.md#mlinferencereplicadown",
    },
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of the repo's observability/ to break."""
    shutil.copytree(REPO_ROOT / "observability", tmp_path / "observability")
    return tmp_path


def _edit_yaml(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _alert_rules(data: dict) -> list[dict]:
    return [rule for group in data["groups"] for rule in group["rules"] if "alert" in rule]


def _problems_mentioning(problems: list[str], *words: str) -> list[str]:
    return [p for p in problems if all(word in p for word in words)]


def test_the_repo_passes_every_check() -> None:
    require_program("promtool")
    require_program("kubectl")
    assert observability.check(REPO_ROOT) == []


def test_a_broken_rule_file_fails_promtool_check_rules(repo: Path) -> None:
    require_program("promtool")
    rules = repo / RULES_FILE
    rules.write_text(
        rules.read_text().replace("rate(ml_inference_requests_total", "rate(ml_inference_requests_total[", 1)
    )
    problems = observability.check(repo)
    assert _problems_mentioning(problems, "promtool check rules", "failed")


def test_a_rule_test_with_a_wrong_expectation_fails_promtool_test_rules(repo: Path) -> None:
    require_program("promtool")
    tests = repo / TESTS_FILE
    tests.write_text(
        tests.read_text().replace(
            "severity: warning, job: ml-inference, instance",
            "severity: critical, job: ml-inference, instance",
            1,
        )
    )
    problems = observability.check(repo)
    assert _problems_mentioning(problems, "promtool test rules", "MLInferenceReplicaDown")


def test_an_alert_without_a_test_fails(repo: Path) -> None:
    _edit_yaml(repo / RULES_FILE, lambda data: data["groups"][0]["rules"].append(NEW_ALERT))
    problems = observability.check_alert_tests(repo)
    assert len(problems) == 1
    assert problems[0].startswith(
        f"{RULES_FILE}: alert MLInferenceTooManyInFlight has no test on both sides of its for: window"
    )


def test_an_alert_tested_only_while_firing_fails(repo: Path) -> None:
    def drop_quiet_cases(data: dict) -> None:
        for test in data["tests"]:
            test["alert_rule_test"] = [
                case
                for case in test.get("alert_rule_test", [])
                if case["alertname"] != "MLInferenceModelNotReady" or case["exp_alerts"]
            ]

    _edit_yaml(repo / TESTS_FILE, drop_quiet_cases)
    problems = observability.check_alert_tests(repo)
    assert len(problems) == 1 and "MLInferenceModelNotReady" in problems[0]


def test_a_quiet_case_far_before_the_firing_one_does_not_count(repo: Path) -> None:
    """'Not firing at minute 0' proves nothing about the end of a 15 minute `for:` window."""

    def move_quiet_case_early(data: dict) -> None:
        for test in data["tests"]:
            for case in test.get("alert_rule_test", []):
                if case["alertname"] == "MLInferenceModelVersionMismatch" and not case["exp_alerts"]:
                    case["eval_time"] = "1m"

    _edit_yaml(repo / TESTS_FILE, move_quiet_case_early)
    problems = observability.check_alert_tests(repo)
    assert len(problems) == 1 and "MLInferenceModelVersionMismatch" in problems[0]


def test_alert_style_violations_are_each_reported(repo: Path) -> None:
    def break_style(data: dict) -> None:
        alert = _alert_rules(data)[0]
        alert["alert"] = "replica_down"
        alert["labels"]["severity"] = "page"
        alert["annotations"]["summary"] = "replica down"
        alert["annotations"]["runbook_url"] = "observability/runbook.md#no-such-section"

    _edit_yaml(repo / RULES_FILE, break_style)
    problems = observability.check_alert_style(repo)
    assert len(problems) == 4
    for expected in ("CamelCase", "severity is 'page'", "ending in a period", "runbook_url"):
        assert _problems_mentioning(problems, "replica_down", expected)


def test_a_dashboard_using_an_unknown_metric_fails(repo: Path) -> None:
    path = repo / DASHBOARD_FILE
    dashboard = json.loads(path.read_text())
    dashboard["panels"][0]["targets"][0]["expr"] = 'sum(ml_inference_replicas_total{job="ml-inference"})'
    path.write_text(json.dumps(dashboard))
    problems = observability.check_metric_names(repo, observability.read_exported_snapshot(repo))
    assert len(problems) == 1
    assert problems[0].startswith(
        f"{DASHBOARD_FILE}: panel 'Replicas up': metric ml_inference_replicas_total is not exported"
    )


def test_a_rule_using_a_metric_the_service_does_not_export_fails(repo: Path) -> None:
    """Checked against a real /metrics text given as input, the way --metrics-file does."""
    metrics_text = "# TYPE ml_inference_model_ready gauge\nml_inference_model_ready 1\n"
    problems = observability.check_metric_names(repo, observability.exported_series_names(metrics_text))
    assert _problems_mentioning(
        problems, "record namespace_job:ml_inference_api_requests:rate5m", "ml_inference_requests_total"
    )
    assert not _problems_mentioning(problems, "MLInferenceModelNotReady")


def test_a_stale_generated_dashboard_fails(repo: Path) -> None:
    path = repo / DASHBOARD_FILE
    path.write_text(path.read_text().replace('"title": "ML inference"', '"title": "Edited by hand"'))
    problems = observability.check_generated_dashboard(repo)
    assert len(problems) == 1 and "is stale" in problems[0]


def test_a_rule_file_missing_from_the_kustomization_fails(repo: Path) -> None:
    shutil.copy(repo / RULES_FILE, repo / "observability/prometheus/rules/extra.yml")
    problems = observability.check_shipped_to_cluster(repo)
    assert problems == [
        "observability/kustomization.yaml: observability/prometheus/rules/extra.yml is not in any "
        "configMapGenerator, so the cluster would not load it; list it there"
    ]


@pytest.mark.parametrize("config", ["local.yml", "kubernetes.yml"])
def test_a_broken_prometheus_config_fails_promtool_check_config(repo: Path, config: str) -> None:
    promtool = require_program("promtool")
    path = repo / "observability/prometheus" / config
    path.write_text(path.read_text().replace("scrape_interval:", "scrape_intervall:", 1))
    problems = observability.check_configs(repo, promtool)
    assert _problems_mentioning(
        problems, f"promtool check config observability/prometheus/{config}", "failed"
    )


def test_an_unknown_kubernetes_discovery_role_fails(repo: Path) -> None:
    promtool = require_program("promtool")
    path = repo / "observability/prometheus/kubernetes.yml"
    path.write_text(path.read_text().replace("role: pod", "role: pods"))
    problems = observability.check_configs(repo, promtool)
    assert _problems_mentioning(problems, "kubernetes.yml", "pods")


def test_metric_names_come_from_the_promql_syntax_tree() -> None:
    expr = (
        'sum by (namespace, job) (rate(a_total{route!~"/metrics|b_total"}[$__rate_interval]))'
        ' / on (job) group_left (instance) {__name__="c"} or absent(up) * 0'
    )
    assert promql.metric_names(expr) == {"a_total", "c", "up"}
    assert promql.metric_names('{__name__=~"ml_.*"}') == {None}
    with pytest.raises(ValueError):
        promql.metric_names("sum(rate(a_total[5m])")


def test_the_exported_metrics_snapshot_matches_the_real_service() -> None:
    """Regenerate-then-compare: the snapshot is what the service built by its factory exports."""
    scraped = observability.exported_series_names(promql.scrape_service())
    committed = (REPO_ROOT / EXPORTED_METRICS).read_text()
    assert promql.render_exported_snapshot(scraped) == committed, (
        "the service's metrics changed; regenerate the snapshot: "
        "python -m pipeline.gitops.checks.observability --update-exported-metrics"
    )
    assert {"ml_inference_requests_total", "ml_inference_request_duration_seconds_bucket"} <= scraped


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_the_rendered_cluster_stack_passes(repo: Path) -> None:
    require_program("kubectl")
    assert observability.check_cluster_stack(repo) == []


def test_an_init_container_that_is_not_hardened_fails(repo: Path) -> None:
    require_program("kubectl")
    _replace(
        repo / "observability/kubernetes/grafana-deployment.yaml",
        "securityContext: &hardened",
        "securityContext: &hardened\n            privileged: true",
    )
    problems = observability.check_cluster_stack(repo)
    assert _problems_mentioning(
        problems, "Deployment/grafana container generate-admin-password", "privileged"
    )


def test_an_unpinned_image_fails(repo: Path) -> None:
    require_program("kubectl")
    _replace(repo / "observability/kustomization.yaml", "newTag: 12.4.3", "newTag: latest")
    problems = observability.check_cluster_stack(repo)
    assert _problems_mentioning(problems, "Deployment/grafana container grafana", "not pinned")


def test_a_grafana_password_in_git_fails(repo: Path) -> None:
    require_program("kubectl")
    _replace(
        repo / "observability/kubernetes/grafana-deployment.yaml",
        "name: GF_SECURITY_ADMIN_PASSWORD__FILE\n              value: /run/grafana-admin/password",
        "name: GF_SECURITY_ADMIN_PASSWORD\n              value: admin",
    )
    problems = observability.check_cluster_stack(repo)
    assert _problems_mentioning(problems, "remove GF_SECURITY_ADMIN_PASSWORD")
    assert _problems_mentioning(problems, "GF_SECURITY_ADMIN_PASSWORD__FILE")


def test_rules_mounted_where_the_cluster_config_does_not_look_fail(repo: Path) -> None:
    require_program("kubectl")
    _replace(
        repo / "observability/kubernetes/prometheus-deployment.yaml",
        "mountPath: /etc/prometheus/rules",
        "mountPath: /etc/rules",
    )
    problems = observability.check_cluster_stack(repo)
    assert _problems_mentioning(
        problems, "Deployment/prometheus", "/etc/prometheus/rules/*.yml", "/etc/rules"
    )
