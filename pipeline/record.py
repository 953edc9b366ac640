"""The run record, `artifacts/pipeline-run.json`: what ran, how it ended, what each job handed on.

The local runner keeps it up to date after every state change. In GitHub Actions each job runs on
its own machine, so the report job rebuilds the same record from the `needs` context (plus job
timings from the REST API when the token may read them): `python -m pipeline.record github`.
Either way the report only ever reads this one file.

The report compares the load figures with the previous run's, kept in `previous/`: locally the
runner keeps them before a fresh run; in GitHub Actions `python -m pipeline.record github-previous`
downloads the `test-results` artifact of this workflow's last successful run on the same branch
(else the default branch). The report job runs these with only requirements/tools.txt installed.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pipeline import contracts, settings
from pipeline.artifacts import job_outputs, write_json_atomic
from pipeline.contracts import ContractError, JobEntry, LoadSummary, PipelineRun
from pipeline.graph import JOBS, Job
from pipeline.status import FAILED, FINISHED, Status
from pipeline.timestamps import elapsed, utc_now

RECORD_FILE = "pipeline-run.json"
PREVIOUS_DIR = "previous"
#: The model quality gate's baseline: kept whenever a run empties the build's folder, fresh run or not.
GATE_BASELINE = ("build-output/build-record.json", "build-output/model/model-card.json")
#: The report's load baseline: a load summary, and the record of the run that made it (its id, commit).
LOAD_BASELINE = (RECORD_FILE, "test-results/load-summary.json")

Record = dict[str, Any]


def current_commit(cwd: Path | None = None) -> str:
    """The commit being run: GitHub's, else the checkout's HEAD, else "unknown"."""
    if os.environ.get("GITHUB_SHA"):
        return os.environ["GITHUB_SHA"]
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip()


def new_record(
    *, run_id: str, commit: str, target: str, demo_mode: str, parallel: bool, jobs: Iterable[Job]
) -> Record:
    """A running run's record, its jobs pending: a `PipelineRun` as plain data the runner updates."""
    entries = {
        job.name: JobEntry(
            status=Status.PENDING, needs=list(job.needs), artifact=job.artifact, log=f"logs/{job.name}.log"
        )
        for job in jobs
    }
    run = PipelineRun(
        run_id=run_id,
        commit=commit,
        target=target,
        demo_mode=demo_mode,
        parallel=parallel,
        started_at=utc_now(),
        status=Status.RUNNING,
        jobs=entries,
    )
    return contracts.encode(PipelineRun, run)


def run_status(record: Record, *, cancelled: bool = False, counted: Iterable[str] | None = None) -> Status:
    """How the run ended: "cancelled", or "success" only when no job that should have run failed.

    A job is cancelled only when its run is (Ctrl-C, or a cancelled workflow), so one cancelled job
    makes the run cancelled. `counted` names the jobs this run was asked to run (all by default):
    with `--only`, a job outside it keeps its earlier entry but does not decide this run's status.
    """
    names = record["jobs"] if counted is None else counted
    statuses = {record["jobs"][name]["status"] for name in names}
    if cancelled or Status.CANCELLED in statuses:
        return Status.CANCELLED
    return Status.FAILURE if statuses & FAILED else Status.SUCCESS


def finish(record: Record, *, cancelled: bool = False, counted: Iterable[str] | None = None) -> None:
    record["finished_at"] = utc_now()
    record["duration_seconds"] = elapsed(record["started_at"], record["finished_at"])
    record["status"] = run_status(record, cancelled=cancelled, counted=counted)


def read_record(artifacts_dir: Path) -> Record | None:
    """The last run's record, or None when there is none or it cannot be read (its reason printed)."""
    try:
        return contracts.encode(PipelineRun, contracts.read(artifacts_dir / RECORD_FILE, PipelineRun))
    except FileNotFoundError:
        return None
    except (OSError, ContractError) as error:
        print(f"{artifacts_dir / RECORD_FILE} is {error}; it is ignored")
        return None


def write_record(artifacts_dir: Path, record: Record) -> None:
    write_json_atomic(artifacts_dir / RECORD_FILE, contracts.encode(PipelineRun, record))


def keep_previous_run(artifacts_dir: Path) -> None:
    """Before a fresh run empties the jobs' folders: the last run's baselines into `previous/`.

    Each replaces the one kept before only when the last run made it, so a run stopped before its
    build or its load leaves the older baseline, rather than a gate with its floor alone and no load
    to compare with.
    """
    if (artifacts_dir / LOAD_BASELINE[1]).is_file():
        _keep(artifacts_dir, LOAD_BASELINE)
    _keep(artifacts_dir, GATE_BASELINE)


def keep_gate_baseline(artifacts_dir: Path, folder: str) -> None:
    """Before `folder` is emptied: if it is the build's, keep its model as the quality gate's baseline."""
    _keep(artifacts_dir, [relative for relative in GATE_BASELINE if relative.startswith(f"{folder}/")])


def _keep(artifacts_dir: Path, files: Iterable[str]) -> None:
    previous = artifacts_dir / PREVIOUS_DIR
    for relative in files:
        source = artifacts_dir / relative
        if source.is_file():
            (previous / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, previous / relative)


# --- GitHub Actions: rebuild the record from the `needs` context -------------------------------

GITHUB_API_ENV = ("GITHUB_API_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
DEFAULT_API_URL = "https://api.github.com"
#: What the job that makes the load summary uploads, and the file the report compares.
LOAD_ARTIFACT, LOAD_SUMMARY = LOAD_BASELINE[1].split("/")
#: A test-results archive is a few MB (Locust CSVs and HTML); refuse anything absurd.
MAX_ARCHIVE_BYTES = 256 * 1024 * 1024


def _has_github_api(environ: Mapping[str, str]) -> bool:
    return bool(environ.get("GITHUB_TOKEN")) and all(environ.get(key) for key in GITHUB_API_ENV)


#: What a call of the GitHub API may raise, a dropped connection included (not an OSError).
API_ERRORS = (OSError, ValueError, http.client.HTTPException)


def github_api(
    environ: Mapping[str, str],
    path: str,
    body: Mapping[str, Any] | None = None,
    *,
    method: str = "GET",
    **query: object,
) -> Any:
    """`method` `path` of the REST API at GITHUB_API_URL with the job's token (GITHUB_TOKEN).

    Raises OSError (urllib.error.HTTPError for an answer that is not 2xx), http.client.HTTPException
    (a connection dropped mid-answer) or ValueError on failure: API_ERRORS.
    """
    api_url = (environ.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/")
    request = urllib.request.Request(
        f"{api_url}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else ""),
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={
            "Authorization": f"Bearer {environ['GITHUB_TOKEN']}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "Content-Type": "application/json",
            "User-Agent": "ml-gitops-pipeline",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def github_job_timings(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Each job's API entry (started_at, completed_at, conclusion, html_url) by name, or {} without access."""
    if not _has_github_api(environ):
        return {}
    path = (
        f"/repos/{environ['GITHUB_REPOSITORY']}/actions/runs/{environ['GITHUB_RUN_ID']}"
        f"/attempts/{environ.get('GITHUB_RUN_ATTEMPT', '1')}/jobs"
    )
    try:
        payload = github_api(environ, path, per_page=100)
    except API_ERRORS as error:
        print(f"job timings unavailable ({error}); the record has statuses only")
        return {}
    return {entry["name"]: entry for entry in payload.get("jobs", [])}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # urllib would forward the Authorization header to the redirect's host


def _download_archive(environ: Mapping[str, str], url: str) -> bytes:
    """An artifact's zip: the API redirects to short-lived storage, which is fetched without the token."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {environ['GITHUB_TOKEN']}"})
    try:
        with urllib.request.build_opener(_NoRedirect).open(request, timeout=30) as response:
            return response.read(MAX_ARCHIVE_BYTES + 1)
    except urllib.error.HTTPError as answer:
        location = answer.headers.get("Location")
        if answer.code not in (301, 302, 303, 307, 308) or not location:
            raise
    if urllib.parse.urlsplit(location).scheme not in ("https", "http"):
        raise ValueError(f"artifact download redirected to {location!r}")
    with urllib.request.urlopen(location, timeout=60) as response:
        return response.read(MAX_ARCHIVE_BYTES + 1)


def _previous_runs(environ: Mapping[str, str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(branch, run) of this workflow's successful runs in this repository: same branch, then default."""
    repo, run_id = environ["GITHUB_REPOSITORY"], environ["GITHUB_RUN_ID"]
    workflow_id = github_api(environ, f"/repos/{repo}/actions/runs/{run_id}")["workflow_id"]
    branches = [environ.get("GITHUB_HEAD_REF") or environ.get("GITHUB_REF_NAME")]
    branches.append(github_api(environ, f"/repos/{repo}")["default_branch"])
    for branch in dict.fromkeys(branch for branch in branches if branch):
        runs = github_api(
            environ,
            f"/repos/{repo}/actions/workflows/{workflow_id}/runs",
            branch=branch,
            status="success",
            per_page=10,  # bounds the look-up: runs of this branch without a summary are few
        )["workflow_runs"]
        for run in runs:  # a fork's pull request may name a branch like ours
            if str(run["id"]) != run_id and (run.get("head_repository") or {}).get("full_name") == repo:
                yield branch, run


def fetch_previous_load(artifacts_dir: Path, environ: Mapping[str, str]) -> str:
    """Put the last successful run's load summary (and its id) in `previous/`; returns what happened.

    Best effort: any failure leaves `previous/` as it was, and the report simply compares nothing.
    """
    if not _has_github_api(environ):
        return f"previous run: not looked up (needs GITHUB_TOKEN and {', '.join(GITHUB_API_ENV)})"
    repo = environ["GITHUB_REPOSITORY"]
    try:
        for branch, run in _previous_runs(environ):
            listing = github_api(
                environ, f"/repos/{repo}/actions/runs/{run['id']}/artifacts", name=LOAD_ARTIFACT
            )
            live = [artifact for artifact in listing["artifacts"] if not artifact.get("expired")]
            if not live:
                continue
            archive = _download_archive(environ, live[0]["archive_download_url"])
            if len(archive) > MAX_ARCHIVE_BYTES:
                return f"previous run: {LOAD_ARTIFACT} of run {run['id']} is too large; not compared"
            with zipfile.ZipFile(io.BytesIO(archive)) as bundle:
                if LOAD_SUMMARY not in bundle.namelist():
                    continue
                summary = contracts.decode(bundle.read(LOAD_SUMMARY), LoadSummary)
            previous = artifacts_dir / PREVIOUS_DIR
            write_json_atomic(previous / LOAD_ARTIFACT / LOAD_SUMMARY, contracts.encode(LoadSummary, summary))
            write_record(
                previous,
                {
                    "run_id": str(run["id"]),
                    "commit": run.get("head_sha"),
                    "started_at": run.get("run_started_at"),
                    "status": Status.SUCCESS,
                    "jobs": {},
                },
            )
            return f"previous run: {run.get('html_url') or run['id']} on {branch}: load figures in {previous}"
    except (*API_ERRORS, KeyError, TypeError, zipfile.BadZipFile) as error:
        return f"previous run: not compared ({type(error).__name__}: {error})"
    return f"previous run: no successful run of this workflow with a {LOAD_SUMMARY} yet; nothing to compare"


def record_from_github(
    needs: Mapping[str, Mapping[str, Any]],
    *,
    current_job: str,
    artifacts_dir: Path,
    environ: Mapping[str, str],
    timings: Mapping[str, Mapping[str, Any]],
) -> Record:
    """The run record as seen by `current_job` (running), from its `needs` and the downloaded artifacts."""
    jobs = [job for job in JOBS if job.name in needs or job.name == current_job]
    record = new_record(
        run_id=environ.get("PIPELINE_RUN_ID") or environ.get("GITHUB_RUN_ID", "github"),
        commit=environ.get("GITHUB_SHA", "unknown"),
        target=settings.get("PIPELINE_TARGET", environ),
        demo_mode=settings.get("PIPELINE_DEMO_MODE", environ),
        parallel=True,
        jobs=jobs,
    )
    for job in jobs:
        entry = record["jobs"][job.name]
        timing = timings.get(job.name, {})
        if job.name == current_job:
            entry.update(status=Status.RUNNING, started_at=timing.get("started_at") or utc_now())
            continue
        # The `needs` context's `result` is a finished status; only the jobs API says "timed_out".
        status = needs[job.name].get("result", Status.SKIPPED)
        if timing.get("conclusion") == Status.TIMED_OUT:
            status = Status.TIMED_OUT
        entry["status"] = status if status in FINISHED else Status.FAILURE
        entry["exit_code"] = 0 if status == Status.SUCCESS else None
        if timing.get("started_at") and status != Status.SKIPPED:
            entry["started_at"] = timing["started_at"]
            entry["finished_at"] = timing.get("completed_at")
            entry["duration_seconds"] = elapsed(entry["started_at"], entry["finished_at"])
        entry["outputs"] = {**job_outputs(artifacts_dir, job), **needs[job.name].get("outputs", {})}
    started = [entry["started_at"] for entry in record["jobs"].values() if entry["started_at"]]
    record["started_at"] = min(started, default=record["started_at"])
    record["status"] = run_status(record, counted=[name for name in record["jobs"] if name != current_job])
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.record", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    github = commands.add_parser("github", help="write pipeline-run.json from NEEDS_JSON (toJSON(needs))")
    github.add_argument("--job", default=os.environ.get("GITHUB_JOB", "report"), help="the job running now")
    previous = commands.add_parser(
        "github-previous", help="download the last successful run's load summary into previous/ (best effort)"
    )
    for command in (github, previous):
        command.add_argument(
            "--artifacts-dir", type=Path, default=Path(settings.get("PIPELINE_ARTIFACTS_DIR"))
        )
    args = parser.parse_args(argv)
    if args.command == "github-previous":
        print(fetch_previous_load(args.artifacts_dir, os.environ))
        return
    needs_json = os.environ.get("NEEDS_JSON")
    if not needs_json:
        parser.error("NEEDS_JSON is not set; the workflow passes it as ${{ toJSON(needs) }}")
    record = record_from_github(
        json.loads(needs_json),
        current_job=args.job,
        artifacts_dir=args.artifacts_dir,
        environ=os.environ,
        timings=github_job_timings(os.environ),
    )
    write_record(args.artifacts_dir, record)
    print(f"wrote {args.artifacts_dir / RECORD_FILE}: run {record['status']}")


if __name__ == "__main__":
    main()
