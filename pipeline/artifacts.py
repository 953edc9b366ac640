"""Where jobs put what they make, and how they hand outputs to the jobs that need them.

Locally a job reads its needs' folders in place under one artifacts directory; in GitHub Actions
the same folders travel by upload/download-artifact, so job code cannot tell the difference.
Outputs work like `GITHUB_OUTPUT`: written by a job into `outputs.json` in its own folder (and to
`$GITHUB_OUTPUT` when set), read by its dependents, copied into the run record by the runner.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from pipeline import settings
from pipeline.context import RunContext
from pipeline.graph import JOBS_BY_NAME, Job
from pipeline.scrub import mask, write_text_atomic

OUTPUTS_FILE = "outputs.json"
#: The build's record in its folder (pipeline/contracts.py BuildRecord), read by deploy, test, demo and scan.
BUILD_RECORD_FILE = "build-record.json"


def job_dir(job: str, context: RunContext | None = None, *, fresh: bool = False) -> Path:
    """The artifact folder of `job` (created), named like the workflow's upload.

    `fresh`: emptied first, for a job starting. The runner empties the folders of the jobs it runs,
    but a job run alone (`nox -s test`) would otherwise leave an earlier run's files beside its own.
    """
    context = context or RunContext.from_env()
    artifact = JOBS_BY_NAME[job].artifact
    if artifact is None:
        raise ValueError(f"job {job!r} declares no artifact")
    path = context.artifacts_dir / artifact
    if fresh:
        shutil.rmtree(path, ignore_errors=True)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # a file in the way, no permission, a full disk: the job cannot start
        why = error.strerror or error
        raise SystemExit(f"{job}: cannot make its artifacts folder {path}: {why}") from None
    return path


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON, scrubbed of secrets, so that a reader never sees half a file, even after a kill."""
    write_text_atomic(path, json.dumps(mask(data), indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: Path) -> Any | None:
    """The JSON at `path`, or None when it is missing or broken (a failed job's leftovers)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write_outputs(job: str, outputs: dict[str, str], context: RunContext | None = None) -> None:
    """Publish `outputs` of `job` to its dependents (and to GitHub Actions when running there)."""
    # Imported here: `invoke down` imports this module in a Python with nothing installed.
    from pipeline import contracts

    path = job_dir(job, context) / OUTPUTS_FILE
    merged = {**(read_json(path) or {}), **outputs}
    write_json_atomic(path, contracts.encode(contracts.OUTPUTS[job], merged))
    github_output = os.environ.get("GITHUB_OUTPUT")
    if github_output:
        with open(github_output, "a") as handle:
            for key, value in outputs.items():
                handle.write(f"{key}={value}\n")


def job_outputs(artifacts_dir: Path, job: Job) -> dict[str, str]:
    """The outputs.json `job` left in its folder, or {}: what the run record keeps for it."""
    if job.artifact is None:
        return {}
    return read_json(artifacts_dir / job.artifact / OUTPUTS_FILE) or {}


NEEDS_VARIABLE = "PIPELINE_NEEDS"


def read_outputs(job: str, context: RunContext) -> dict[str, str]:
    """The outputs `job` published, or {} when it did not run here.

    In GitHub Actions a direct need's workflow outputs come through `needs.<job>.outputs`; the copy
    in the job's artifact folder serves local runs and the outputs the workflow does not expose.
    """
    outputs = job_outputs(context.artifacts_dir, JOBS_BY_NAME[job])
    try:
        needs = json.loads(settings.get(NEEDS_VARIABLE))
    except ValueError:
        needs = {}
    published = (needs.get(job) or {}).get("outputs") or {}
    outputs.update({name.replace("-", "_"): value for name, value in published.items() if value})
    return outputs
