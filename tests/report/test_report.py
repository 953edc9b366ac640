"""The report job: figures equal the artifacts', broken inputs never crash it, a real browser renders it.

Artifact trees are written here in the shapes docs/artifacts.md gives (and the producers write), with
values chosen so that each figure is recognisable in the output.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

import msgspec
import pytest

from pipeline.contracts import LoadSummary
from pipeline.report import browser, formats
from pipeline.report.collect import NO_RUN, Artifact, LoadComparison, collect, compare_load
from pipeline.report.render import render
from tests.helpers import require_program, run_report_job

RUN_START = "2026-11-27T06:00:00.000Z"


def _at(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"2026-11-27T06:{int(minutes):02d}:{rest:06.3f}Z"


def _job(status: str, start: float | None, end: float | None, needs=(), outputs=None) -> dict:
    return {
        "status": status,
        "needs": list(needs),
        "artifact": None,
        "started_at": None if start is None else _at(start),
        "finished_at": None if end is None else _at(end),
        "duration_seconds": None if start is None or end is None else round(end - start, 3),
        "exit_code": None if end is None else (0 if status == "success" else 1),
        "log": "logs/x.log",
        "outputs": outputs or {},
    }


def write(root: Path, relative: str, data) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data, indent=2))
    return path


LOAD = {
    "users": 20,
    "spawn_rate": 20,
    "duration_seconds": 20,
    "requests": 3917,
    "failures": 0,
    "failure_ratio": 0.0,
    "requests_per_second": 195.85,
    "p50_ms": 6.0,
    "p95_ms": 17.0,
    "p99_ms": 31.0,
    "thresholds": {"max_failure_ratio": 0.0, "min_requests": 100, "max_p99_ms": 300},
    "passed": True,
    "history": [
        {"t": t, "users": 20, "rps": 150.0 + 2 * t, "p50_ms": 5.0 + t % 3, "p95_ms": 14.0 + t % 5}
        for t in range(0, 21)
    ],
}

DRIFTS = [
    {
        "name": name,
        "description": f"{name} by hand",
        "drift_at": _at(70 + 10 * index),
        "detected_at": _at(70 + 10 * index + detect),
        "healed_at": _at(70 + 10 * index + heal),
        "time_to_detect_seconds": detect,
        "time_to_heal_seconds": heal,
        "passed": True,
        "error": None,
        "replicas": {"before": 3, "during": during, "after": 3},
        "ready_replicas": {"before": 3, "during": ready, "after": 3},
        "config": {"ML_INFERENCE_MAX_BATCH": {"before": ["1000"], "during": setting, "after": ["1000"]}},
    }
    for index, (name, detect, heal, during, ready, setting) in enumerate(
        [
            ("replica-count", 0.412, 1.234, 4, 3, ["1000"]),
            ("replica-killed", 0.377, 2.468, 3, 2, ["1000"]),
            ("config-drift", 0.903, 2.871, 4, 3, ["10", "1000"]),
        ]
    )
]

API_JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="api" tests="4" failures="1" errors="0" skipped="1" time="1.25">
<testcase classname="api.test_health" name="test_health" time="0.011"/>
<testcase classname="api.test_predict" name="test_predict_returns_a_class" time="0.020"/>
<testcase classname="api.test_predict" name="test_batch_keeps_order" time="0.030">
  <failure message="assert 3 == 4 &lt;script&gt;">Traceback...</failure></testcase>
<testcase classname="api.test_oip" name="test_oip_infer" time="0.0"><skipped message="no OIP"/></testcase>
</testsuite></testsuites>
"""


def make_artifacts(root: Path, *, with_previous: bool = True, previous_p99: float = 30.0) -> Path:
    """A complete artifacts tree of a successful local run (test and demo overlapping)."""
    jobs = {
        "unit": _job("success", 0.5, 14.25),
        "build": _job("success", 0.6, 40.5, outputs={"image_tag": "ml-inference:3f2a"}),
        "deploy": _job("success", 41.0, 55.0, needs=("build", "unit")),
        "test": _job("success", 55.5, 101.75, needs=("deploy",)),
        "demo": _job("success", 55.6, 112.5, needs=("deploy",)),
        "report": _job("running", 113.0, None, needs=("unit", "build", "deploy", "test", "demo")),
    }
    write(
        root,
        "pipeline-run.json",
        {
            "run_id": "20261127-060000",
            "commit": "0123456789abcdef0123456789abcdef01234567",
            "target": "local",
            "demo_mode": "full",
            "parallel": True,
            "started_at": RUN_START,
            "finished_at": None,
            "duration_seconds": None,
            "status": "running",
            "jobs": jobs,
        },
    )
    write(root, "logs/unit.log", "unit ok\n")
    write(root, "unit-results/junit.xml", API_JUNIT.replace('name="api"', 'name="unit"'))
    write(
        root,
        "build-output/build-record.json",
        {
            "model": {
                "name": "sklearn-iris",
                "version": "1.0.0+3f2a9c",
                "artifact_sha256": "ab" * 32,
                "test_accuracy": 0.9666666,
            },
            "image": {
                "status": "built",
                "reason": None,
                "tag": "ml-inference:3f2a9c0d",
                "image_id": "sha256:" + "cd" * 32,
                "digest": "sha256:" + "ef" * 32,
                "size_bytes": 187_654_321,
                "build_seconds": 33.4,
                "cache_hit": False,
                "base_image": "python:3.11-slim",
                "verified": True,
            },
            "sbom": "sbom.cdx.json",
            "quality_gate": {
                "verdict": "passed",
                "model_version": "1.0.0+3f2a9c",
                "test_accuracy": 0.9666666,
                "min_test_accuracy": 0.9,
                "max_drop": 0.02,
                "previous": {"version": "1.0.0+1b2c3d", "test_accuracy": 0.95, "source": "model-card.json"},
                "reasons": [],
            },
        },
    )
    write(
        root,
        "security-scan/scan.json",
        {
            "status": "failed",
            "image": "ml-inference:3f2a9c0d",
            "policy": "pipeline/scan/policy.toml",
            "parts": [
                {
                    "name": "image",
                    "title": "Image policy",
                    "fail_at": "medium",
                    "status": "failed",
                    "reason": "1 finding(s) at or above medium",
                    "findings": [
                        {
                            "rule": "root-user",
                            "severity": "high",
                            "message": "runs as root",
                            "where": "USER",
                            "waived": "",
                        }
                    ],
                    "raw": [],
                    "failing": 1,
                },
                {
                    "name": "python_vulnerabilities",
                    "title": "Python dependencies' vulnerabilities (pip-audit)",
                    "fail_at": "high",
                    "status": "skipped",
                    "reason": "PyPI's vulnerability service answered for none of the 25 locked dependencies",
                    "findings": [],
                    "raw": [],
                    "failing": 0,
                },
            ],
        },
    )
    write(
        root,
        "build-output/model/model-card.json",
        {
            "name": "sklearn-iris",
            "version": "1.0.0+3f2a9c",
            "artifact_sha256": "ab" * 32,
            "library_versions": {"scikit-learn": "1.7.2", "onnx": "1.19.0"},
            "split": {"train": 120, "test": 30, "seed": 42},
            "test_accuracy": 0.9666666,
            "feature_names": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
            "class_names": ["setosa", "versicolor", "virginica"],
            "created_by": "python -m ml_inference train",
        },
    )
    write(
        root, "build-output/sbom.cdx.json", {"bomFormat": "CycloneDX", "components": [{"name": "numpy"}] * 17}
    )
    write(
        root,
        "cluster-state/status.json",
        {
            "target": "local",
            "environment": "deploy",
            "endpoint": "http://127.0.0.1:41234",
            "sync": "Synced",
            "health": "Healthy",
            "replicas": [
                {
                    "name": f"ml-inference-{i}",
                    "url": f"http://127.0.0.1:4130{i}",
                    "ready": True,
                    "pid": 100 + i,
                }
                for i in range(3)
            ],
            "prometheus": {
                "url": "http://127.0.0.1:45999",
                "targets": [
                    {"pod": f"ml-inference-{i}", "url": f"http://127.0.0.1:4130{i}/metrics", "health": "up"}
                    for i in range(3)
                ],
            },
            "observed_at": _at(54.5),
        },
    )
    write(root, "cluster-state/manifests.yaml", "kind: Deployment\n")
    write(root, "test-results/api-junit.xml", API_JUNIT)
    write(root, "test-results/load-summary.json", LOAD)
    write(root, "test-results/load/locust_stats.csv", "Type,Name\n")
    write(
        root,
        "test-results/metrics-verification.json",
        {
            "mode": "prometheus",
            "prometheus_url": "http://127.0.0.1:45999",
            "passed": True,
            "checks": [
                {"name": "every replica is up", "passed": True, "detail": "3 of 3 up"},
                {"name": "request counter grew by 3917", "passed": True, "detail": "grew by 3917"},
            ],
        },
    )
    write(
        root,
        "demo-artifacts/timeline.json",
        {
            "target": "local",
            "drifts": DRIFTS,
            "load": {"requests": 1010, "failures": 0, "failure_ratio": 0.0},
            "verification": {"passed": True, "checks": []},
            "passed": True,
        },
    )
    if with_previous:
        write(
            root,
            "previous/pipeline-run.json",
            {"run_id": "20261126-230000", "commit": "fedcba98" * 5, "jobs": {}},
        )
        write(
            root,
            "previous/test-results/load-summary.json",
            {**LOAD, "requests_per_second": 200.0, "p99_ms": previous_p99},
        )
    return root


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    return make_artifacts(tmp_path / "artifacts")


def text_of(html: str) -> str:
    """The HTML's visible text, whitespace-collapsed (good enough for figure checks)."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


#: The report's own clock, frozen: the fixture's report job is still running at this moment.
REPORT_NOW = _at(115)


def report_of(artifacts_dir: Path) -> tuple[str, str]:
    return render(collect(artifacts_dir, now=REPORT_NOW))


def figure(html: str, key: str) -> str:
    """The text of the load card whose data-figure is `key`."""
    match = re.search(rf'data-figure="{key}">([^<]*)<', html)
    assert match, f"no load figure {key} in the HTML"
    return match[1]


def bars(svg_html: str) -> dict[str, tuple[float, float]]:
    """Gantt bars by job: (x, width) as drawn."""
    found = {}
    for tag in re.findall(r"<rect [^>]*class=\"gantt-bar\"[^>]*>", svg_html):
        attributes = dict(re.findall(r'([\w-]+)="([^"]*)"', tag))
        found[attributes["data-job"]] = (float(attributes["x"]), float(attributes["width"]))
    return found


def test_load_figures_in_html_and_markdown_equal_the_summary(artifacts: Path) -> None:
    html, markdown = report_of(artifacts)
    for key in ("requests_per_second", "p50_ms", "p95_ms", "p99_ms", "failures"):
        assert figure(html, key).split()[0] == formats.number(LOAD[key])
    assert f"| {formats.number(LOAD['p99_ms'])} ms |" in markdown
    assert f"| {formats.number(LOAD['requests_per_second'])} req/s |" in markdown


def test_the_load_thresholds_read_as_written_not_as_floats(artifacts: Path) -> None:
    """The contract holds them as floats: 100 requests must not read "100.0", nor 0.005 "0.01"."""
    summary = json.loads((artifacts / "test-results/load-summary.json").read_text())
    summary["thresholds"]["max_failure_ratio"] = 0.005
    write(artifacts, "test-results/load-summary.json", summary)
    html, _ = report_of(artifacts)
    assert "max_failure_ratio 0.005 · min_requests 100 · max_p99_ms 300" in text_of(html)


def test_job_table_and_overview_equal_the_run_record(artifacts: Path) -> None:
    record = json.loads((artifacts / "pipeline-run.json").read_text())
    html, markdown = report_of(artifacts)
    for name, entry in record["jobs"].items():
        row = re.search(rf'<tr data-job="{name}" data-status="{entry["status"]}">(.*?)</tr>', html, re.S)
        assert row, f"no row for {name} with status {entry['status']}"
        assert formats.seconds(entry["duration_seconds"]) in row[1]
        assert f"| {name} |" in markdown
    durations = sum(entry["duration_seconds"] or 0 for entry in record["jobs"].values())
    assert formats.seconds(durations) in text_of(html)
    wall = 112.5  # demo, the last job before the report, finished at +112.5 s
    assert f"wall time **{formats.seconds(wall)}**" in markdown
    assert f"{durations / wall:.2f}\N{MULTIPLICATION SIGN} parallel" in markdown
    # The fixture's report job is still running: the overview says so rather than count it unsuccessful.
    assert "5 of 7 jobs succeeded (report still running)" in text_of(html)  # scan: not in the record


def test_the_menu_links_every_section_by_the_start_of_its_heading(artifacts: Path) -> None:
    html, _ = report_of(artifacts)
    menu = re.search(r"<nav>(.*?)</nav>", html, re.S)
    assert menu
    links = dict(re.findall(r'<a href="#([^"]+)">([^<]+)</a>', menu[1]))
    headings = dict(re.findall(r'<section id="([^"]+)">\s*<h2>([^<]+)</h2>', html))
    assert set(links) == set(headings), "every section in the menu, and only sections"
    assert [name for name in links if not headings[name].startswith(links[name])] == []


def test_build_deploy_tests_and_demo_figures_equal_the_artifacts(artifacts: Path) -> None:
    build = json.loads((artifacts / "build-output/build-record.json").read_text())
    html, markdown = report_of(artifacts)
    page = text_of(html)
    assert build["image"]["tag"] in page and build["image"]["digest"] in page
    assert formats.size(build["image"]["size_bytes"]) in page
    assert formats.percent(build["model"]["test_accuracy"], 1) in page
    assert "17 components" in page
    for replica in ("ml-inference-0", "ml-inference-1", "ml-inference-2"):
        assert replica in page
    assert "2 passed , 1 failed, 0 errors, 1 skipped of 4" in page
    assert "**2 / 4 passed**" in markdown
    unit_failures = re.search(r'<table id="unit-failures">(.*?)</table>', html, re.S)[1]
    assert "test_batch_keeps_order" in unit_failures and "test_health" not in unit_failures
    for drift in DRIFTS:
        assert formats.seconds(drift["time_to_heal_seconds"]) in page
        assert f"| {drift['name']} | {formats.clock(drift['drift_at'])} |" in markdown
    drift_table = text_of(re.search(r'<table id="drift-table">(.*?)</table>', html, re.S)[1])
    # Live replicas (ready) before the drift, when it was detected, and once healed.
    assert "3 (3) → 4 (3) → 3 (3)" in drift_table and "3 (3) → 3 (2) → 3 (3)" in drift_table
    assert "ML_INFERENCE_MAX_BATCH 1000 → 10, 1000 → 1000" in drift_table
    assert "| 3 (3) → 4 (3) → 3 (3) |" in markdown and "| 3 (3) → 3 (2) → 3 (3) |" in markdown
    assert "request counter grew by 3917" in page


def test_a_build_without_an_image_says_why_there_is_no_sbom(artifacts: Path) -> None:
    """No Docker engine: the build skips the image and, with it, the SBOM; that is not a missing file."""
    build = json.loads((artifacts / "build-output/build-record.json").read_text())
    build.update(image={"status": "skipped", "reason": "no engine", "verified": False}, sbom=None)
    write(artifacts, "build-output/build-record.json", build)
    (artifacts / "build-output/sbom.cdx.json").unlink()
    html, _ = report_of(artifacts)
    image_facts = text_of(re.search(r'<dl class="facts" id="image-facts">(.*?)</dl>', html, re.S)[1])
    assert "SBOM none: made only with an image" in image_facts
    assert "missing" not in image_facts


def test_gantt_chart_shows_the_parallel_jobs_side_by_side(artifacts: Path) -> None:
    html, _ = report_of(artifacts)
    drawn = bars(html)
    test_x, test_width = drawn["test"]
    demo_x, demo_width = drawn["demo"]
    deploy_x, deploy_width = drawn["deploy"]
    assert test_x < demo_x + demo_width and demo_x < test_x + test_width, "test and demo must overlap"
    assert deploy_x + deploy_width <= min(test_x, demo_x) + 1
    assert test_width / demo_width == pytest.approx(46.25 / 56.9, rel=0.01)


def test_a_running_job_is_drawn_up_to_the_moment_the_report_was_made(artifacts: Path) -> None:
    drawn = bars(render(collect(artifacts, now=_at(123)))[0])
    later = bars(render(collect(artifacts, now=_at(133)))[0])
    report_width = drawn["report"][1]
    demo_width = drawn["demo"][1]
    scale = demo_width / (112.5 - 55.6)
    assert report_width == pytest.approx((123 - 113) * scale, rel=0.02)
    assert later["report"][1] > report_width, "a later report draws the running job longer"


def test_latency_chart_draws_every_point_of_the_history(artifacts: Path) -> None:
    html, _ = report_of(artifacts)
    chart = re.search(r'<svg [^>]*id="latency-chart".*?</svg>', html, re.S)[0]
    lines = dict(
        re.findall(r'<polyline points="([^"]*)"[^>]*data-series="([^"]*)"', chart)[i][::-1] for i in range(2)
    )
    assert set(lines) == {"p50", "p95"}
    assert all(len(points.split()) == len(LOAD["history"]) for points in lines.values())


def test_previous_run_within_the_rule_is_no_regression(artifacts: Path) -> None:
    html, markdown = report_of(artifacts)
    assert 'id="no-regression"' in html and 'id="regression-flag"' not in html
    assert "Regression" not in markdown


@pytest.mark.parametrize(
    ("previous", "flagged"),
    [
        ({"p99_ms": 20.0}, "p99"),  # 31 ms against 20 ms: +55 %, +11 ms
        ({"requests_per_second": 260.0}, "Requests/s"),  # 195.85 against 260: -24.7 %
        ({"failure_ratio": 0.0}, None),
    ],
)
def test_regression_flag_trips_on_the_rule(tmp_path: Path, previous: dict, flagged: str | None) -> None:
    root = make_artifacts(tmp_path / "artifacts")
    write(root, "previous/test-results/load-summary.json", {**LOAD, **previous})
    html, markdown = report_of(root)
    if flagged:
        flag = re.search(r'id="regression-flag">(.*?)</p>', html, re.S)
        assert flag and flagged in flag[1]
        assert "**Regression**" in markdown and f"{flagged} " in markdown
    else:
        assert 'id="regression-flag"' not in html


def test_small_p99_rise_is_jitter_not_regression(tmp_path: Path) -> None:
    root = make_artifacts(tmp_path / "artifacts")
    write(root, "test-results/load-summary.json", {**LOAD, "p99_ms": 4.0})
    write(root, "previous/test-results/load-summary.json", {**LOAD, "p99_ms": 2.0})  # +100 % but 2 ms
    html, _ = report_of(root)
    assert 'id="regression-flag"' not in html


def test_failures_where_there_were_none_are_a_regression(tmp_path: Path) -> None:
    root = make_artifacts(tmp_path / "artifacts")
    write(root, "test-results/load-summary.json", {**LOAD, "failures": 4, "failure_ratio": 0.001})
    html, _ = report_of(root)
    assert "Failure ratio" in re.search(r'id="regression-flag">(.*?)</p>', html, re.S)[1]


def _compare(current: dict, previous: dict) -> LoadComparison:
    def summary(change: dict) -> Artifact:
        return Artifact(
            "test-results/load-summary.json", "ok", msgspec.convert({**LOAD, **change}, LoadSummary)
        )

    comparison = compare_load(
        summary(current), summary(previous), Artifact("pipeline-run.json", "missing"), NO_RUN
    )
    assert comparison is not None
    return comparison


@pytest.mark.parametrize(
    ("previous", "current", "flagged"),
    [
        ({"p99_ms": 100.0}, {"p99_ms": 119.0}, set()),  # +19 %: within the 20 %
        ({"p99_ms": 100.0}, {"p99_ms": 121.0}, {"p99_ms"}),  # +21 % and 21 ms
        ({"p99_ms": 10.0}, {"p99_ms": 14.9}, set()),  # +49 % but 4.9 ms: jitter
        ({"p99_ms": 20.0}, {"p99_ms": 25.0}, {"p99_ms"}),  # +25 % and 5 ms
        ({"requests_per_second": 100.0}, {"requests_per_second": 81.0}, set()),  # -19 %
        ({"requests_per_second": 100.0}, {"requests_per_second": 79.0}, {"requests_per_second"}),  # -21 %
        ({"failure_ratio": 0.01}, {"failure_ratio": 0.001}, set()),  # fewer failures: better, not worse
        ({"failure_ratio": 0.001}, {"failure_ratio": 0.002}, {"failure_ratio"}),
        ({"p50_ms": 1.0, "p95_ms": 1.0}, {"p50_ms": 90.0, "p95_ms": 90.0}, set()),  # shown, never judged
    ],
)
def test_the_regression_rule_at_its_edges(previous: dict, current: dict, flagged: set) -> None:
    """Requests/s more than 20 % down; p99 more than 20 % and at least 5 ms up; any rise in failures."""
    assert {change.key for change in _compare(current, previous).changes if change.regressed} == flagged


@pytest.mark.parametrize("field", ["users", "spawn_rate", "duration_seconds", "user_rps"])
def test_a_load_of_another_shape_is_never_flagged_but_a_field_an_older_summary_lacks_is_no_difference(
    field: str,
) -> None:
    worse = {"p99_ms": 300.0, "requests_per_second": 10.0}
    unlike = _compare({**worse, field: 7}, {field: 70})
    assert unlike.unlike and not unlike.regressed
    older = _compare({**worse, field: 7}, {field: None})
    assert not older.unlike and older.regressed


def test_missing_artifacts_of_failed_jobs_show_as_missing(tmp_path: Path) -> None:
    root = make_artifacts(tmp_path / "artifacts", with_previous=False)
    record = json.loads((root / "pipeline-run.json").read_text())
    record["jobs"]["test"].update(status="failure", exit_code=1)
    record["jobs"]["demo"].update(status="skipped", started_at=None, finished_at=None, duration_seconds=None)
    write(root, "pipeline-run.json", record)
    for folder in ("test-results", "demo-artifacts", "build-output"):
        for path in sorted((root / folder).rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
    html, markdown = report_of(root)
    notices = re.findall(r'<p class="notice missing" data-state="missing">(.*?)</p>', html, re.S)
    assert any("load-summary.json is missing (job test ended failure)" in notice for notice in notices)
    assert any("build-record.json is missing (job build ended success)" in notice for notice in notices)
    assert "- API: **missing**: test-results/api-junit.xml is missing (job test ended failure)" in markdown
    assert 'data-job="demo"' not in "".join(re.findall(r'class="gantt-bar"[^>]*', html))


def test_the_files_of_a_skipped_job_show_as_skipped_not_as_missing(artifacts: Path) -> None:
    """A quick run skips the demo on purpose: its report must not alarm like a job that lost its files."""
    record = json.loads((artifacts / "pipeline-run.json").read_text())
    record["jobs"]["demo"].update(status="skipped", started_at=None, finished_at=None, duration_seconds=None)
    record["demo_mode"] = "quick"
    write(artifacts, "pipeline-run.json", record)
    (artifacts / "demo-artifacts" / "timeline.json").unlink()
    html, markdown = report_of(artifacts)
    skipped = re.findall(r'<p class="notice skipped" data-state="skipped">(.*?)</p>', html, re.S)
    assert any("timeline.json was not made (job demo was skipped)" in notice for notice in skipped)
    assert 'data-state="missing"' not in html
    assert "> **SKIPPED**: demo-artifacts/timeline.json was not made (job demo was skipped)" in markdown


def test_a_failed_job_shows_the_end_of_its_log(artifacts: Path) -> None:
    record = json.loads((artifacts / "pipeline-run.json").read_text())
    record["jobs"]["deploy"].update(status="failure", exit_code=1, log="logs/deploy.log")
    write(artifacts, "pipeline-run.json", record)
    lines = [f"step {index}" for index in range(100)] + [
        "deploy: replicas never became ready",
        "GITHUB_TOKEN=abc123",
    ]
    write(artifacts, "logs/deploy.log", "\n".join(lines) + "\n")
    html, markdown = report_of(artifacts)
    quoted = re.search(r'<pre class="log" data-job="deploy">(.*?)</pre>', html, re.S)[1].splitlines()
    assert quoted[-2:] == ["deploy: replicas never became ready", "GITHUB_TOKEN=***"]
    assert quoted[0] == "step 77"  # the last 25 lines, no more
    assert "<summary>deploy failure: last lines of its log</summary>" in markdown
    assert "abc123" not in html + markdown
    assert html.count('<pre class="log"') == 1, "only the failed job's log is quoted"


def test_broken_artifacts_show_as_broken_without_crashing(artifacts: Path) -> None:
    write(artifacts, "test-results/load-summary.json", '{"requests": 10, "p99_ms": ')
    write(artifacts, "test-results/metrics-verification.json", "[1, 2]")
    write(artifacts, "test-results/api-junit.xml", "<testsuites><testsuite><testcase")
    write(artifacts, "demo-artifacts/timeline.json", {"drifts": [{"name": 3, "drift_at": "yesterday"}, "x"]})
    write(artifacts, "cluster-state/status.json", {"target": "local", "endpoint": None, "replicas": "three"})
    write(artifacts, "build-output/build-record.json", {"model": None, "image": "built"})
    html, markdown = report_of(artifacts)
    states = re.findall(r'data-state="(\w+)"><strong>\w+</strong> ([^<]*)', html)
    broken = {text.split()[0] for state, text in states if state == "broken"}
    assert {
        "test-results/load-summary.json",
        "test-results/metrics-verification.json",
        "test-results/api-junit.xml",
    } <= broken
    assert 'id="job-table"' in html and 'id="gantt-chart"' in html
    assert "**BROKEN**: test-results/load-summary.json is not valid JSON" in markdown


def test_empty_artifacts_directory_still_gives_a_report(tmp_path: Path) -> None:
    done = run_report_job(tmp_path / "artifacts")
    assert done.returncode == 0, done.stderr
    html = (tmp_path / "artifacts/final-demo-report/report.html").read_text()
    assert "pipeline-run.json is missing" in html
    assert 'id="job-table"' in html
    assert (
        (tmp_path / "artifacts/final-demo-report/report.md")
        .read_text()
        .startswith("## ❔ Pipeline report: unknown")
    )


def test_a_run_whose_jobs_never_started_draws_no_empty_timeline(tmp_path: Path) -> None:
    html, _ = report_of(tmp_path / "artifacts")
    assert 'id="gantt-chart"' not in html
    assert "No job of this run has started: there is no timeline to draw." in text_of(html)


def test_html_is_self_contained_and_escapes_artifact_text(artifacts: Path) -> None:
    html, markdown = report_of(artifacts)
    assert not re.search(r"<script|<link|<img|<iframe|@import|\bsrc=|href=\"(https?:)?//|url\((?!#)", html)
    assert "assert 3 == 4 &lt;script&gt;" in html
    assert "<script>" not in markdown


def test_secrets_in_artifacts_never_reach_the_report(artifacts: Path) -> None:
    token = "ghp_" + "a1B2c3D4e5" * 4
    record = json.loads((artifacts / "pipeline-run.json").read_text())
    record["jobs"]["build"]["outputs"] = {"registry_password": "hunter2-secret", "image_tag": "ml:1"}
    write(artifacts, "pipeline-run.json", record)
    write(
        artifacts, "test-results/api-junit.xml", API_JUNIT.replace("assert 3 == 4", f"token {token} leaked")
    )
    timeline = json.loads((artifacts / "demo-artifacts/timeline.json").read_text())
    timeline["drifts"][0].update(passed=False, error="DB_PASSWORD=hunter2 in env")
    write(artifacts, "demo-artifacts/timeline.json", timeline)
    html, markdown = report_of(artifacts)
    for secret in (token, "hunter2"):
        assert secret not in html and secret not in markdown
    assert "DB_PASSWORD=***" in html


def test_a_drift_error_is_masked_before_the_timeline_cuts_it(artifacts: Path) -> None:
    # Cut first, the credentials' "@" falls outside the remark and the URL pattern no longer matches.
    timeline = json.loads((artifacts / "demo-artifacts/timeline.json").read_text())
    error = "git clone of https://deploy:Sup3rSecretValue123456@git.example.com/r.git failed"
    timeline["drifts"][0].update(passed=False, healed_at=None, error=error)
    write(artifacts, "demo-artifacts/timeline.json", timeline)
    html, markdown = report_of(artifacts)
    assert "Sup3rSecret" not in html + markdown
    assert "https://***@git.example.com/r.git" in html


def test_report_job_writes_both_files_and_exits_zero_on_a_failed_run(artifacts: Path) -> None:
    record = json.loads((artifacts / "pipeline-run.json").read_text())
    record["jobs"]["test"].update(status="failure", exit_code=1)
    record.update(status="failure", finished_at=_at(120), duration_seconds=120.0)
    write(artifacts, "pipeline-run.json", record)
    done = run_report_job(artifacts)
    assert done.returncode == 0, done.stderr
    out = artifacts / "final-demo-report"
    assert 'id="run-status">failure<' in (out / "report.html").read_text()
    assert (out / "report.md").read_text().startswith("## ❌ Pipeline report: failure")
    assert "chromium" not in done.stdout  # screenshots were turned off for this run


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def dump_dom(chromium: str, page: Path) -> str:
    """The DOM Chromium built for `page`, serialised: what the browser parsed."""
    with tempfile.TemporaryDirectory(prefix="report-chromium-") as profile:
        done = subprocess.run(
            [chromium, *browser.FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.resolve().as_uri()],
            capture_output=True,
            text=True,
            timeout=browser.TIMEOUT_SECONDS,
        )
    assert done.returncode == 0 and done.stdout.strip(), f"chromium --dump-dom failed: {done.stderr[-500:]}"
    return done.stdout


def test_chromium_renders_the_key_sections(artifacts: Path) -> None:
    chromium = require_program("chromium")
    html_path, _ = write_report_files(artifacts)
    dom = dump_dom(chromium, html_path)
    assert re.search(r'<table id="job-table">.*?<tr data-job="demo" data-status="success">', dom, re.S)
    gantt = re.search(r'<svg [^>]*id="gantt-chart".*?</svg>', dom, re.S)
    assert gantt and set(bars(gantt[0])) == {"unit", "build", "deploy", "test", "demo", "report"}
    latency = re.search(r'<svg [^>]*id="latency-chart".*?</svg>', dom, re.S)
    assert latency and latency[0].count("<polyline") == 2
    for element_id in (
        "environment-diagram",
        "drift-timeline",
        "load-comparison",
        "metrics-checks",
    ):
        assert f'id="{element_id}"' in dom


def test_report_job_saves_a_full_page_screenshot(artifacts: Path) -> None:
    require_program("chromium")
    done = run_report_job(artifacts, PIPELINE_REPORT_SCREENSHOT="1")
    assert done.returncode == 0, done.stderr
    png = artifacts / "final-demo-report/report.png"
    width, height = png_size(png)
    assert width == browser.VIEWPORT_WIDTH
    assert height > 3000, "a full page, not just the first screen"
    assert f"screenshot {png} ({width}x{height})" in done.stdout


def test_any_spelling_of_no_turns_the_screenshot_off(artifacts: Path) -> None:
    require_program("chromium")  # without it no screenshot is taken anyway
    done = run_report_job(artifacts, PIPELINE_REPORT_SCREENSHOT="false")
    assert done.returncode == 0, done.stderr
    assert not (artifacts / "final-demo-report/report.png").exists()


def test_a_report_made_without_a_screenshot_leaves_no_earlier_one_beside_it(artifacts: Path) -> None:
    """`nox -s report` writes where the last report was: its picture would pass for this one's."""
    (artifacts / "final-demo-report").mkdir(exist_ok=True)
    (artifacts / "final-demo-report/report.png").write_bytes(b"\x89PNG an earlier report")
    done = run_report_job(artifacts, PIPELINE_REPORT_SCREENSHOT="0")
    assert done.returncode == 0, done.stderr
    assert not (artifacts / "final-demo-report/report.png").exists()


def write_report_files(artifacts_dir: Path) -> tuple[Path, Path]:
    from pipeline.jobs.report import write_report

    return write_report(artifacts_dir, artifacts_dir / "final-demo-report")


def test_markdown_gantt_is_mermaid_with_every_started_job(artifacts: Path) -> None:
    record = json.loads((artifacts / "pipeline-run.json").read_text())
    record["jobs"]["test"].update(status="failure", exit_code=1)
    write(artifacts, "pipeline-run.json", record)
    _, markdown = report_of(artifacts)
    block = re.search(r"```mermaid\n(.*?)```", markdown, re.S)[1].splitlines()
    assert block[:4] == [
        "gantt",
        "    title Jobs (UTC)",
        "    dateFormat YYYY-MM-DD HH:mm:ss",
        "    axisFormat %H:%M:%S",
    ]
    rows = {line.split(" :")[0].split()[0]: line.split(" :")[1].split(", ") for line in block[4:]}
    assert set(rows) == set(record["jobs"])
    assert rows["test"][0] == "crit" and rows["demo"][0] == "done" and rows["report"][0] == "active"
    assert rows["demo"][1:] == ["2026-11-27 06:00:55", "2026-11-27 06:01:52"]  # 06:00:55.600 to 06:01:52.500
    assert rows["report"][1:] == ["2026-11-27 06:01:53", "2026-11-27 06:01:54"]  # running: one second shown


def test_jobs_kept_from_an_earlier_run_are_marked_and_not_counted(artifacts: Path) -> None:
    record = json.loads((artifacts / "pipeline-run.json").read_text())
    record["started_at"] = _at(41.0)  # an `--only deploy test demo report` run: unit and build are reused
    for name in ("unit", "build"):
        record["jobs"][name]["reused"] = True
    write(artifacts, "pipeline-run.json", record)
    report = collect(artifacts)
    assert [job.name for job in report.jobs if job.reused] == ["unit", "build"]
    assert report.sum_of_job_seconds == pytest.approx(14.0 + 46.25 + 56.9)
    html, markdown = report_of(artifacts)
    assert "| unit | ✅ success (earlier run) |" in markdown
    assert html.count("from an earlier run") == 2


def test_jobs_kept_from_a_run_a_day_earlier_leave_this_runs_gantt_chart_at_its_scale(artifacts: Path) -> None:
    # Else the axis spans the day between the runs, and this run's bars shrink to slivers.
    before = bars(report_of(artifacts)[0])
    record = json.loads((artifacts / "pipeline-run.json").read_text())
    record["started_at"] = _at(41.0)
    for name in ("unit", "build"):
        job = record["jobs"][name]
        job.update(reused=True, started_at=job["started_at"].replace("-27T", "-26T"))
        job["finished_at"] = job["finished_at"].replace("-27T", "-26T")
    write(artifacts, "pipeline-run.json", record)
    html, markdown = report_of(artifacts)
    drawn = bars(html)
    assert set(drawn) == {"deploy", "test", "demo", "report"}
    assert drawn["demo"][1] >= before["demo"][1]
    assert html.count("from an earlier run") == 2
    mermaid = re.search(r"```mermaid\n(.*?)```", markdown, re.S)[1]
    assert "2026-11-26" not in mermaid and "unit" not in mermaid


def test_a_job_run_alone_after_the_recorded_run_is_named_as_such(artifacts: Path) -> None:
    """`nox -s test` after `invoke pipeline`: the record still says how the pipeline's test job ended."""
    recorded_at = time.time() - 600
    for path in artifacts.rglob("*"):
        os.utime(path, (recorded_at - 60, recorded_at - 60))
    os.utime(artifacts / "pipeline-run.json", (recorded_at, recorded_at))
    (artifacts / "test-results" / "load-summary.json").touch()  # written now, by the test job run alone
    html, markdown = report_of(artifacts)
    note = "Written after this run's record (a job run alone since?): test-results (job test)"
    assert note + "." in text_of(html)
    assert note + "." in markdown


def test_a_broken_previous_load_summary_is_named_in_both_reports(artifacts: Path) -> None:
    """Not 'no previous run': there was one, and its file cannot be read."""
    (artifacts / "previous" / "test-results" / "load-summary.json").write_text('{"requests": ')
    html, markdown = report_of(artifacts)
    assert "previous/test-results/load-summary.json is not valid JSON" in text_of(html)
    assert "previous/test-results/load-summary.json is not valid JSON" in markdown
    assert "No previous run to compare with" not in markdown


def test_a_raw_artifact_link_is_url_encoded(artifacts: Path) -> None:
    """A '#' or '?' in a file name would otherwise cut the link short."""
    write(artifacts, "test-results/load/run #2?.log", "x")
    html, _ = report_of(artifacts)
    assert 'href="../test-results/load/run%20%232%3F.log"' in html


WRONG_TYPES = ("text", [1, {"two": 2}], None)


def _mutations(data: dict):
    """`data` with one field, at the top or one level down (in objects and lists' first item), wrong."""
    for key, value in data.items():
        for wrong in WRONG_TYPES:
            yield key, {**data, key: wrong}
        inner = value[0] if isinstance(value, list) and value and isinstance(value[0], dict) else value
        if isinstance(inner, dict):
            for inner_key in inner:
                for wrong in WRONG_TYPES:
                    changed = {**inner, inner_key: wrong}
                    yield (
                        f"{key}.{inner_key}",
                        {**data, key: [changed] if isinstance(value, list) else changed},
                    )


def test_no_wrong_type_in_any_artifact_field_crashes_the_report(artifacts: Path) -> None:
    """Every field of every JSON artifact, set in turn to each wrong type, still renders."""
    renders = 0
    for path in sorted(artifacts.rglob("*.json")):
        original = path.read_text()
        for field, mutated in _mutations(json.loads(original)):
            path.write_text(json.dumps(mutated))
            html, markdown = report_of(artifacts)
            assert 'id="job-table"' in html and "Pipeline report" in markdown, (path, field)
            renders += 1
        path.write_text(original)
    assert renders > 400  # the sample's fields, each broken three ways


def test_the_gates_show_the_models_comparison_and_each_scan_part_with_its_findings(artifacts: Path) -> None:
    html, markdown = report_of(artifacts)
    gate = text_of(html.split('id="quality-gate"')[1].split("</dl>")[0])
    assert all(figure in gate for figure in ("passed", "96.7", "Floor 90.0", "Previous model 95.0"))
    scan = text_of(html.split('id="security-scan"')[1].split("</table>")[0])
    assert "Image policy failed" in scan and "high · USER: root-user: runs as root" in scan
    assert "skipped PyPI&#39;s vulnerability service answered for none" in scan
    assert "Model quality gate: **passed**: held-out accuracy **96.7" in markdown
    assert "Image policy: **failed**: 1 finding(s) at or above medium; high USER root-user" in markdown


def test_a_scan_that_passed_with_parts_skipped_says_so_in_both_reports(artifacts: Path) -> None:
    scan = json.loads((artifacts / "security-scan/scan.json").read_text())
    scan["status"] = "passed"
    for part in scan["parts"]:
        if part["status"] == "failed":
            part.update(status="passed", findings=[], failing=0)
    write(artifacts, "security-scan/scan.json", scan)
    skipped = [part["title"] for part in scan["parts"] if part["status"] == "skipped"]
    verdict = f"passed, {len(skipped)} of {len(scan['parts'])} parts skipped ({', '.join(skipped)})"
    assert skipped
    html, markdown = report_of(artifacts)
    assert f"Security scan: **{verdict}**" in markdown
    status = text_of(html.split('id="security-scan-status"')[1].split("</p>")[0])
    assert f"Scan {verdict} ·" in status.replace("&#39;", "'")


EVIL_LINK = "[click](http://evil.invalid)"


def test_hostile_values_are_escaped_for_each_markdown_context(artifacts: Path) -> None:
    record = json.loads((artifacts / "pipeline-run.json").read_text())
    record["run_id"] = f"r`1` {EVIL_LINK}"
    record["target"] = f"local** <img src=x onerror=alert(1)> {EVIL_LINK}"
    record["demo_mode"] = "full | injected | cells"
    write(artifacts, "pipeline-run.json", record)
    junit = API_JUNIT.replace('name="test_batch_keeps_order"', 'name="test_x` &lt;b&gt;bold&lt;/b&gt;"')
    write(artifacts, "test-results/api-junit.xml", junit.replace("assert 3 == 4", f"see {EVIL_LINK} | col"))
    timeline = json.loads((artifacts / "demo-artifacts/timeline.json").read_text())
    timeline["drifts"][0]["name"] = f"{EVIL_LINK} `tick` *bold*"
    write(artifacts, "demo-artifacts/timeline.json", timeline)

    _, markdown = report_of(artifacts)

    # Code spans: a fence longer than any backtick run inside, so the value stays one span, verbatim.
    assert f"Run ``r`1` {EVIL_LINK}``" in markdown
    assert "- ❌ ``test_x` <b>bold</b>``" in markdown
    # Text: no HTML, no link, no emphasis, no column break survives.
    assert "<img" not in markdown
    assert EVIL_LINK not in markdown.replace(f"``r`1` {EVIL_LINK}``", "")
    assert "\\[click\\](http://evil.invalid)" in markdown
    assert "**local\\*\\* &lt;img src=x onerror=alert(1)&gt;" in markdown
    assert "full \\| injected \\| cells" in markdown
    drift_row = next(
        line for line in markdown.splitlines() if "evil.invalid" in line and line.startswith("|")
    )
    assert len(re.findall(r"(?<!\\)\|", drift_row)) == 7, drift_row  # six cells, whatever the name holds
    assert "\\`tick\\` \\*bold\\*" in drift_row


def test_markdown_text_keeps_underscores_and_never_mentions_or_references_on_github(artifacts: Path) -> None:
    # GitHub notifies whoever "@name" names and links "#12", even escaped with a backslash or an entity.
    message = "TypeError: Foo.__init__() got _id_; ping @octocat about #12, mail a@b.example"
    write(artifacts, "test-results/api-junit.xml", API_JUNIT.replace("assert 3 == 4", message))
    record = json.loads((artifacts / "pipeline-run.json").read_text())
    record["jobs"]["deploy"].update(status="failure", exit_code=1)
    record["jobs"]["deploy"]["needs"] = ["@octocat"]
    write(artifacts, "pipeline-run.json", record)
    _, markdown = report_of(artifacts)
    assert "Foo.\\_\\_init\\_\\_() got \\_id\\_" in markdown
    assert "ping @<!-- -->octocat about #<!-- -->12, mail a@b.example" in markdown
    assert not re.search(r"@octocat|#12", markdown)


def test_a_log_is_masked_before_its_tail_is_cut(artifacts: Path) -> None:
    record = json.loads((artifacts / "pipeline-run.json").read_text())
    record["jobs"]["deploy"].update(status="failure", exit_code=1, log="logs/deploy.log")
    write(artifacts, "pipeline-run.json", record)
    secret_lines = [f"    secret-line-{index}" for index in range(30)]  # the key line falls outside the tail
    write(artifacts, "logs/deploy.log", "\n".join(["values:", "  password: |", *secret_lines, "done"]) + "\n")
    html, markdown = report_of(artifacts)
    assert "secret-line" not in html + markdown
    assert "done" in markdown


def test_enormous_log_lines_leave_the_markdown_whole(artifacts: Path) -> None:
    record = json.loads((artifacts / "pipeline-run.json").read_text())
    for job in ("test", "demo"):
        record["jobs"][job].update(status="failure", exit_code=1, log=f"logs/{job}.log")
        write(artifacts, f"logs/{job}.log", "".join(f"{job} {'x' * 4000} end {i}\n" for i in range(25)))
    write(artifacts, "pipeline-run.json", record)
    _, markdown = report_of(artifacts)
    assert markdown.count("\n```") % 2 == 0, "every code block is closed"
    assert markdown.count("<details>") == markdown.count("</details>") == 2
    assert "### Drift demo" in markdown and "Made " in markdown
    assert max(len(line) for line in markdown.splitlines()) < 1000


@pytest.mark.parametrize(
    ("change", "verdict"),
    [
        ({"verification": None}, "the demo stopped after 3 drifts, before its final check of Git's state"),
        (
            {"verification": {"passed": False, "checks": []}},
            "every drift healed, but the final check found the live state differs from Git's",
        ),
        ({"drifts": []}, "no drift was caused"),
    ],
)
def test_the_demo_verdict_says_why_it_failed(artifacts: Path, change: dict, verdict: str) -> None:
    timeline = json.loads((artifacts / "demo-artifacts/timeline.json").read_text())
    assert all(drift["passed"] for drift in timeline["drifts"]) and len(timeline["drifts"]) == 3
    timeline.update(passed=False, **change)
    write(artifacts, "demo-artifacts/timeline.json", timeline)
    html, markdown = report_of(artifacts)
    assert f"❌ {verdict}" in markdown
    assert verdict in text_of(html).replace("&#39;", "'")
    assert "not every drift was healed" not in text_of(html) + markdown


def test_a_drift_that_failed_is_counted_in_the_verdict(artifacts: Path) -> None:
    timeline = json.loads((artifacts / "demo-artifacts/timeline.json").read_text())
    timeline["drifts"][1].update(passed=False, healed_at=None, time_to_heal_seconds=None)
    timeline.update(passed=False)
    write(artifacts, "demo-artifacts/timeline.json", timeline)
    html, markdown = report_of(artifacts)
    assert "❌ 1 of 3 drifts not healed" in markdown
    assert "1 of 3 drifts not healed" in text_of(html)


def test_the_markdown_report_says_why_a_drift_and_the_final_check_failed(artifacts: Path) -> None:
    """The PR comment is where most people read the demo: a bare "failed" sends them to dig."""
    timeline = json.loads((artifacts / "demo-artifacts/timeline.json").read_text())
    error = "detected but not healed within 5 s (still OutOfSync, Degraded)"
    timeline["drifts"][1].update(passed=False, healed_at=None, time_to_heal_seconds=None, error=error)
    checks = [
        {"name": "Synced and Healthy, and staying so", "passed": False, "detail": "saw OutOfSync, Healthy"},
        {"name": "the endpoint answers /predict", "passed": True, "detail": "http://127.0.0.1:1"},
    ]
    timeline.update(passed=False, verification={"passed": False, "checks": checks})
    write(artifacts, "demo-artifacts/timeline.json", timeline)
    _, markdown = report_of(artifacts)
    assert f"❌ failed: {error} |" in markdown
    assert (
        "Final check of Git's state: **failed**: Synced and Healthy, and staying so (saw OutOfSync, Healthy)"
        in (markdown)
    )
    assert "the endpoint answers /predict (http" not in markdown, "only the failed checks are named"


def test_the_final_check_of_gits_state_is_timed_in_the_report(artifacts: Path) -> None:
    timeline = json.loads((artifacts / "demo-artifacts/timeline.json").read_text())
    timeline["verification"].update(started_at=_at(120), seconds=3.4)
    write(artifacts, "demo-artifacts/timeline.json", timeline)
    html, _ = report_of(artifacts)
    heading = text_of(html.split('id="demo-verification-heading"')[1].split("</h3>")[0])
    assert f"checked at {formats.clock(_at(120))} for {formats.seconds(3.4)}" in heading


def test_a_report_made_after_ctrl_c_calls_the_run_cancelled(artifacts: Path) -> None:
    record = json.loads((artifacts / "pipeline-run.json").read_text())
    assert record["finished_at"] is None and record["jobs"]["report"]["status"] == "running"
    record["jobs"]["demo"].update(status="cancelled", exit_code=130)
    write(artifacts, "pipeline-run.json", record)
    html, markdown = report_of(artifacts)
    assert "Pipeline report: cancelled" in markdown
    assert re.search(r'id="run-status">cancelled<', html)


def test_an_image_found_in_the_cache_is_not_said_to_be_built(artifacts: Path) -> None:
    record = json.loads((artifacts / "build-output/build-record.json").read_text())
    record["image"].update(status="cached", cache_hit=True, build_seconds=0.09)
    write(artifacts, "build-output/build-record.json", record)
    html, markdown = report_of(artifacts)
    line = next(line for line in markdown.splitlines() if line.startswith("- Image:"))
    assert line.startswith("- Image: **cached** `ml-inference:3f2a9c0d`") and "built in" not in line, line
    assert "0.09 s (cache hit)" in text_of(html)


@pytest.mark.parametrize("where", ["load summary", "run record"])
def test_a_load_on_another_target_is_compared_but_never_flagged(tmp_path: Path, where: str) -> None:
    root = make_artifacts(tmp_path / "artifacts")
    previous = {**LOAD, "p99_ms": 20.0}  # a regression by the rule, were the loads alike
    if where == "load summary":
        previous["target"] = "kind"
    else:
        record = json.loads((root / "previous/pipeline-run.json").read_text())
        write(root, "previous/pipeline-run.json", {**record, "target": "kind"})
    write(root, "previous/test-results/load-summary.json", previous)
    html, markdown = report_of(root)
    assert 'id="regression-flag"' not in html and "Regression" not in markdown
    note = "The previous run loaded another target (kind, now local): the change is only indicative."
    assert note in text_of(html) and note in markdown


def test_an_only_report_run_has_no_negative_wall_time(artifacts: Path) -> None:
    record = json.loads((artifacts / "pipeline-run.json").read_text())
    record["started_at"] = _at(150.0)  # `--only report`: every other job is kept from the run before
    for name, entry in record["jobs"].items():
        if name != "report":
            entry["reused"] = True
    record["jobs"]["report"].update(started_at=_at(150.5))
    write(artifacts, "pipeline-run.json", record)
    report = collect(artifacts)
    assert report.wall_seconds is None or report.wall_seconds >= 0, report.wall_seconds
    _, markdown = report_of(artifacts)
    assert "wall time **-" not in markdown and " parallel)" not in markdown.split("\n")[2], markdown[:600]


def test_a_failure_kept_from_an_earlier_run_is_said_under_the_headline(artifacts: Path) -> None:
    """`--only report` after a failed demo: this run succeeded, but the artifacts hold a failed demo."""
    record = json.loads((artifacts / "pipeline-run.json").read_text())
    for name, entry in record["jobs"].items():
        if name != "report":
            entry["reused"] = True
    record["jobs"]["demo"].update(status="failure", exit_code=1)
    write(artifacts, "pipeline-run.json", record)
    html, markdown = report_of(artifacts)
    note = "Kept from an earlier run and not re-run here: demo failure."
    assert note in markdown.split("| Job |")[0]
    assert note in text_of(html)
    assert collect(artifacts).status != "failure", "the status counts only the jobs this run ran"


def test_a_load_paced_otherwise_is_compared_but_never_flagged(tmp_path: Path) -> None:
    root = make_artifacts(tmp_path / "artifacts")
    write(root, "test-results/load-summary.json", {**LOAD, "user_rps": 5.0})
    previous = {**LOAD, "user_rps": 10.0, "requests_per_second": 390.0}  # twice the pace, twice the rate
    write(root, "previous/test-results/load-summary.json", previous)
    html, markdown = report_of(root)
    assert 'id="regression-flag"' not in html and "Regression" not in markdown
    note = "The previous run used a different load (users, pacing or duration)"
    assert f"{note}: the change is only indicative." in text_of(html)
    assert f"{note}: the change is only indicative." in markdown


@pytest.mark.parametrize(
    "changes",
    [
        {"unit": {"started_at": "0001-01-01T00:00:00+01:00"}},  # before the first moment a datetime holds
        {"unit": {"log": "logs/" + "x" * 3000 + ".log"}},  # longer than a file name may be
        {"unit": {"duration_seconds": 1.7e308}, "deploy": {"duration_seconds": 1.7e308}},  # a sum past floats
    ],
)
def test_extreme_values_in_the_run_record_still_give_a_report(artifacts: Path, changes: dict) -> None:
    record = json.loads((artifacts / "pipeline-run.json").read_text())
    for job, change in changes.items():
        record["jobs"][job].update(change)
    write(artifacts, "pipeline-run.json", record)
    html, markdown = report_of(artifacts)
    assert 'id="job-table"' in html and "Pipeline report" in markdown


def _chart_coordinates(html: str, chart_id: str) -> list[tuple[float, float]]:
    chart = re.search(rf'<svg [^>]*id="{chart_id}".*?</svg>', html, re.S)[0]
    points = " ".join(re.findall(r'<polyline points="([^"]*)"', chart))
    circles = re.findall(r'<circle cx="([^"]*)" cy="([^"]*)"', chart)
    return [tuple(map(float, pair.split(","))) for pair in points.split()] + [
        (float(x), float(y)) for x, y in circles
    ]


def test_a_load_history_of_one_row_is_drawn_as_a_point(artifacts: Path) -> None:
    """A line through one point draws nothing: a lone point is a dot."""
    write(artifacts, "test-results/load-summary.json", {**LOAD, "history": LOAD["history"][:1]})
    html, _ = report_of(artifacts)
    for chart, lines in (("throughput-chart", 1), ("latency-chart", 2)):  # requests/s; p50 and p95
        svg = re.search(rf'<svg [^>]*id="{chart}".*?</svg>', html, re.S)[0]
        assert len(re.findall(r'<circle [^>]*class="series"', svg)) == lines, chart


def test_values_a_chart_cannot_hold_stay_inside_it(artifacts: Path) -> None:
    history = [{"t": 0, "users": 20, "rps": -50.0}, {"t": 1, "users": 20, "rps": 1.7e308, "p50_ms": 1e308}]
    write(artifacts, "test-results/load-summary.json", {**LOAD, "history": [*history, *LOAD["history"][2:]]})
    html, _ = report_of(artifacts)
    for chart in ("throughput-chart", "latency-chart"):
        box = re.search(rf'id="{chart}"[^>]*viewBox="0 0 ([\d.]+) ([\d.]+)"', html)
        width, height = float(box[1]), float(box[2])
        for x, y in _chart_coordinates(html, chart):
            assert 0 <= x <= width and 0 <= y <= height, (chart, x, y)
