"""A job's status, spelled once, and how each status looks wherever it is shown.

The runner's docstring (`pipeline/runner.py`) draws how a job moves between these states. The
record, the runner, the live progress, the report and `python -m pipeline.record github` all use
this spelling; it is GitHub Actions' own (a `needs` result or a job's conclusion), plus the two
states of a job that has not finished.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILURE = "failure"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


#: A job in one of these states is done; a run is done when all its jobs are.
FINISHED = frozenset(Status) - {Status.PENDING, Status.RUNNING}
#: Statuses that make the run fail: a job that should have run and did not succeed.
FAILED = frozenset({Status.FAILURE, Status.CANCELLED, Status.TIMED_OUT})

#: What the report shows for a job the run record does not mention, and for a run without a record.
NOT_RUN = "not run"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Look:
    """How a status is shown: SVG and HTML colour, rich style on the terminal, Mermaid tag, Markdown icon."""

    colour: str
    rich: str
    mermaid: str
    icon: str
    #: Dark text on this colour; white text otherwise.
    light: bool = False


LOOKS: dict[str, Look] = {
    Status.PENDING: Look("#d0d7de", "dim", "done", "❔", light=True),
    Status.RUNNING: Look("#0969da", "bold cyan", "active", "🔄"),
    Status.SUCCESS: Look("#1a7f37", "green", "done", "✅"),
    Status.FAILURE: Look("#cf222e", "bold red", "crit", "❌"),
    Status.TIMED_OUT: Look("#bc4c00", "bold red", "crit", "⏱️"),
    Status.CANCELLED: Look("#9a6700", "yellow", "crit", "🚫"),
    Status.SKIPPED: Look("#8c959f", "dim yellow", "done", "⏭️", light=True),
    UNKNOWN: Look("#d0d7de", "", "done", "❔", light=True),
}


def look(status: str | None) -> Look:
    """How `status` is shown; a status this table does not know looks unknown."""
    return LOOKS.get(status or UNKNOWN, LOOKS[UNKNOWN])
