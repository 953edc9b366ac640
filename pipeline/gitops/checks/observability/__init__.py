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

One module per concern: `promtool`, `alerts`, `promql` (with the exported-metrics snapshot),
`cluster_stack` (with what is shipped to it); `layout` holds the paths.

Usage: python -m pipeline.gitops.checks.observability [--metrics-file FILE] [--update-exported-metrics]
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pipeline.gitops.checks.observability.alerts import check_alert_style, check_alert_tests
from pipeline.gitops.checks.observability.cluster_stack import (
    check_cluster_stack,
    check_generated_dashboard,
    check_shipped_to_cluster,
)
from pipeline.gitops.checks.observability.layout import RULE_TESTS, RULES
from pipeline.gitops.checks.observability.promql import (
    check_metric_names,
    exported_series_names,
    read_exported_snapshot,
)
from pipeline.gitops.checks.observability.promtool import check_configs, promtool_on_folder


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
        problems += promtool_on_folder(repo_root, promtool, RULES, "rule", "check", "rules")
        problems += promtool_on_folder(repo_root, promtool, RULE_TESTS, "rule test", "test", "rules")
    problems += check_alert_style(repo_root)
    problems += check_alert_tests(repo_root)
    exported = exported_series_names(metrics_text) if metrics_text else read_exported_snapshot(repo_root)
    problems += check_metric_names(repo_root, exported)
    problems += check_generated_dashboard(repo_root)
    problems += check_shipped_to_cluster(repo_root)
    problems += check_cluster_stack(repo_root)
    return problems
