"""Everything the report shows, read from the artifacts directory and from nowhere else.

Each file is loaded into an `Artifact`: its data when the file is there and well formed, otherwise
why not ("missing", "skipped" with its job, or "broken") and the state of the job that should have
made it, so the report says "test: failure, load-summary.json missing" instead of crashing or
showing zeros.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pipeline import contracts
from pipeline.contracts import (
    BuildRecord,
    ClusterStatus,
    Contract,
    ContractError,
    JobEntry,
    LoadSummary,
    MetricsVerification,
    ModelCard,
    PipelineRun,
    Sbom,
    SecurityScan,
    Timeline,
)
from pipeline.graph import JOBS, JOBS_BY_NAME
from pipeline.record import PREVIOUS_DIR, RECORD_FILE, run_status
from pipeline.scrub import mask_text
from pipeline.status import FAILED, NOT_RUN, UNKNOWN, Status
from pipeline.timestamps import elapsed, utc_now

REPORT_DIR = str(JOBS_BY_NAME["report"].artifact)
#: Regression rule for the load figures against the previous run (see README, "Report").
RPS_DROP_LIMIT = 0.20
P99_RISE_LIMIT = 0.20
#: A p99 rise smaller than this is scheduling jitter on a shared machine, not a regression.
P99_RISE_FLOOR_MS = 5.0

#: The load figures compared with the previous run's: label, field, unit, and whether (old, new) regressed.
COMPARED: tuple[tuple[str, str, str, Callable[[float, float], bool]], ...] = (
    ("Requests/s", "requests_per_second", "req/s", lambda old, new: new < old * (1 - RPS_DROP_LIMIT)),
    ("p50", "p50_ms", "ms", lambda old, new: False),
    ("p95", "p95_ms", "ms", lambda old, new: False),
    (
        "p99",
        "p99_ms",
        "ms",
        lambda old, new: new > old * (1 + P99_RISE_LIMIT) and new - old >= P99_RISE_FLOOR_MS,
    ),
    ("Failure ratio", "failure_ratio", "", lambda old, new: new > old and new > 0),
    ("Requests", "requests", "", lambda old, new: False),
)

#: What makes two loads alike, with the target they ran against.
LOAD_SHAPE = ("users", "user_rps", "spawn_rate", "duration_seconds")
#: How much of a failed job's log the report quotes: its last lines, each cut to a screen's width.
LOG_TAIL_LINES = 25
LOG_LINE_CHARS = 300

#: The elements of a JUnit <testcase> that say it did not pass, and the status each gives it.
OUTCOMES = {"failure": "failed", "error": "error", "skipped": "skipped"}

State = Literal["ok", "missing", "skipped", "broken"]
#: The run of an artifacts directory without a readable record: nothing about it is known.
NO_RUN = PipelineRun(jobs={})


@dataclass(frozen=True)
class Artifact:
    """One artifact file as the report sees it."""

    path: str  # relative to the artifacts directory, also the link target from the report
    state: State
    data: Any = None  # the file's contract (a `TestSuite` for JUnit XML) when the state is ok
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.state == "ok"


@dataclass(frozen=True)
class JobRow:
    name: str
    status: str
    needs: tuple[str, ...]
    started_at: str | None
    finished_at: str | None
    duration_seconds: float | None
    exit_code: int | None
    log: str | None  # relative path when the log file exists
    artifact: str | None  # the job's artifact folder when it exists
    log_tail: str  # the end of the log of a job that failed, else ""
    #: Kept from an earlier run (`invoke pipeline --only/--rerun-failed`): it finished before this run began.
    reused: bool


@dataclass(frozen=True)
class TestCase:
    suite: str
    name: str
    status: Literal["passed", "failed", "error", "skipped"]
    seconds: float
    message: str


@dataclass(frozen=True)
class TestSuite:
    tests: int
    failures: int
    errors: int
    skipped: int
    seconds: float
    cases: tuple[TestCase, ...]

    @property
    def passed(self) -> int:
        return self.tests - self.failures - self.errors - self.skipped


@dataclass(frozen=True)
class Change:
    """One load figure now and in the previous run."""

    label: str
    key: str
    unit: str
    previous: float | None
    current: float | None
    regressed: bool

    @property
    def ratio(self) -> float | None:
        if self.previous in (None, 0) or self.current is None:
            return None
        return (self.current - self.previous) / self.previous


@dataclass(frozen=True)
class LoadComparison:
    previous_run_id: str | None
    previous_commit: str | None
    changes: tuple[Change, ...]
    #: Why the two loads are not alike (another target, users, pacing or duration), or "" when they are:
    #: then the changes are shown as only indicative and none is flagged.
    unlike: str

    @property
    def regressed(self) -> bool:
        return any(change.regressed for change in self.changes)


@dataclass(frozen=True)
class RawFile:
    path: str
    size_bytes: int


@dataclass
class Report:
    """The report's whole input. Templates and charts read only this."""

    generated_at: str
    record: Artifact
    jobs: list[JobRow]
    build_record: Artifact
    model_card: Artifact
    sbom: Artifact
    cluster: Artifact
    unit_tests: Artifact
    api_tests: Artifact
    load: Artifact
    metrics: Artifact
    timeline: Artifact
    previous_load: Artifact
    comparison: LoadComparison | None
    raw_files: list[RawFile]
    security_scan: Artifact
    #: "test-results (job test)", for each job folder written after the record: a job run alone since.
    written_after_record: tuple[str, ...] = ()

    @property
    def run(self) -> PipelineRun:
        return self.record.data if self.record.ok else NO_RUN

    def files_in(self, folder: str) -> list[RawFile]:
        """The raw files directly inside `folder` (relative to the artifacts directory)."""
        return [file for file in self.raw_files if file.path.rpartition("/")[0] == folder]

    @property
    def status(self) -> str:
        """The run's status; while the report itself runs, the status the other jobs make."""
        if not self.record.ok:
            return UNKNOWN
        if self.run_finished:
            return self.run.status or UNKNOWN
        jobs = {job.name: {"status": job.status} for job in self.jobs}
        return run_status({"jobs": jobs}, counted=[job.name for job in self.jobs if not job.reused])

    @property
    def kept_failures(self) -> str:
        """The jobs kept from an earlier run that did not succeed, "demo failure, ...": the status
        above counts this run's jobs only, and these results still stand in the artifacts."""
        return ", ".join(
            f"{job.name} {job.status}" for job in self.jobs if job.reused and job.status in FAILED
        )

    @property
    def sum_of_job_seconds(self) -> float:
        """The time this run's jobs took, one after the other (jobs kept from an earlier run excluded)."""
        return round(sum(job.duration_seconds or 0 for job in self.jobs if not job.reused), 3)

    @property
    def run_start(self) -> str | None:
        starts = [job.started_at for job in self.jobs if job.started_at and not job.reused]
        return self.run.started_at or min(starts, default=None)

    @property
    def wall_seconds(self) -> float | None:
        """The run's wall time: the record's, or (while the report itself runs) up to the last finish."""
        if self.run.duration_seconds is not None:
            return self.run.duration_seconds
        start = self.run_start
        # This run's jobs only: a reused one finished before this run began.
        finishes = [elapsed(start, job.finished_at) for job in self.jobs if not job.reused]
        return max((seconds for seconds in finishes if seconds is not None), default=None)

    @property
    def run_finished(self) -> bool:
        return self.run.finished_at is not None


def _absent(relative: str, run: PipelineRun) -> Artifact:
    """A file that is not there: missing, with the state of the job that should have made it, or
    skipped when that job was (a quick run's demo), which is no fault of its own."""
    folder = relative.split("/", 1)[0]
    job = next((job for job in JOBS if job.artifact == folder), None)
    if job is None:
        return Artifact(relative, "missing", problem=f"{relative} is missing")
    entry = run.jobs.get(job.name)
    if entry is not None and entry.status == Status.SKIPPED:
        return Artifact(relative, "skipped", problem=f"{relative} was not made (job {job.name} was skipped)")
    ran = f"job {job.name} ended {entry.status}" if entry else f"job {job.name} did not report"
    return Artifact(relative, "missing", problem=f"{relative} is missing ({ran})")


def load_json(root: Path, relative: str, run: PipelineRun, contract: type[Contract]) -> Artifact:
    """The file at `root/relative` read through its contract (its data a `contract`), or why not."""
    path = root / relative
    if not path.is_file():
        return _absent(relative, run)
    try:
        return Artifact(relative, "ok", contracts.read(path, contract))
    except (OSError, ContractError) as error:
        return Artifact(relative, "broken", problem=f"{relative} is {error}")


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _case(suite: str, element: ET.Element) -> TestCase:
    outcome = next((child for child in element if child.tag in OUTCOMES), None)
    status, message = "passed", ""
    if outcome is not None:
        status = OUTCOMES[outcome.tag]
        message = outcome.get("message") or next(iter((outcome.text or "").strip().splitlines()), "")
    return TestCase(
        suite=element.get("classname") or suite,
        name=element.get("name", "?"),
        status=status,  # type: ignore[arg-type]
        seconds=_number(element.get("time")),
        message=mask_text(message)[:500],
    )


def load_junit(root: Path, relative: str, run: PipelineRun) -> Artifact:
    """A JUnit XML report (pytest's or any other) summed over its suites."""
    path = root / relative
    if not path.is_file():
        return _absent(relative, run)
    try:
        top = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as error:
        return Artifact(relative, "broken", problem=f"{relative} is not valid JUnit XML ({error})")
    suites = [top] if top.tag == "testsuite" else list(top.iter("testsuite"))
    if top.tag not in ("testsuite", "testsuites"):
        return Artifact(relative, "broken", problem=f"{relative} has no <testsuite> (root is <{top.tag}>)")
    cases = tuple(
        _case(suite.get("name", ""), case) for suite in suites for case in suite.findall("testcase")
    )
    summary = TestSuite(
        tests=len(cases),
        failures=sum(case.status == "failed" for case in cases),
        errors=sum(case.status == "error" for case in cases),
        skipped=sum(case.status == "skipped" for case in cases),
        seconds=round(sum(_number(suite.get("time")) for suite in suites), 3),
        cases=cases,
    )
    return Artifact(relative, "ok", summary)


def _tail(path: Path) -> str:
    """The last lines of a log, scrubbed before they are cut: what a reader needs first when a job failed."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    tail = mask_text(text).rstrip().splitlines()[-LOG_TAIL_LINES:]  # mask first: a cut secret hides
    return "\n".join(line if len(line) <= LOG_LINE_CHARS else line[:LOG_LINE_CHARS] + " …" for line in tail)


def _is_file(path: Path) -> bool:
    """Whether `path` is a file; False also for a path the system refuses (a name too long)."""
    try:
        return path.is_file()
    except OSError:
        return False


def job_rows(root: Path, record: Artifact) -> list[JobRow]:
    """One row per job of the graph, in graph order, with what the run record (a `PipelineRun`) says."""
    rows = []
    for job in JOBS:
        entry = record.data.jobs.get(job.name) if record.ok else None
        status = entry.status if entry else NOT_RUN if record.ok else UNKNOWN
        entry = entry or JobEntry(status=Status.PENDING)  # no field known but the status above
        log = entry.log if entry.log and _is_file(root / entry.log) else None
        rows.append(
            JobRow(
                name=job.name,
                status=status,
                needs=job.needs,
                started_at=entry.started_at or None,
                finished_at=entry.finished_at or None,
                duration_seconds=entry.duration_seconds,
                exit_code=entry.exit_code,
                log=log,
                artifact=job.artifact if job.artifact and (root / job.artifact).is_dir() else None,
                log_tail=_tail(root / log) if log and status in FAILED else "",
                reused=entry.reused,
            )
        )
    return rows


def compare_load(
    current: Artifact, previous: Artifact, previous_record: Artifact, run: PipelineRun
) -> LoadComparison | None:
    """The load figures against the previous run's, with the regression rule applied to alike loads."""
    if not (current.ok and previous.ok):
        return None
    now, before = current.data, previous.data
    record = previous_record.data if previous_record.ok else NO_RUN
    targets = (before.target or record.target, now.target or run.target)
    unlike = ""
    if None not in targets and targets[0] != targets[1]:
        unlike = f"The previous run loaded another target ({targets[0]}, now {targets[1]})"
    elif any(
        None not in pair and pair[0] != pair[1]  # a field an older summary lacks is not held against it
        for pair in ((getattr(before, key), getattr(now, key)) for key in LOAD_SHAPE)
    ):
        unlike = "The previous run used a different load (users, pacing or duration)"
    changes = []
    for label, key, unit, regressed in COMPARED:
        old, new = getattr(before, key), getattr(now, key)
        hit = not unlike and old is not None and new is not None and regressed(old, new)
        changes.append(Change(label, key, unit, old, new, hit))
    return LoadComparison(
        previous_run_id=record.run_id,
        previous_commit=record.commit,
        changes=tuple(changes),
        unlike=unlike,
    )


def written_after_record(root: Path) -> tuple[str, ...]:
    """The job folders holding a file newer than pipeline-run.json, which the runner rewrites at every
    job's end (GitHub: builds after the downloads): their job ran alone since (`nox -s test`), so
    the record's status for it is not the one of the files shown."""
    try:
        recorded = (root / RECORD_FILE).stat().st_mtime
    except OSError:
        return ()
    return tuple(
        f"{job.artifact} (job {job.name})"
        for job in JOBS
        if job.artifact not in (None, REPORT_DIR)
        and any(
            path.is_file() and path.stat().st_mtime > recorded for path in (root / job.artifact).rglob("*")
        )
    )


def raw_files(root: Path) -> list[RawFile]:
    """Every artifact file other than the report's own and hidden ones, for the links section."""
    return [
        RawFile(relative.as_posix(), path.stat().st_size)
        for path in sorted(root.rglob("*"))
        if path.is_file()
        and (relative := path.relative_to(root)).parts[0] != REPORT_DIR
        and not any(part.startswith(".") for part in relative.parts)
    ]


def collect(root: Path, now: str | None = None) -> Report:
    """Read every artifact under `root` (the artifacts directory) into a `Report`.

    `now` is the moment the report is made (default: the wall clock). A job still running, the
    report itself included, is drawn up to it.
    """
    record = load_json(root, RECORD_FILE, NO_RUN, PipelineRun)
    run = record.data if record.ok else NO_RUN
    load = load_json(root, "test-results/load-summary.json", run, LoadSummary)
    previous_load = load_json(root, f"{PREVIOUS_DIR}/test-results/load-summary.json", NO_RUN, LoadSummary)
    return Report(
        generated_at=now or utc_now("seconds"),
        record=record,
        jobs=job_rows(root, record),
        build_record=load_json(root, "build-output/build-record.json", run, BuildRecord),
        model_card=load_json(root, "build-output/model/model-card.json", run, ModelCard),
        sbom=load_json(root, "build-output/sbom.cdx.json", run, Sbom),
        cluster=load_json(root, "cluster-state/status.json", run, ClusterStatus),
        unit_tests=load_junit(root, "unit-results/junit.xml", run),
        api_tests=load_junit(root, "test-results/api-junit.xml", run),
        load=load,
        metrics=load_json(root, "test-results/metrics-verification.json", run, MetricsVerification),
        timeline=load_json(root, "demo-artifacts/timeline.json", run, Timeline),
        previous_load=previous_load,
        comparison=compare_load(
            load, previous_load, load_json(root, f"{PREVIOUS_DIR}/{RECORD_FILE}", NO_RUN, PipelineRun), run
        ),
        raw_files=raw_files(root),
        security_scan=load_json(root, "security-scan/scan.json", run, SecurityScan),
        written_after_record=written_after_record(root),
    )
