"""Invoke tasks: compose the nox job sessions into the pipeline graph (`invoke --list`).

The root collection only assembles. Defaults live in `ns.configure` and can be overridden in an
invoke.yaml or with INVOKE_PIPELINE_* variables; every flag overrides them for one run. The
jobs' own PIPELINE_TARGET is honoured too (between the flag and the configuration), so the
variable a job reads and the target invoke runs can never disagree.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from invoke import Collection, Context, Exit, task

from pipeline import settings
from pipeline.context import DEMO_MODES, TARGETS
from pipeline.graph import JOBS
from pipeline.record import RECORD_FILE
from pipeline.runner import Runner, RunOptions
from pipeline.status import Status
from pipeline.targets import get_target

JOB_NAMES = ", ".join(job.name for job in JOBS)
#: Jobs run from the repo root (where noxfile.py is), whichever directory invoke was started in.
REPO = Path(__file__).resolve().parent


def _choice(value: str, choices: tuple[str, ...], source: str) -> str:
    """`value` if it is one of `choices`, else exit 2 naming where it came from: a flag or a variable."""
    if value not in choices:
        raise Exit(f"{source} {value!r} is not one of {', '.join(choices)}", code=2)
    return value


def chosen_target(flag: str | None, configured: str, environ: Mapping[str, str] = os.environ) -> str:
    """The target: --target, else the jobs' PIPELINE_TARGET, else the configuration; refused if unknown."""
    if flag:
        return _choice(flag, TARGETS, "--target")
    if environ.get("PIPELINE_TARGET"):
        return _choice(environ["PIPELINE_TARGET"], TARGETS, "PIPELINE_TARGET")
    return _choice(configured, TARGETS, "INVOKE_PIPELINE_TARGET")


def chosen_artifacts_dir(flag: str | None, configured: str, dry_run: bool) -> Path:
    """--artifacts-dir, else the configured folder; a dry run's sits beside that one, so that the last
    real run's artifacts (and its load figures in previous/) stay whole."""
    if flag:
        return Path(flag).resolve()
    folder = REPO / configured
    return folder.with_name(f"{folder.name}-dry-run") if dry_run else folder


def configured_text(config: Mapping[str, object], key: str, environ: Mapping[str, str] = os.environ) -> str:
    """INVOKE_PIPELINE_<KEY> as written, else the configuration's value (an invoke.yaml's), as text.

    The variable is read here, not through invoke: invoke casts it to the type of the value it
    overrides, and over an invoke.yaml's `false` every word but "0" is true, "false" included.
    """
    return environ.get(f"INVOKE_PIPELINE_{key.upper()}", str(config[key]))


def chosen_max_parallel(flag: str | None, configured: str) -> int | None:
    """--max-parallel, else the configured limit; None for 0 (no limit).

    Both arrive as text, because invoke's own int casts give a traceback for a word; a negative
    limit would leave no slot to start a job in.
    """
    value = configured if flag is None else flag
    name = "INVOKE_PIPELINE_MAX_PARALLEL" if flag is None else "--max-parallel"
    try:
        limit = int(value)
    except ValueError:
        limit = -1
    if limit < 0:
        raise Exit(f"{name} {value!r} is not a whole number of 0 or more", code=2)
    return limit or None


def chosen_switch(flag: bool, configured: str, key: str) -> bool:
    """--<key>, else the configured value as yes or no (an invoke.yaml's `false` reads as "False")."""
    try:
        return flag or settings.yes_or_no(f"INVOKE_PIPELINE_{key.upper()}", configured)
    except ValueError as error:
        raise Exit(str(error), code=2) from None


def _down(target: str) -> None:
    stopped = get_target(target).down_all()
    print(f"stopped on {target}: {', '.join(stopped)}" if stopped else f"nothing left running on {target}")


@task(
    name="pipeline",
    iterable=["only"],
    help={
        "parallel": "run independent jobs at the same time (unit with build, test with demo)",
        "target": f"where deploy/test/demo bring the service up: {', '.join(TARGETS)} (default: local)",
        "demo-mode": f"{' or '.join(DEMO_MODES)}: quick skips the demo job (default: full)",
        "only": f"run only this job (repeat or comma-separate; others' artifacts are reused): {JOB_NAMES}",
        "rerun-failed": "re-run the jobs that did not succeed last time, and their dependents",
        "max-parallel": "with --parallel, at most this many jobs at once (default 0: no limit)",
        "artifacts-dir": "where jobs write artifacts, logs and pipeline-run.json (default: <repo>/artifacts; "
        "a dry run's: <repo>/artifacts-dry-run)",
        "keep": "leave the deployed environments up after the run (stop them with `invoke down`)",
        "dry-run": "every job plans, changing nothing (PIPELINE_DRY_RUN=1); unit still runs its tests",
    },
)
def run_pipeline(
    c: Context,
    parallel: bool = False,
    target: str | None = None,
    demo_mode: str | None = None,
    only: list[str] | None = None,
    rerun_failed: bool = False,
    max_parallel: str | None = None,
    artifacts_dir: str | None = None,
    keep: bool = False,
    dry_run: bool = False,
) -> None:
    """Run the job graph (unit ∥ build → deploy ∥ scan → test ∥ demo → report) as GitHub Actions would."""
    config = c.pipeline
    target = chosen_target(target, config.target)
    if demo_mode:
        demo_mode = _choice(demo_mode, DEMO_MODES, "--demo-mode")
    else:
        demo_mode = _choice(config.demo_mode, DEMO_MODES, "INVOKE_PIPELINE_DEMO_MODE")
    options = RunOptions(
        target=target,
        demo_mode=demo_mode,
        parallel=chosen_switch(parallel, configured_text(config, "parallel"), "parallel"),
        max_parallel=chosen_max_parallel(max_parallel, configured_text(config, "max_parallel")),
        only=tuple(name.strip() for value in only or () for name in value.split(",") if name.strip()),
        rerun_failed=rerun_failed,
        artifacts_dir=chosen_artifacts_dir(artifacts_dir, config.artifacts_dir, dry_run),
        keep=chosen_switch(keep, configured_text(config, "keep"), "keep"),
        dry_run=dry_run,
    )
    record = Runner(options, cwd=REPO, teardown=lambda: _down(target)).run()
    print(f"run record: {options.artifacts_dir / RECORD_FILE}")
    if record["status"] != Status.SUCCESS:
        code = 130 if record["status"] == Status.CANCELLED else 1  # 130: the shell's code for Ctrl-C
        raise Exit(f"pipeline {record['status']}", code=code)


@task(help={"target": f"the target whose environments to stop: {', '.join(TARGETS)} (default: local)"})
def down(c: Context, target: str | None = None) -> None:
    """Stop every environment a run left up (after --keep, or after a crash)."""
    _down(chosen_target(target, c.pipeline.target))


ns = Collection(run_pipeline, down)
ns.configure(
    {
        "pipeline": {
            "target": "local",
            "demo_mode": "full",
            "parallel": "false",
            "max_parallel": "0",
            "artifacts_dir": "artifacts",
            "keep": "false",
        }
    }
)
