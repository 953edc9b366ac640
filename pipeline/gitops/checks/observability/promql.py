"""Every metric a rule or dashboard query names (parsed as PromQL) is one that exists.

What the service exports is the snapshot observability/exported-metrics.txt; `scrape_service`
regenerates it from the real app.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import promql_parser
from prometheus_client.parser import text_string_to_metric_families

from pipeline.gitops.checks.observability.alerts import rules
from pipeline.gitops.checks.observability.layout import DASHBOARDS, EXPORTED_METRICS
from pipeline.samples import VIRGINICA, batch_body, predict_body

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


def exported_series_names(metrics_text: str) -> set[str]:
    """Every series name a /metrics text lets PromQL select, declared families included."""
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_count", "_sum"),
        "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
        "summary": ("", "_count", "_sum"),
        "info": ("_info",),
    }
    names: set[str] = set()
    for family in text_string_to_metric_families(metrics_text):
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


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
            client.post("/predict", json=predict_body())
            client.post("/predict/batch", json=batch_body([VIRGINICA]))
            client.post("/predict", json={"features": "bad"})
            return client.get("/metrics").text


def metric_names(expr: str) -> set[str | None]:
    """Names selected by `expr` (Grafana interval variables allowed); raises ValueError if invalid.

    None stands for a selector whose name cannot be known.
    """
    names: set[str | None] = set()

    def select(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            equal = promql_parser.MatchOp.Equal
            by_matcher = [m.value for m in node.matchers.matchers if m.name == "__name__" and m.op == equal]
            names.update([node.name] if node.name else by_matcher or [None])

    promql_parser.walk(promql_parser.parse(GRAFANA_INTERVALS.sub("5m", expr)), select)
    return names


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
