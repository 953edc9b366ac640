"""What a job knows about the run it belongs to, read from the environment.

The runner (or the GitHub workflow) sets these variables; a job run alone by `nox -s <job>` gets
the defaults, which are the local target's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline import settings

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
        target = settings.get("PIPELINE_TARGET")
        demo_mode = settings.get("PIPELINE_DEMO_MODE")
        if target not in TARGETS:
            raise SystemExit(f"PIPELINE_TARGET={target!r} is not one of {', '.join(TARGETS)}")
        if demo_mode not in DEMO_MODES:
            raise SystemExit(f"PIPELINE_DEMO_MODE={demo_mode!r} is not one of {', '.join(DEMO_MODES)}")
        try:
            dry_run, keep = settings.flag("PIPELINE_DRY_RUN"), settings.flag("PIPELINE_KEEP")
        except ValueError as error:
            raise SystemExit(str(error)) from None
        return cls(
            target=target,
            demo_mode=demo_mode,
            artifacts_dir=Path(settings.get("PIPELINE_ARTIFACTS_DIR")).resolve(),
            run_id=settings.get("PIPELINE_RUN_ID"),
            dry_run=dry_run,
            keep=keep,
        )
