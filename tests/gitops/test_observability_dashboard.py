"""The Grafana dashboard shows what the service exports, lays out cleanly and is provisioned as deployed."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlparse

import yaml

from pipeline.gitops.checks import observability
from pipeline.gitops.checks.observability.alerts import rules
from pipeline.gitops.checks.observability.promql import metric_names
from pipeline.gitops.render import render
from tests.helpers import require_program

REPO_ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = json.loads((REPO_ROOT / "observability/grafana/dashboards/ml-inference.json").read_text())
GRAFANA = REPO_ROOT / "observability/grafana"
#: Variables Grafana defines itself.
GRAFANA_BUILTINS = {"__rate_interval", "__interval", "__range"}


def _queries() -> list[str]:
    return [target["expr"] for panel in DASHBOARD["panels"] for target in panel["targets"]]


def _recorded_names() -> dict[str, set[str | None]]:
    """Each recording rule and the metric names its expression reads."""
    return {rule["record"]: metric_names(rule["expr"]) for _, rule in rules(REPO_ROOT) if "record" in rule}


def test_every_metric_the_service_exports_is_on_the_dashboard() -> None:
    recorded = _recorded_names()
    shown: set[str | None] = set()
    for expr in _queries():
        for name in metric_names(expr):
            shown |= recorded.get(name, {name})
    families = {
        re.sub(r"_(bucket|count|sum|total)$", "", name)
        for name in observability.read_exported_snapshot(REPO_ROOT)
        if name.startswith("ml_inference_")
    }
    missing = {family for family in families if not any(str(name).startswith(family) for name in shown)}
    assert missing == set()
    assert "up" in shown


def test_panels_fit_the_grid_without_overlapping() -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in DASHBOARD["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells.get((x, y))}"
                cells[(x, y)] = panel["title"]
    ids = [panel["id"] for panel in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))


def test_every_variable_a_query_uses_is_defined() -> None:
    defined = {variable["name"] for variable in DASHBOARD["templating"]["list"]} | GRAFANA_BUILTINS
    used = {match for expr in _queries() for match in re.findall(r"\$\{?(\w+)", expr)}
    used |= {re.sub(r"[${}]", "", panel["datasource"]["uid"]) for panel in DASHBOARD["panels"]}
    assert used - defined == set()


def test_provisioning_matches_the_deployed_grafana_and_prometheus() -> None:
    """The provider reads where the dashboards are mounted; the datasource reaches the Prometheus Service."""
    require_program("kubectl")
    objects = render(REPO_ROOT / "observability")
    grafana = next(m for m in objects if m["kind"] == "Deployment" and m["metadata"]["name"] == "grafana")
    pod = grafana["spec"]["template"]["spec"]
    config_maps = {v["name"]: v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v}
    mounts = {
        config_maps[m["name"]].rpartition("-")[0]: m["mountPath"]
        for m in pod["containers"][0]["volumeMounts"]
        if m["name"] in config_maps
    }
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/ml-inference.yml").read_text())
    assert [p["options"]["path"] for p in providers["providers"]] == [mounts["grafana-dashboards"]]

    datasource = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())[
        "datasources"
    ][0]
    url = urlparse(datasource["url"])
    service = next(m for m in objects if m["kind"] == "Service" and m["metadata"]["name"] == url.hostname)
    assert url.port in [port["port"] for port in service["spec"]["ports"]]
    assert datasource["type"] == DASHBOARD["templating"]["list"][0]["query"] == "prometheus"
