"""Where observability/ keeps each thing, and the names and limits the checks hold it to."""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.gitops.checks import policy

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
