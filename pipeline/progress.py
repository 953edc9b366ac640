"""What a person watching `invoke pipeline` sees: a live table on a terminal, plain lines elsewhere.

Both read the run record the runner keeps, so what is shown is exactly what `pipeline-run.json` says.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, TextIO

from pipeline.record import Record
from pipeline.status import Status, look
from pipeline.timestamps import elapsed, utc_now

if TYPE_CHECKING:  # rich is imported only when a live table is drawn
    from rich.table import Table


def elapsed_seconds(entry: dict[str, Any]) -> float | None:
    """A finished job's duration, or how long a running one has run so far."""
    if entry.get("duration_seconds") is not None:
        return entry["duration_seconds"]
    if entry.get("status") == Status.RUNNING:
        return elapsed(entry.get("started_at"), utc_now())
    return None


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}s"


def _log(entry: dict[str, Any]) -> str:
    """The log path, or the note that the entry (and its log) comes from an earlier run."""
    return f"{entry['log']} (earlier run)" if entry.get("reused") else entry["log"]


class Progress:
    """Plain lines, one per job state change: for logs, CI and pipes."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self._shown: dict[str, str] = {}

    def live(self, _record: Callable[[], Record]) -> AbstractContextManager[object]:
        return nullcontext()

    def changed(self, record: Record) -> None:
        for name, entry in record["jobs"].items():
            if self._shown.get(name) != entry["status"]:
                self._shown[name] = entry["status"]
                self.note(f"{name:<12} {entry['status']:<10} {_seconds(elapsed_seconds(entry))}".rstrip())

    def note(self, message: str) -> None:
        print(message, file=self.stream, flush=True)

    def summary(self, record: Record) -> None:
        run = f"run {record['run_id']} ({record['target']}, demo {record['demo_mode']})"
        self.note(f"\n{run}: {record['status']}")
        self.note(f"{'job':<12} {'status':<10} {'time':>8}  {'exit':>4}  log")
        for name, entry in record["jobs"].items():
            exit_code = "" if entry["exit_code"] is None else str(entry["exit_code"])
            duration = _seconds(entry["duration_seconds"])
            self.note(f"{name:<12} {entry['status']:<10} {duration:>8}  {exit_code:>4}  {_log(entry)}")
        self.note(f"total {_seconds(record['duration_seconds'])}")


class LiveProgress(Progress):
    """A rich table redrawn in place with elapsed times, for a person at a terminal."""

    def __init__(self, stream: TextIO | None = None) -> None:
        from rich.console import Console

        super().__init__(stream)
        self.console = Console(file=self.stream)

    @contextmanager
    def live(self, record: Callable[[], Record]) -> Iterator[object]:
        from rich.live import Live

        def table() -> Table:
            return self._table(record(), title="pipeline")

        with Live(get_renderable=table, console=self.console, refresh_per_second=4, transient=True) as live:
            yield live

    def changed(self, record: Record) -> None:
        """The live table redraws itself; nothing to print per change."""

    def note(self, message: str) -> None:
        self.console.print(message)

    def summary(self, record: Record) -> None:
        title = f"run {record['run_id']} — {record['target']}, demo {record['demo_mode']}: {record['status']}"
        self.console.print(self._table(record, title=title))
        self.console.print(f"total {_seconds(record['duration_seconds'])}")

    @staticmethod
    def _table(record: Record, *, title: str) -> Table:
        from rich.table import Table

        table = Table(title=title)
        for column in ("job", "needs", "status", "time", "exit", "log"):
            table.add_column(column, justify="right" if column in ("time", "exit") else "left")
        for name, entry in record["jobs"].items():
            status = entry["status"]
            exit_code = "" if entry["exit_code"] is None else str(entry["exit_code"])
            table.add_row(
                name,
                ", ".join(entry["needs"]),
                f"[{look(status).rich}]{status}[/]",
                _seconds(elapsed_seconds(entry)),
                exit_code,
                _log(entry),
            )
        return table


def make_progress(stream: TextIO | None = None) -> Progress:
    """The live table on a terminal, plain lines otherwise (CI logs, pipes, tests)."""
    stream = stream or sys.stdout
    return LiveProgress(stream) if stream.isatty() else Progress(stream)
