"""What deploy, test and demo share: the build's release, and one environment's lifetime.

Not a job: the jobs import it, so it must import no job module.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pipeline.artifacts import read_outputs
from pipeline.context import RunContext
from pipeline.graph import JOBS_BY_NAME
from pipeline.release import Environment, Release
from pipeline.targets import Target, get_target


class BringUpFailed(Exception):
    """The environment did not come up; one line on stderr already said why."""


def release_from_build(context: RunContext) -> Release:
    """What the build made, from its artifact: the model and the image (empty when none was built)."""
    outputs = read_outputs("build", context)
    return Release(
        model_dir=context.artifacts_dir / str(JOBS_BY_NAME["build"].artifact) / "model",
        image_tag=outputs.get("image_tag", ""),
        image_status=outputs.get("image_status", ""),
    )


@contextmanager
def environment(
    job: str, target: Target, env_name: str, release: Release, context: RunContext
) -> Iterator[Environment]:
    """`env_name` up on `target` for the body, then stopped unless the run keeps it (`--keep`).

    When it cannot come up, one line on stderr names the cause and `BringUpFailed` is raised.
    """
    try:
        env = target.up(env_name, release, context)
    except Exception as error:  # any target's failure: one clear line, and the job fails
        print(f"{job}: could not bring up '{env_name}' on {context.target}: {error}", file=sys.stderr)
        raise BringUpFailed(env_name) from error
    try:
        yield env
    finally:
        if context.keep:
            print(f"{job}: environment '{env.name}' left up (--keep); `invoke down` stops it")
        else:
            env.down()


def run_on_environment(
    job: str, env_name: str, context: RunContext, *, dry_run: str, body: Callable[[Environment], bool]
) -> int:
    """The job's exit code: `body` on a fresh `env_name`, or in a dry run the target's plan and `dry_run`."""
    target = get_target(context.target)
    release = release_from_build(context)
    if context.dry_run:
        print(target.plan(env_name, release, context), end="")
        print(dry_run)
        return 0
    try:
        with environment(job, target, env_name, release, context) as env:
            passed = body(env)
    except BringUpFailed:
        return 1
    return 0 if passed else 1
