"""Every PIPELINE_* environment variable, declared once: its default and, above it, what it does.

The code reads a variable through `get` (`number` for a number, `flag` for yes or no), or keeps
its own default where it is computed there (and tests/engine/test_docs.py checks that it agrees).
`python -m pipeline.docgen` renders this table in docs/configuration.md; the same test fails when
the code names a variable missing here, or when nothing outside this file names one declared here
any more.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from typing import TypeVar

Number = TypeVar("Number", int, float)

#: Each variable's default: a string, as it would be set, or None when it has none.
DEFAULTS: dict[str, str | None] = {
    #: Where jobs read their needs' artifacts and write their own (one folder per job).
    "PIPELINE_ARTIFACTS_DIR": "artifacts",
    #: Directory or URL template ({group}, {kind}, {version}) of the CRD schemas the offline checks use.
    "PIPELINE_CRD_SCHEMA_LOCATION": (
        "https://raw.githubusercontent.com/datreeio/CRDs-catalog/main/{group}/{kind}_{version}.json"
    ),
    #: Seconds a drift may take to be detected and healed before it fails.
    "PIPELINE_DEMO_HEAL_TIMEOUT": "30.0",
    #: Requests per second of the background load: light, so it measures availability, not capacity.
    "PIPELINE_DEMO_LOAD_RATE": "10.0",
    #: Demo mode: `full` runs the drift demo, `quick` skips the demo job. The runner and the workflow set
    #: it (`invoke pipeline --demo-mode`, or `INVOKE_PIPELINE_DEMO_MODE`); `nox -s demo` runs the demo.
    "PIPELINE_DEMO_MODE": "full",
    #: Set to 1 to ask the job to print its plan and change nothing.
    "PIPELINE_DRY_RUN": "",
    #: Where Argo CD reads Git: `origin` (the pushed commit) or `in-cluster` (this working tree, served
    #: inside); unset, `in-cluster` in GitHub Actions and `origin` elsewhere.
    "PIPELINE_GIT_SOURCE": None,
    #: Set to 1 to leave the deployed environments up after the job (stop them with `invoke down`).
    "PIPELINE_KEEP": "",
    #: Seconds the load runs: at the default pacing, 2,000 requests, enough for a p99 with 20 above it.
    #: Raise it for a soak.
    "PIPELINE_LOAD_DURATION": "10",
    #: Hard cap on requests, whatever the duration.
    "PIPELINE_LOAD_MAX_REQUESTS": "100000",
    #: Users started per second until all run.
    "PIPELINE_LOAD_SPAWN_RATE": "20.0",
    #: TOML file of pass/fail thresholds.
    "PIPELINE_LOAD_THRESHOLDS": "pipeline/checks/load-thresholds.toml",
    #: Simulated users of the load test.
    "PIPELINE_LOAD_USERS": "20",
    #: Pacing of each user (requests per second); 0 sends as fast as the service answers.
    "PIPELINE_LOAD_USER_RPS": "10.0",
    #: Set on every replica to its environment's name, so a scan of all processes finds the
    #: environment's replicas, including ones started by hand outside Git.
    "PIPELINE_LOCAL_ENVIRONMENT": None,
    #: Set by the reconciler on each replica: its name within the environment.
    "PIPELINE_LOCAL_REPLICA": None,
    #: Where the local target keeps its environments' records instead of .pipeline/local (tests, CI).
    "PIPELINE_LOCAL_STATE_DIR": None,
    #: The job's `needs` context as JSON, set by the GitHub workflow (`${{ toJSON(needs) }}`): the workflow
    #: job outputs of its direct needs, which win over the artifact copy (`image-tag` is read as image_tag).
    "PIPELINE_NEEDS": "{}",
    #: Where `prometheus-<version>.<os>-<arch>.tar.gz` is downloaded from when `prometheus` is not on PATH
    #: (a mirror, or a test's server).
    "PIPELINE_PROMETHEUS_RELEASE_URL": "https://github.com/prometheus/prometheus/releases/download/v2.54.1",
    #: No when the run must not push (the workflow sets "false" for a pull request from a fork, which
    #: builds and verifies its image only).
    "PIPELINE_PUSH_IMAGE": "true",
    #: Set to 0 in up()'s environment to watch drift without healing it.
    "PIPELINE_RECONCILER_HEAL": "1",
    #: Set to 0 to skip the report's screenshot (report.png, taken with headless Chromium when it is on PATH).
    "PIPELINE_REPORT_SCREENSHOT": "1",
    #: The run this job belongs to, as recorded in pipeline-run.json.
    "PIPELINE_RUN_ID": "adhoc",
    #: Where deploy, test and demo bring the service up: `local`, `kind` or `minikube`.
    "PIPELINE_TARGET": "local",
}


def get(name: str, environ: Mapping[str, str] = os.environ) -> str:
    """The variable's value; unset or empty, its default ("" when it has none)."""
    return environ.get(name) or DEFAULTS[name] or ""


def number(name: str, kind: Callable[[str], Number], environ: Mapping[str, str] = os.environ) -> Number:
    """The variable read as an int or a finite float; anything else raises a ValueError naming it."""
    value = get(name, environ)
    try:
        number = kind(value)
        what = "" if math.isfinite(number) else "a finite number"  # int() never makes nan or infinity
    except ValueError:
        what = "a whole number" if kind is int else "a number"
    if what:
        raise ValueError(f"{name}={value!r} is not {what} (default: {DEFAULTS[name]})")
    return number


YES = ("1", "true", "yes", "on")
NO = ("0", "false", "no", "off")


def flag(name: str, environ: Mapping[str, str] = os.environ) -> bool:
    """The variable read as yes or no; empty is its default."""
    return yes_or_no(name, environ.get(name) or DEFAULTS[name] or "0")


def yes_or_no(name: str, value: str) -> bool:
    """`value`, variable `name`'s, as yes or no in any case; anything else is a ValueError naming it."""
    if value.lower() not in YES + NO:
        raise ValueError(f"{name}={value!r} is neither yes ({', '.join(YES)}) nor no ({', '.join(NO)})")
    return value.lower() in YES
