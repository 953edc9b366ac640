"""Every file one job writes for another, as typed models: the one place their shapes live.

A producer writes `encode(Model, data)` with `pipeline.artifacts.write_json_atomic`: the data
checked against the model and stamped with its `schema_version`. A reader decodes through
`read(path, Model)`. `docs/artifacts.md` is
generated from this module (`python -m pipeline.docgen`): a field's `#:` comment is its description.

Versions: a reader takes every file up to its own `SCHEMA_VERSION`. A file older than the field
is version 1, and the fields it lacks get their defaults. A newer file is refused with
"written by a newer pipeline (schema N), cannot read". Adding an optional field keeps the
version; removing a field, changing its meaning or adding a required one raises it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from pipeline.status import Status

SCHEMA_VERSION = 1


class Contract(msgspec.Struct, kw_only=True):
    #: The contract's version this file was written with (a file without it is version 1).
    schema_version: int = SCHEMA_VERSION


class ContractError(ValueError):
    """A file that cannot be read as its contract: not JSON, the wrong shape, or a newer schema."""


C = TypeVar("C", bound=Contract)
S = TypeVar("S", bound=msgspec.Struct)


class _Version(msgspec.Struct):
    schema_version: int = 1


def decode(data: bytes | str, model: type[C]) -> C:
    """`data` (JSON) as `model`; raises ContractError saying why it is not one."""
    try:
        version = msgspec.json.decode(data, type=_Version).schema_version
        if version > SCHEMA_VERSION:
            raise ContractError(f"written by a newer pipeline (schema {version}), cannot read")
        return msgspec.json.decode(data, type=model)
    except msgspec.DecodeError as error:
        reason = "not valid JSON" if type(error) is msgspec.DecodeError else "not of its contract"
        raise ContractError(f"{reason} ({error})") from None


def read(path: Path, model: type[C]) -> C:
    """The file at `path` as `model`; raises OSError when it cannot be read, ContractError when broken."""
    return decode(path.read_bytes(), model)


def encode(model: type[S], data: S | Mapping[str, Any]) -> dict[str, Any]:
    """`data` (a `model`, or a mapping of its fields) checked and versioned, ready to write as JSON.

    Raises msgspec.ValidationError naming the field a producer got wrong.
    """
    return msgspec.to_builtins(data if isinstance(data, model) else msgspec.convert(data, model))


# --- outputs.json ------------------------------------------------------------------------------
# A job's outputs are mirrored key for key into `$GITHUB_OUTPUT`, so outputs.json is a flat map
# of strings without a version; each job's fields are checked when it writes them.


class UnitOutputs(msgspec.Struct, kw_only=True):
    """unit-results/outputs.json: the counts of the service's unit tests."""

    tests: str
    passed: str
    failures: str
    errors: str
    skipped: str


class BuildOutputs(msgspec.Struct, kw_only=True):
    """build-output/outputs.json: what the build made, for deploy, test, demo and scan."""

    #: The trained model's version.
    model_version: str = ""
    #: The model file's SHA-256.
    model_sha256: str = ""
    #: pending, built, cached or skipped (no container engine).
    image_status: str = ""
    #: The image reference targets run (empty when no image was built).
    image_tag: str = ""
    image_id: str = ""
    #: The registry digest after a push (empty when the image stayed local).
    image_digest: str = ""


class DeployOutputs(msgspec.Struct, kw_only=True):
    """cluster-state/outputs.json: the deployed environment."""

    endpoint: str
    environment: str
    #: Empty when the environment runs no Prometheus.
    prometheus_url: str
    sync: str
    health: str
    #: How many replicas answer.
    replicas: str


class TestOutputs(msgspec.Struct, kw_only=True):
    """test-results/outputs.json: each check's verdict ("true"/"false") and the load's figures."""

    api_passed: str
    load_passed: str
    metrics_passed: str
    requests: str
    #: Empty when no request was answered.
    p99_ms: str


class DemoOutputs(msgspec.Struct, kw_only=True):
    """demo-artifacts/outputs.json: the drift demo's verdict and figures."""

    passed: str
    drifts: str
    #: Empty when no drift healed.
    max_time_to_heal_seconds: str
    load_failure_ratio: str


#: The outputs each job publishes, by job.
OUTPUTS: dict[str, type[msgspec.Struct]] = {
    "unit": UnitOutputs,
    "build": BuildOutputs,
    "deploy": DeployOutputs,
    "test": TestOutputs,
    "demo": DemoOutputs,
}


# --- build-output/build-record.json ------------------------------------------------------------


class Model(msgspec.Struct, kw_only=True):
    name: str
    version: str
    artifact_sha256: str
    #: Accuracy on the held-out split.
    test_accuracy: float


class Image(msgspec.Struct, kw_only=True):
    #: pending, built, cached or skipped.
    status: str = "pending"
    #: Why it was skipped or not rebuilt.
    reason: str | None = None
    #: `ml-inference:<content digest>`, or the registry reference after a push.
    tag: str | None = None
    image_id: str | None = None
    #: The registry digest after a push.
    digest: str | None = None
    size_bytes: int | None = None
    build_seconds: float | None = None
    #: The image was already there with the same content.
    cache_hit: bool = False
    base_image: str | None = None
    #: The built container passed the verification checks.
    verified: bool = False


class PreviousModel(msgspec.Struct, kw_only=True):
    version: str | None = None
    test_accuracy: float
    #: Where it was read.
    source: str = ""


class QualityGate(msgspec.Struct, kw_only=True):
    #: passed or failed; pending from the build's start until the gate has judged its model.
    verdict: str
    #: The figures judged (null while pending).
    model_version: str | None = None
    test_accuracy: float | None = None
    #: The floor (pipeline/build/quality-gate.toml).
    min_test_accuracy: float | None = None
    #: The largest drop allowed below the previous model's accuracy.
    max_drop: float | None = None
    #: The last accepted model of this artifacts directory, when there is one.
    previous: PreviousModel | None = None
    #: One per failed condition.
    reasons: list[str] = []


class BuildRecord(Contract, kw_only=True):
    """build-output/build-record.json: the model, the gate's verdict, the image and its SBOM.

    Rewritten after every step, so a failed build leaves what it had done.
    """

    #: The trained model (null until training finished).
    model: Model | None = None
    image: Image = msgspec.field(default_factory=Image)
    #: The SBOM's file name in the same folder (null until written).
    sbom: str | None = None
    #: The model quality gate's inputs and verdict.
    quality_gate: QualityGate | None = None


class ModelCard(Contract, kw_only=True):
    """build-output/model/model-card.json, written by the service's trainer: read, never written, here."""

    name: str
    version: str
    artifact_sha256: str | None = None
    test_accuracy: float | None = None
    #: Sizes of the train and test splits and the seed.
    split: dict[str, Any] = {}
    library_versions: dict[str, str] = {}
    class_names: list[str] = []
    feature_names: list[str] = []


class Sbom(Contract, kw_only=True):
    """build-output/sbom.cdx.json, a CycloneDX document: the report reads only these fields."""

    bomFormat: str
    components: list[dict[str, Any]] = []


# --- cluster-state/status.json -----------------------------------------------------------------


class Prometheus(msgspec.Struct, kw_only=True):
    url: str
    #: The environment's scrape targets: pod, url, health.
    targets: list[dict[str, Any]] = []


class ClusterStatus(Contract, kw_only=True):
    """cluster-state/status.json: the environment as its controller saw it when the job ended."""

    #: local, kind or minikube.
    target: str
    environment: str | None = None
    #: Where the service answers (null when it never came up).
    endpoint: str | None
    #: The controller's sync status (Synced, OutOfSync, Unknown).
    sync: str | None = None
    #: The controller's health status (Healthy, Progressing, Degraded, Missing).
    health: str | None = None
    #: The Git revision applied.
    revision: str | None = None
    #: Why the environment is not Synced and Healthy (local target).
    reasons: list[str] = []
    #: Replicas the rendered Deployment asks for (local target).
    desired_replicas: int | None = None
    #: Self-heal on or off (local target).
    heal: bool | None = None
    #: Kubernetes namespace (kind/minikube).
    namespace: str | None = None
    #: The Argo CD Application (kind/minikube).
    application: str | None = None
    #: One object per replica; its fields depend on the target.
    replicas: list[dict[str, Any]] = []
    #: The Prometheus scraping the environment (null when none runs).
    prometheus: Prometheus | None = None
    #: What could not be read (kind/minikube).
    errors: list[str] = []
    observed_at: str | None = None


# --- test-results/load-summary.json and metrics-verification.json ------------------------------


class LoadPoint(msgspec.Struct, kw_only=True):
    #: Seconds since the first row.
    t: int
    users: int
    #: Requests sent since the row before, per second (from Locust's running total).
    rps: float
    p50_ms: float | None = None
    p95_ms: float | None = None


class LoadSummary(Contract, kw_only=True):
    """test-results/load-summary.json: the Locust load, its figures and its verdict."""

    #: The target the load ran against: local, kind or minikube (null in a file written before it was kept).
    target: str | None = None
    users: int | None = None
    spawn_rate: float | None = None
    duration_seconds: float | None = None
    #: Requests per second each user sends.
    user_rps: float | None = None
    requests: int
    failures: int = 0
    failure_ratio: float = 0.0
    requests_per_second: float = 0.0
    p50_ms: float | None = None
    p95_ms: float | None = None
    #: Null when no request was answered.
    p99_ms: float | None = None
    #: Requests sent per route, what the metrics verification expects the counters to grow by.
    requests_by_route: dict[str, int] = {}
    #: Locust's aggregated stats once a second.
    history: list[LoadPoint] = []
    #: The limits applied (pipeline/checks/load-thresholds.toml).
    thresholds: dict[str, float] = {}
    #: One sentence per broken limit.
    violations: list[str] = []
    passed: bool = False


class Check(msgspec.Struct):
    name: str
    passed: bool
    detail: str = ""


class MetricsVerification(Contract, kw_only=True):
    """test-results/metrics-verification.json: the service's metrics against the load it was sent."""

    #: prometheus (its HTTP API) or direct (each replica's /metrics).
    mode: str | None = None
    prometheus_url: str | None = None
    checks: list[Check]
    passed: bool = False
    #: Every query made, with its time and result.
    queries: list[dict[str, Any]] = []


# --- demo-artifacts/timeline.json --------------------------------------------------------------


class Counts(msgspec.Struct, kw_only=True):
    """A figure read before the drift, just after it was caused, and once healed (or given up on)."""

    before: int | None = None
    during: int | None = None
    after: int | None = None


class SettingValues(msgspec.Struct, kw_only=True):
    """A setting's distinct values across the running replicas, at the same three moments."""

    before: list[str] | None = None
    during: list[str] | None = None
    after: list[str] | None = None


class Drift(msgspec.Struct, kw_only=True):
    name: str
    description: str = ""
    drift_at: str | None = None
    #: When the controller first reported it (not Synced and Healthy).
    detected_at: str | None = None
    #: When it was Synced and Healthy again.
    healed_at: str | None = None
    time_to_detect_seconds: float | None = None
    time_to_heal_seconds: float | None = None
    passed: bool = False
    error: str | None = None
    #: Replicas running (ready or not); null in a timeline written before these were recorded.
    replicas: Counts | None = None
    ready_replicas: Counts | None = None
    #: The setting the config drift changes, by name (the local target's ML_INFERENCE_MAX_BATCH).
    config: dict[str, SettingValues] = {}


class BackgroundLoad(msgspec.Struct, kw_only=True):
    requests: int
    failures: int
    failure_ratio: float
    #: The first failures' descriptions.
    first_failures: list[Any] = []


class Verification(msgspec.Struct, kw_only=True):
    passed: bool
    checks: list[Check] = []
    #: When the check began, after the last drift (null in a timeline written before it was timed).
    started_at: str | None = None
    #: How long it took, holding the live state converged included.
    seconds: float | None = None


class Timeline(Contract, kw_only=True):
    """demo-artifacts/timeline.json: each drift caused by hand, detected and healed, under load.

    Rewritten after every drift, so a demo that stopped halfway leaves the drifts it timed.
    """

    target: str | None = None
    environment: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    drifts: list[Drift]
    #: The steady background load during the drifts.
    load: BackgroundLoad | None = None
    #: The final check that the live state is Git's.
    verification: Verification | None = None
    passed: bool = False


# --- security-scan/scan.json -------------------------------------------------------------------


class Finding(msgspec.Struct):
    rule: str
    severity: str
    message: str
    where: str = ""
    #: Why it does not count against `fail_at` (empty: it counts).
    waived: str = ""


class ScanPart(msgspec.Struct, kw_only=True):
    name: str
    title: str
    #: The lowest severity that fails the part.
    fail_at: str
    #: passed, failed or skipped.
    status: str
    reason: str = ""
    findings: list[Finding] = []
    #: Raw tool outputs, relative to the scan's folder.
    raw: list[str] = []
    #: How many findings count against `fail_at`.
    failing: int = 0


class SecurityScan(Contract, kw_only=True):
    """security-scan/scan.json: the scan's verdict, then each part with its findings."""

    #: passed or failed.
    status: str
    #: The image scanned (null when the build made none).
    image: str | None = None
    #: The policy file applied.
    policy: str | None = None
    parts: list[ScanPart]

    @property
    def verdict(self) -> str:
        """The status, naming the parts that could not run: a bare "passed" means every part ran."""
        skipped = [part.title for part in self.parts if part.status == "skipped"]
        if not skipped:
            return self.status
        return f"{self.status}, {len(skipped)} of {len(self.parts)} parts skipped ({', '.join(skipped)})"


# --- pipeline-run.json -------------------------------------------------------------------------


class JobEntry(msgspec.Struct, kw_only=True):
    status: Status
    needs: list[str] = []
    #: The job's artifact folder.
    artifact: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    duration_seconds: float | None = None
    exit_code: int | None = None
    #: The job's log, relative to the artifacts directory.
    log: str | None = None
    #: The job's outputs.json.
    outputs: dict[str, str] = {}
    #: Kept from an earlier run (`--only`, `--rerun-failed`): not counted in this run.
    reused: bool = False


class PipelineRun(Contract, kw_only=True):
    """pipeline-run.json: what ran, how it ended, what each job handed on (pipeline/record.py)."""

    run_id: str | None = None
    commit: str | None = None
    #: The target environments ran on.
    target: str | None = None
    demo_mode: str | None = None
    parallel: bool = False
    started_at: str | None = None
    #: Null while the run goes on.
    finished_at: str | None = None
    duration_seconds: float | None = None
    status: Status | None = None
    #: One entry per job, by name, in graph order.
    jobs: dict[str, JobEntry]


#: Every versioned file, by its path under the artifacts directory, in the order a run makes them.
FILES: dict[str, type[Contract]] = {
    "build-output/build-record.json": BuildRecord,
    "cluster-state/status.json": ClusterStatus,
    "security-scan/scan.json": SecurityScan,
    "test-results/load-summary.json": LoadSummary,
    "test-results/metrics-verification.json": MetricsVerification,
    "demo-artifacts/timeline.json": Timeline,
    "pipeline-run.json": PipelineRun,
}
