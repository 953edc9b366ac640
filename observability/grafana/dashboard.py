"""Generate the ML inference Grafana dashboard (observability/grafana/dashboards/ml-inference.json).

Usage:  python observability/grafana/dashboard.py            # rewrite the JSON file
        python observability/grafana/dashboard.py --check    # exit 1 if the file is stale

The dashboard is written here as a short list of panels and queries, and the JSON Grafana reads is
generated from it, so a review sees queries rather than layout boilerplate. The committed JSON is
what Grafana provisions; the test suite regenerates it and fails when it differs (edit this file,
never the JSON). Ratios and quantiles over 5 minutes come from the recording rules in
observability/prometheus/rules/, so the dashboard and the alerts show the same numbers.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

OUTPUT = Path(__file__).parent / "dashboards" / "ml-inference.json"

UID = "ml-inference"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
#: Every query is scoped to the service's scrape job and the chosen namespace. Locally there is
#: no namespace label; "All" matches it with ".*".
JOB = 'job="ml-inference"'
SCOPE = f'{JOB}, namespace=~"$namespace"'
#: Scrapes and health probes are not API traffic (the recording rules exclude them the same way).
API = f'{SCOPE}, route!~"/metrics|/health|/ready|/v2/health/.*"'
GRID_WIDTH = 24


def _recorded(rule: str) -> str:
    """A recording rule's series (already scoped to the job) for the chosen namespace."""
    return f'namespace_job:ml_inference_{rule}{{namespace=~"$namespace"}}'


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    queries: tuple[Query, ...]
    unit: str
    kind: str = "timeseries"
    width: int = 12
    height: int = 8


def _quantiles(metric: str) -> tuple[Query, ...]:
    return tuple(
        Query(
            f"histogram_quantile({q}, sum by (le) (rate({metric}_bucket{{{SCOPE}}}[$__rate_interval])))",
            f"p{round(q * 100)}",
        )
        for q in (0.5, 0.95, 0.99)
    )


STATS = (
    Panel(
        "Replicas up",
        "Replicas Prometheus scrapes successfully, out of those it discovered.",
        (Query(f"sum(up{{{SCOPE}}})", "up"), Query(f"count(up{{{SCOPE}}})", "discovered")),
        unit="none",
        kind="stat",
        width=4,
        height=4,
    ),
    Panel(
        "Model version",
        "Model name and version each replica serves; more than one version means a rollout in progress.",
        (
            Query(
                f"count by (model_name, model_version) (ml_inference_model_info{{{SCOPE}}})",
                "{{model_name}} {{model_version}}",
            ),
        ),
        unit="none",
        kind="stat",
        width=6,
        height=4,
    ),
    Panel(
        "API requests",
        "API requests per second over 5 minutes (scrapes and probes excluded).",
        (Query(f"sum({_recorded('api_requests:rate5m')})", "req/s"),),
        unit="reqps",
        kind="stat",
        width=4,
        height=4,
    ),
    Panel(
        "Server error ratio",
        "Share of API requests answered with a 5xx over 5 minutes (alert above 5 %).",
        (Query(f"max({_recorded('api_server_errors:ratio_rate5m')})", "5xx"),),
        unit="percentunit",
        kind="stat",
        width=5,
        height=4,
    ),
    Panel(
        "p99 latency",
        "99th percentile of API request latency over 5 minutes (alert above 500 ms).",
        (Query(f"max({_recorded('request_duration_seconds:p99_rate5m')})", "p99"),),
        unit="s",
        kind="stat",
        width=5,
        height=4,
    ),
)

GRAPHS = (
    Panel(
        "Request rate by route and status",
        "Every request the replicas answered, probes and scrapes included, per route and status.",
        (
            Query(
                f"sum by (route, status) (rate(ml_inference_requests_total{{{SCOPE}}}[$__rate_interval]))",
                "{{route}} {{status}}",
            ),
        ),
        unit="reqps",
    ),
    Panel(
        "Error ratio",
        "Share of API requests answered with a server error (5xx) or a client error (4xx, bad input).",
        (
            Query(_recorded("api_server_errors:ratio_rate5m"), "5xx"),
            Query(_recorded("api_client_errors:ratio_rate5m"), "4xx"),
        ),
        unit="percentunit",
    ),
    Panel(
        "API request latency",
        "p50, p95 and p99 of API request latency, from the request duration histogram.",
        tuple(Query(_recorded(f"request_duration_seconds:{p}_rate5m"), p) for p in ("p50", "p95", "p99")),
        unit="s",
    ),
    Panel(
        "Inference time",
        "Time spent in the model call alone; the gap to request latency is queueing and HTTP handling.",
        _quantiles("ml_inference_inference_duration_seconds"),
        unit="s",
    ),
    Panel(
        "Batch size",
        "Instances per inference call: 1 for /predict, the batch length for /predict/batch and OIP infer. "
        "The mean only: sizes are whole numbers, and a quantile interpolated in the first bucket (0, 1] "
        "would read 0.5 for calls of one instance.",
        (
            Query(
                f"sum(rate(ml_inference_batch_size_sum{{{SCOPE}}}[$__rate_interval]))"
                f" / sum(rate(ml_inference_batch_size_count{{{SCOPE}}}[$__rate_interval]))",
                "mean",
            ),
        ),
        unit="none",
    ),
    Panel(
        "In-flight requests",
        "Requests being handled right now, per replica, less the scrape that reads the gauge (always one "
        "of them): 0 at idle; a rising floor means a replica is saturated.",
        (Query(f"sum by (instance) (ml_inference_requests_in_flight{{{SCOPE}}}) - 1", "{{instance}}"),),
        unit="none",
    ),
    Panel(
        "Predictions by class",
        "Predicted classes per second; a shift in the mix without a change in traffic hints at data drift.",
        (
            Query(
                f"sum by (class) (rate(ml_inference_predictions_total{{{SCOPE}}}[$__rate_interval]))",
                "{{class}}",
            ),
        ),
        unit="ops",
    ),
    Panel(
        "Replicas up and ready",
        "Per replica: scraped (up) and model loaded (ready). The demo's drifts show here as dips.",
        (
            Query(f"up{{{SCOPE}}}", "up {{instance}}"),
            Query(f"ml_inference_model_ready{{{SCOPE}}}", "ready {{instance}}"),
        ),
        unit="none",
    ),
    Panel(
        "Access log lines dropped",
        "Access log lines lost per second, per pod, because stdout refused a write or too many were "
        "pending; above zero, the logs undercount traffic while serving goes on.",
        (
            Query(
                f"sum by (pod) (rate(ml_inference_access_log_lines_dropped_total{{{SCOPE}}}"
                "[$__rate_interval]))",
                "{{pod}}",
            ),
        ),
        unit="ops",
    ),
)


def _panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict:
    targets = [
        {"datasource": DATASOURCE, "expr": query.expr, "legendFormat": query.legend, "refId": ref_id}
        for ref_id, query in zip("ABCDEFGH", panel.queries, strict=False)
    ]
    options: dict = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}}
    if panel.kind == "stat":
        named = len(panel.queries) > 1 or "{{" in panel.queries[0].legend
        options = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "textMode": "value_and_name" if named else "value",
            "colorMode": "value",
            "graphMode": "none",
        }
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": panel.width, "h": panel.height},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": options,
        "targets": targets,
    }


def _layout(panels: tuple[Panel, ...]) -> list[dict]:
    """Place panels left to right, wrapping at Grafana's 24-column grid."""
    placed, x, y, row_height = [], 0, 0, 0
    for panel_id, panel in enumerate(panels, start=1):
        if x + panel.width > GRID_WIDTH:
            x, y, row_height = 0, y + row_height, 0
        placed.append(_panel_json(panel, panel_id, x, y))
        x, row_height = x + panel.width, max(row_height, panel.height)
    return placed


def dashboard() -> dict:
    """The dashboard as Grafana's JSON model."""
    return {
        "uid": UID,
        "title": "ML inference",
        "description": "The ml-inference service: traffic, errors, latency, model and replicas.",
        "tags": ["ml-inference"],
        "timezone": "utc",
        "editable": False,
        "refresh": "10s",
        "time": {"from": "now-30m", "to": "now"},
        "schemaVersion": 39,
        "templating": {
            "list": [
                {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus"},
                {
                    "name": "namespace",
                    "label": "Namespace",
                    "type": "query",
                    "datasource": DATASOURCE,
                    "query": {"query": f"label_values(up{{{JOB}}}, namespace)", "refId": "ns"},
                    "refresh": 2,
                    "includeAll": True,
                    "allValue": ".*",
                    "current": {"text": "All", "value": "$__all"},
                    "sort": 1,
                },
            ]
        },
        "annotations": {"list": []},
        "panels": _layout(STATS + GRAPHS),
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    if argv not in ([], ["--check"]):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    text = render()
    if argv == ["--check"]:
        if OUTPUT.read_text() != text:
            print(f"{OUTPUT} is stale; run: python {Path(__file__).as_posix()}", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
