"""The artifact contracts: each file round-trips, yesterday's files are read, tomorrow's are refused."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from pipeline import contracts
from pipeline.artifacts import write_json_atomic, write_outputs
from pipeline.context import RunContext
from pipeline.report.collect import collect
from pipeline.status import Status
from tests.report.test_report import make_artifacts


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    return make_artifacts(tmp_path / "artifacts")


@pytest.mark.parametrize("relative", sorted(contracts.FILES))
def test_every_contract_round_trips_the_sample_run(artifacts: Path, relative: str) -> None:
    model = contracts.FILES[relative]
    original = json.loads((artifacts / relative).read_text())
    written = contracts.encode(model, original)
    path = artifacts / "again.json"
    write_json_atomic(path, written)
    assert contracts.read(path, model) == msgspec.convert(original, model)
    assert written["schema_version"] == contracts.SCHEMA_VERSION
    assert _keeps(written, original), "a value the producer wrote was lost or changed"


def _keeps(written: object, original: object) -> bool:
    """Every value of `original` is in `written` (which may add the defaults of fields it lacked)."""
    if isinstance(original, dict):
        return isinstance(written, dict) and all(_keeps(written.get(k), v) for k, v in original.items())
    if isinstance(original, list):
        return (
            isinstance(written, list)
            and len(written) == len(original)
            and all(map(_keeps, written, original))
        )
    return written == original


def test_a_file_from_before_schema_versions_is_read_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "load-summary.json"
    path.write_text(json.dumps({"requests": 120, "p99_ms": 31.0}))
    summary = contracts.read(path, contracts.LoadSummary)
    assert summary.schema_version == 1
    assert (summary.requests, summary.p99_ms) == (120, 31.0)
    assert (summary.history, summary.violations, summary.passed) == ([], [], False)


def test_a_file_of_a_newer_schema_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "timeline.json"
    path.write_text(json.dumps({"schema_version": contracts.SCHEMA_VERSION + 1, "drifts": "reshaped"}))
    with pytest.raises(
        contracts.ContractError, match=r"written by a newer pipeline \(schema 2\), cannot read"
    ):
        contracts.read(path, contracts.Timeline)


def test_the_report_says_it_cannot_read_a_newer_file_and_still_renders(artifacts: Path) -> None:
    path = artifacts / "test-results/load-summary.json"
    path.write_text(json.dumps({"schema_version": 99, "requests": "many"}))
    report = collect(artifacts)
    assert report.load.state == "broken"
    assert report.load.problem == (
        "test-results/load-summary.json is written by a newer pipeline (schema 99), cannot read"
    )
    assert report.comparison is None


def test_a_producer_that_gets_a_field_wrong_is_stopped_naming_it() -> None:
    with pytest.raises(msgspec.ValidationError, match=r"\$\.requests"):
        contracts.encode(contracts.LoadSummary, {"requests": "3917"})


def test_the_run_record_keeps_statuses_as_their_names() -> None:
    record = {"run_id": "r", "status": Status.RUNNING, "jobs": {"unit": {"status": Status.PENDING}}}
    written = contracts.encode(contracts.PipelineRun, record)
    assert written["status"] == "running" and written["jobs"]["unit"]["status"] == "pending"


def test_outputs_are_checked_against_their_jobs_fields(tmp_path: Path) -> None:
    context = RunContext("local", "full", tmp_path, "r", dry_run=False, keep=False)
    write_outputs("build", {"image_tag": "ml-inference:1"}, context)
    assert json.loads((tmp_path / "build-output/outputs.json").read_text())["image_tag"] == "ml-inference:1"
    with pytest.raises(msgspec.ValidationError, match="endpoint"):
        write_outputs("deploy", {"environment": "deploy"}, context)


def test_a_timeline_from_before_the_replica_counts_is_read_without_them(tmp_path: Path) -> None:
    path = tmp_path / "timeline.json"
    path.write_text('{"schema_version": 1, "drifts": [{"name": "replica-killed", "passed": true}]}')
    drift = contracts.read(path, contracts.Timeline).drifts[0]
    assert drift.replicas is None and drift.ready_replicas is None and drift.config == {}
