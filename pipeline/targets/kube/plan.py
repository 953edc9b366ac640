"""A plan: the ordered steps a kind/minikube job takes, printed and executed from one object.

With PIPELINE_DRY_RUN=1 the plan is only printed (every command, every object applied, in
order); otherwise each step is printed as it runs. Both paths walk the same list, so the dry run
cannot drift from what really happens.
"""

from __future__ import annotations

import contextlib
import shlex
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from pipeline.gitops.render import Manifest, to_yaml
from pipeline.scrub import mask_text

#: How long an undo (deleting a half-made cluster) may take.
UNDO_TIMEOUT_SECONDS = 120


class StepFailed(RuntimeError):
    """A command exited non-zero; the message names it and carries its stderr."""


def run_process(
    argv: Sequence[str], stdin: str | None, timeout_seconds: int
) -> subprocess.CompletedProcess[str]:
    """Run one planned command to completion (the single place plan commands reach the OS)."""
    return subprocess.run(
        argv, input=stdin, text=True, capture_output=True, timeout=timeout_seconds, check=False
    )


@dataclass(frozen=True)
class Query:
    """A read-only command deciding whether a step is needed (run even in a dry run when possible)."""

    argv: tuple[str, ...]
    #: When set, the query holds only if the command's stdout has this line.
    line: str | None = None

    def holds(self) -> bool:
        try:
            result = run_process(self.argv, None, 60)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return result.returncode == 0 and (self.line is None or self.line in result.stdout.splitlines())

    def describe(self) -> str:
        return f"`{shlex.join(self.argv)}`" + (f" lists {self.line}" if self.line else " succeeds")


@dataclass(frozen=True)
class Command:
    """Run one program. `objects` (applied through stdin as YAML) are printed in full."""

    argv: tuple[str, ...]
    why: str
    objects: tuple[Manifest, ...] = ()
    unless: Query | None = None
    timeout_seconds: int = 600
    #: Run when the command fails or is stopped part-way (a timeout, Ctrl-C): a half-made cluster
    #: would otherwise pass the next run's `unless` for a whole one.
    undo: tuple[str, ...] | None = None

    def render(self) -> str:
        lines = [f"# {self.why}", f"$ {shlex.join(self.argv)}"]
        if self.unless is not None:
            lines[-1] += f"    # skipped when {self.unless.describe()}"
        if self.undo is not None:
            lines.append(f"# if it fails or is stopped: {shlex.join(self.undo)}")
        if self.objects:
            lines.append(to_yaml(list(self.objects)).rstrip())
        return "\n".join(lines)

    def run(self) -> None:
        if self.unless is not None and self.unless.holds():
            print(f"  (skipped: {self.unless.describe()})", flush=True)
            return
        stdin = to_yaml(list(self.objects)) if self.objects else None
        try:
            result = run_process(self.argv, stdin, self.timeout_seconds)
        except BaseException:  # timed out or interrupted: run() has killed the command
            self._undo()
            raise
        if result.stdout.strip():
            print(mask_text(result.stdout.rstrip()), flush=True)
        if result.returncode != 0:
            self._undo()
            raise StepFailed(f"{shlex.join(self.argv)} exited {result.returncode}: {result.stderr.strip()}")

    def _undo(self) -> None:
        if self.undo is None:
            return
        print(f"  undoing: {shlex.join(self.undo)}", flush=True)
        # The step's own error is the one to report.
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            run_process(self.undo, None, UNDO_TIMEOUT_SECONDS)


@dataclass(frozen=True)
class Call:
    """A step done in Python (a watch, a git snapshot); `description` says exactly what it does."""

    description: str
    function: Callable[[], None] = field(compare=False)

    def render(self) -> str:
        return f"# {self.description}"

    def run(self) -> None:
        self.function()


Step = Command | Call
FIELD_MANAGER = "--field-manager=ml-gitops-pipeline"


def apply(kubectl: tuple[str, ...], objects: Sequence[Manifest], why: str) -> Command:
    """Server-side apply of `objects`, through stdin, as this pipeline's field manager."""
    return Command(
        (*kubectl, "apply", "--server-side", FIELD_MANAGER, "-f", "-"), why, objects=tuple(objects)
    )


def execute(steps: Sequence[Step], *, dry_run: bool, out: TextIO | None = None) -> None:
    """Print every step; run it too unless this is a dry run."""
    for number, step in enumerate(steps, 1):
        print(f"\n[{number}/{len(steps)}] {mask_text(step.render())}", file=out, flush=True)
        if not dry_run:
            step.run()
