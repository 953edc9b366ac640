"""`python -m pipeline.targets.kube {kind,minikube} [ENVIRONMENT]`: print the plan, run nothing.

The same plan `up()` executes: every command and every object applied, in
order, then the child Applications Argo CD will render and what the job does afterwards. It
reads the build's outputs from PIPELINE_ARTIFACTS_DIR (default artifacts/) when there are any.
"""

from __future__ import annotations

import argparse
import dataclasses

from pipeline.context import RunContext
from pipeline.gitops import appofapps
from pipeline.jobs._environment import release_from_build
from pipeline.targets.kube import make_target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.targets.kube",
        description="Print what kind/minikube would do for one environment; run nothing.",
    )
    parser.add_argument("target", choices=("kind", "minikube"))
    parser.add_argument("environment", nargs="?", default="deploy", choices=appofapps.environments())
    args = parser.parse_args(argv)
    context = dataclasses.replace(RunContext.from_env(), target=args.target, dry_run=True)
    print(make_target(args.target).plan(args.environment, release_from_build(context), context), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
