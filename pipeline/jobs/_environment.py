"""What deploy, test and demo share: the build's release, and one environment's lifetime.

Not a job: the jobs import it, so it must import no job module.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pipeline import contracts
from pipeline.artifacts import BUILD_RECORD_FILE, read_outputs
from pipeline.context import RunContext
from pipeline.contracts import BuildRecord
from pipeline.graph import JOBS_BY_NAME
from pipeline.release import Environment, Release
from pipeline.targets import Target, get_target


class BringUpFailed(Exception):
    """The environment did not come up; one line on stderr already said why."""


def release_from_build(context: RunContext) -> Release:
    """What the build made, from its artifact: the model and the image (empty when none was built).

    A model the quality gate rejected is refused here, whatever ran the job: its build failed, but
    `--only deploy` or `nox -s deploy` would otherwise still find it in the build's folder.
    """
    build_dir = context.artifacts_dir / str(JOBS_BY_NAME["build"].artifact)
    try:
        gate = contracts.read(build_dir / BUILD_RECORD_FILE, BuildRecord).quality_gate
    except (OSError, contracts.ContractError):
        gate = None  # no record: nothing says the model was rejected (the target checks it is there)
    if gate is not None and gate.verdict == "pending":
        raise SystemExit(
            "the build stopped before its quality gate judged its model, which is never deployed: "
            "run `nox -s build` again"
        )
    if gate is not None and gate.verdict != "passed":
        reasons = "; and ".join(gate.reasons) or gate.verdict
        raise SystemExit(
            f"the build's model {gate.model_version} failed the quality gate: {reasons}. "
            "It is never deployed: run `nox -s build` with a model that passes"
        )
    outputs = read_outputs("build", context)
    return Release(
        model_dir=build_dir / "model",
        image_tag=outputs.get("image_tag", ""),
        image_status=outputs.get("image_status", ""),
    )


@contextmanager
def environment(job: str, target: Target, release: Release, context: RunContext) -> Iterator[Environment]:
    """`job`'s environment, named after it, up on `target` for the body; stopped unless `--keep`.

    When it cannot come up, one line on stderr names the cause and `BringUpFailed` is raised.
    """
    try:
        env = target.up(job, release, context)
    except Exception as error:  # any target's failure: one clear line, and the job fails
        print(f"{job}: could not bring up '{job}' on {context.target}: {error}", file=sys.stderr)
        raise BringUpFailed(job) from error
    try:
        yield env
    finally:
        if context.keep:
            print(f"{job}: environment '{env.name}' left up (--keep); `invoke down` stops it")
        else:
            env.down()


def run_on_environment(
    job: str, context: RunContext, *, dry_run: str, body: Callable[[Environment], bool]
) -> int:
    """The job's exit code: `body` on a fresh environment, or in a dry run the target's plan and `dry_run`."""
    target = get_target(context.target)
    release = release_from_build(context)
    if context.dry_run:
        print(target.plan(job, release, context), end="")
        print(dry_run)
        return 0
    try:
        with environment(job, target, release, context) as env:
            passed = body(env)
    except BringUpFailed:
        return 1
    return 0 if passed else 1
