"""Where observability/ keeps what more than one check reads."""

from __future__ import annotations

from pathlib import Path

OBSERVABILITY = Path("observability")
PROMETHEUS = OBSERVABILITY / "prometheus"
RULES = PROMETHEUS / "rules"
RULE_TESTS = PROMETHEUS / "tests"
DASHBOARDS = OBSERVABILITY / "grafana" / "dashboards"
KUSTOMIZATION = OBSERVABILITY / "kustomization.yaml"
EXPORTED_METRICS = OBSERVABILITY / "exported-metrics.txt"
