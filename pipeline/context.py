"""What a job knows about the run it belongs to, read from the environment.

The runner (or the GitHub workflow) sets these variables; a job run alone by `nox -s <job>` gets
the defaults, which are the local target's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TARGETS = ("local", "kind", "minikube")
DEMO_MODES = ("full", "quick")


@dataclass(frozen=True)
class RunContext:
    target: str
    demo_mode: str
    artifacts_dir: Path
    run_id: str
    dry_run: bool
    keep: bool

    @classmethod
    def from_env(cls) -> RunContext:
        #: Where deploy, test and demo bring the service up: `local`, `kind` or `minikube`.
        target = os.environ.get("PIPELINE_TARGET", "local")
        #: Demo mode: `full` runs the drift demo, `quick` skips the demo job.
        demo_mode = os.environ.get("PIPELINE_DEMO_MODE", "full")
        if target not in TARGETS:
            raise SystemExit(f"PIPELINE_TARGET={target!r} is not one of {', '.join(TARGETS)}")
        if demo_mode not in DEMO_MODES:
            raise SystemExit(f"PIPELINE_DEMO_MODE={demo_mode!r} is not one of {', '.join(DEMO_MODES)}")
        return cls(
            target=target,
            demo_mode=demo_mode,
            #: Where jobs read their needs' artifacts and write their own (one folder per job).
            artifacts_dir=Path(os.environ.get("PIPELINE_ARTIFACTS_DIR", "artifacts")).resolve(),
            #: The run this job belongs to, as recorded in pipeline-run.json.
            run_id=os.environ.get("PIPELINE_RUN_ID", "adhoc"),
            #: Set to 1 to ask the job to print its plan and change nothing.
            dry_run=os.environ.get("PIPELINE_DRY_RUN", "") == "1",
            #: Set to 1 to leave the deployed environments up after the job (stop them with `invoke down`).
            keep=os.environ.get("PIPELINE_KEEP", "") == "1",
        )
