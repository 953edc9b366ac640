"""Run the job graph locally the way GitHub Actions runs the workflow (`invoke pipeline`).

Each job is `nox -s <job>` in its own process group, with the PIPELINE_* variables set and its
output in `logs/<job>.log`. Nox already gives each job its environment; what it lacks, and what
this module adds, is GitHub's semantics: skip on failed needs, jobs that run always, timeouts,
cancellation, and a run record.

A job's states (`pipeline-run.json` shows them; `pipeline/status.py` spells them):

    pending ──needs all finished──▶ running ──exit 0────────────▶ success
       │                              ├──exit ≠ 0─────────────────▶ failure
       │                              ├──over its timeout─────────▶ timed_out
       │                              └──run cancelled (Ctrl-C)───▶ cancelled
       ├──a need did not succeed, or the demo mode leaves it out──▶ skipped
       └──run cancelled before it started─────────────────────────▶ cancelled

With `--only` or `--rerun-failed`, the entries of the jobs this run does not start are kept from
the previous record and marked `"reused": true` (every other entry has `"reused": false`).

A job with `condition="always"` (the report) runs whatever its needs did, even in a cancelled
run; only a second Ctrl-C stops it. Stopping a job signals its whole process group: SIGINT, then
SIGTERM, then SIGKILL, each after a grace period; whatever a job leaves behind in its group when
it exits is killed too, like the orphan clean-up at the end of a GitHub job.

When a job ends, however it ends, its log and every text file in its artifact folder are scrubbed
of secrets (`pipeline.scrub`) before its dependents start or anything is uploaded, so no job has
to remember to mask what its tools print. Nothing the runner prints can abort the run: a closed
terminal (EPIPE, EIO) costs the display, never the record or the report.
"""

from __future__ import annotations

import fcntl
import functools
import graphlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from pipeline import record as records
from pipeline.artifacts import job_outputs
from pipeline.graph import JOBS, Job, check_graph, dependents
from pipeline.progress import Progress, make_progress
from pipeline.scrub import UnmaskedFiles, scrub_tree
from pipeline.status import Status
from pipeline.timestamps import elapsed, utc_now

#: Statuses `--rerun-failed` keeps; every other job and all its dependents run again.
KEPT_ON_RERUN = frozenset({Status.SUCCESS})
LOGS_DIR = "logs"
POLL_SECONDS = 0.05


@dataclass(frozen=True)
class RunOptions:
    target: str = "local"
    demo_mode: str = "full"
    parallel: bool = False
    #: With `parallel`, at most this many jobs at once (None: as many as are ready).
    max_parallel: int | None = None
    only: tuple[str, ...] = ()
    rerun_failed: bool = False
    artifacts_dir: Path = Path("artifacts")
    keep: bool = False
    dry_run: bool = False


def nox_command(job: Job) -> list[str]:
    """`nox -s <session>` with the nox beside the running interpreter (the tools venv), else on PATH."""
    beside = Path(sys.executable).with_name("nox")
    nox = str(beside) if beside.exists() else shutil.which("nox")
    if nox is None:
        raise SystemExit(
            f"nox not found beside {sys.executable} or on PATH: pip install -r requirements/tools.txt"
        )
    return [nox, "-s", job.session]


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


#: Wraps a display update: a terminal that went away (EPIPE, EIO, a closed stream) only loses it.
_display_may_fail = functools.partial(suppress, OSError, ValueError)


@dataclass
class _Running:
    """A started job: its process (leader of its own group) and how far stopping it has gone."""

    job: Job
    process: subprocess.Popen[bytes]
    log: IO[bytes]
    deadline: float
    stop_reason: Status | None = None
    next_signals: list[signal.Signals] = field(default_factory=list)
    next_signal_at: float = 0.0


class Runner:
    """Runs `jobs` from `cwd` with `command(job)`; both are parameters so tests bring tiny graphs."""

    def __init__(
        self,
        options: RunOptions,
        *,
        jobs: Iterable[Job] = JOBS,
        command: Callable[[Job], list[str]] = nox_command,
        cwd: Path | None = None,
        teardown: Callable[[], None] | None = None,
        progress: Progress | None = None,
        stop_grace_seconds: float = 5.0,
    ) -> None:
        self.jobs = tuple(jobs)
        check_graph(self.jobs)
        self.by_name = {job.name: job for job in self.jobs}
        self.options = options
        self.artifacts_dir = options.artifacts_dir.resolve()
        self.command = command
        self.cwd = (cwd or Path.cwd()).resolve()
        self.teardown = teardown
        self.progress = progress or make_progress()
        self.stop_grace_seconds = stop_grace_seconds
        self.cancelling = False
        self.forced = False
        self.running: dict[str, _Running] = {}
        self.to_run: set[str] = set()
        self.record: records.Record = {}

    # --- planning ------------------------------------------------------------------------------

    def _plan(self) -> tuple[set[str], records.Record | None]:
        """The jobs this run starts, and the previous record whose other entries it reuses."""
        options = self.options
        unknown = [name for name in options.only if name not in self.by_name]
        if unknown:
            known = ", ".join(self.by_name)
            raise SystemExit(f"--only: unknown job(s) {', '.join(unknown)}; the jobs are {known}")
        if options.only and options.rerun_failed:
            raise SystemExit("--only and --rerun-failed do not combine: choose one")
        previous = records.read_record(self.artifacts_dir)
        if options.rerun_failed:
            if previous is None:
                raise SystemExit(
                    f"--rerun-failed: no previous run in {self.artifacts_dir}; run the pipeline first"
                )
            redo = {
                name
                for name in self.by_name
                if previous["jobs"].get(name, {}).get("status") not in KEPT_ON_RERUN
            }
            return dependents(self.jobs, redo), previous
        if options.only:
            return set(options.only), previous
        return set(self.by_name), None

    def _prepare_artifacts(self, fresh: bool) -> None:
        """Start each job that runs from an empty folder; a fresh run first keeps the last one's record,
        and emptying the build's folder keeps its model as the quality gate's baseline."""
        if fresh:
            records.keep_previous_run(self.artifacts_dir)
            (self.artifacts_dir / records.RECORD_FILE).unlink(missing_ok=True)
        for name in self.to_run:
            artifact = self.by_name[name].artifact
            if artifact:
                records.keep_gate_baseline(self.artifacts_dir, artifact)
                shutil.rmtree(self.artifacts_dir / artifact, ignore_errors=True)
            (self.artifacts_dir / LOGS_DIR / f"{name}.log").unlink(missing_ok=True)
        (self.artifacts_dir / LOGS_DIR).mkdir(parents=True, exist_ok=True)

    # --- running -------------------------------------------------------------------------------

    def run(self) -> records.Record:
        self.to_run, previous = self._plan()
        if previous is not None and not self.to_run:  # --rerun-failed after a run that succeeded
            self.progress.note(f"--rerun-failed: every job of run {previous['run_id']} succeeded")
            return previous
        with self._holding_artifacts():
            return self._run(previous)

    @contextmanager
    def _holding_artifacts(self) -> Iterator[None]:
        """One run at a time on an artifacts folder: a second would empty the first's folders as it ran.

        The lock is the kernel's, on the folder itself, so it ends with the process however it ends
        and leaves no file behind; jobs do not inherit it.
        """
        try:
            self.artifacts_dir.mkdir(parents=True, exist_ok=True)
            folder = os.open(self.artifacts_dir, os.O_RDONLY)
        except OSError as error:
            raise SystemExit(f"cannot keep the artifacts in {self.artifacts_dir}: {error.strerror}") from None
        try:
            try:
                fcntl.flock(folder, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                running = records.read_record(self.artifacts_dir)
                who = f"run {running['run_id']}" if running else "another run"
                raise SystemExit(
                    f"{who} is still running on {self.artifacts_dir}: wait for it to end, or stop it"
                ) from None
            yield
        finally:
            os.close(folder)

    def _run(self, previous: records.Record | None) -> records.Record:
        self._prepare_artifacts(fresh=previous is None)
        options = self.options
        self.record = records.new_record(
            run_id=previous["run_id"] if options.rerun_failed and previous else new_run_id(),
            commit=records.current_commit(self.cwd),
            target=options.target,
            demo_mode=options.demo_mode,
            parallel=options.parallel,
            jobs=[job for job in self.jobs if job.name in self.to_run],
        )
        if previous is not None:
            started = self.record["jobs"]
            kept = previous["jobs"]
            self.record["jobs"] = {
                job.name: started.get(job.name) or {**kept[job.name], "reused": True}
                for job in self.jobs
                if job.name in started or job.name in kept
            }
        self._changed()
        limit = (options.max_parallel or len(self.jobs)) if options.parallel else 1
        sorter = graphlib.TopologicalSorter(
            {name: [need for need in self.by_name[name].needs if need in self.to_run] for name in self.to_run}
        )
        sorter.prepare()
        order = {job.name: index for index, job in enumerate(self.jobs)}
        waiting: list[str] = []
        with self._signals_cancel(), self.progress.live(lambda: self.record):
            try:
                while sorter.is_active():
                    waiting = sorted([*waiting, *sorter.get_ready()], key=order.__getitem__)
                    moved = False
                    for name in list(waiting):
                        ended = self._ends_without_running(self.by_name[name])
                        if ended is not None:
                            waiting.remove(name)
                            self._set(name, status=ended)
                            sorter.done(name)
                            moved = True
                        elif len(self.running) < limit:
                            waiting.remove(name)
                            if not self._start(self.by_name[name]):
                                sorter.done(name)
                            moved = True
                    for name in self._reap():
                        sorter.done(name)
                        moved = True
                    self._enforce_timeouts_and_cancel()
                    if not moved:
                        time.sleep(POLL_SECONDS)
            finally:
                for running in self.running.values():
                    self._kill_group(running.process.pid, signal.SIGKILL)
                    running.process.wait()
                    self._close(running)
            # A dry run started nothing, so it stops nothing (not a cluster or a --keep environment).
            if self.teardown is not None and not options.keep and not options.dry_run:
                try:
                    self.teardown()
                except (Exception, SystemExit) as error:  # a failed clean-up must not lose the run record
                    print(
                        f"clean-up after the run failed: {error}; run `invoke down` to retry", file=sys.stderr
                    )
            records.finish(self.record, cancelled=self.cancelling, counted=self.to_run)
            self._changed()
        with _display_may_fail():
            self.progress.summary(self.record)
        return self.record

    def _ends_without_running(self, job: Job) -> Status | None:
        """For a job whose needs have all finished: skipped or cancelled, or None when it runs now."""
        if not job.runs_in(self.options.demo_mode):
            return Status.SKIPPED
        if self.forced or (self.cancelling and job.condition != "always"):
            return Status.CANCELLED
        if job.condition == "always":
            return None
        statuses = [self.record["jobs"][need]["status"] for need in job.needs if need in self.to_run]
        return None if all(status == Status.SUCCESS for status in statuses) else Status.SKIPPED

    def _environment(self) -> dict[str, str]:
        options = self.options
        return {
            **os.environ,
            "PIPELINE_TARGET": options.target,
            "PIPELINE_DEMO_MODE": options.demo_mode,
            "PIPELINE_ARTIFACTS_DIR": str(self.artifacts_dir),
            "PIPELINE_RUN_ID": self.record["run_id"],
            "PIPELINE_DRY_RUN": "1" if options.dry_run else "0",
            "PIPELINE_KEEP": "1" if options.keep else "0",
        }

    def _start(self, job: Job) -> bool:
        """Start `job` in its own process group; False (and a failed job) when it cannot start."""
        log = (self.artifacts_dir / LOGS_DIR / f"{job.name}.log").open("wb")
        try:
            process = subprocess.Popen(
                self.command(job),
                cwd=self.cwd,
                env=self._environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as error:
            log.write(f"could not start {job.name}: {error}\n".encode())
            log.close()
            self._set(job.name, status=Status.FAILURE, started_at=utc_now(), finished_at=utc_now())
            return False
        budget = job.timeout_for(self.options.target) * 60  # per target (pipeline/graph.py)
        self.running[job.name] = _Running(job, process, log, deadline=time.monotonic() + budget)
        self._set(job.name, status=Status.RUNNING, started_at=utc_now())
        return True

    def _reap(self) -> list[str]:
        """Finish the jobs whose process exited; kill what they left in their group."""
        finished = []
        for name, running in list(self.running.items()):
            exit_code = running.process.poll()
            if exit_code is None:
                continue
            self._kill_group(running.process.pid, signal.SIGKILL)
            masked = self._close(running)
            del self.running[name]
            succeeded = exit_code == 0 and masked
            status = running.stop_reason or (Status.SUCCESS if succeeded else Status.FAILURE)
            finished_at = utc_now()
            self._set(
                name,
                status=status,
                finished_at=finished_at,
                duration_seconds=elapsed(self.record["jobs"][name]["started_at"], finished_at),
                exit_code=exit_code,
                outputs=job_outputs(self.artifacts_dir, running.job),
            )
            finished.append(name)
        return finished

    def _close(self, running: _Running) -> bool:
        """Close the job's log, then mask the secrets in what it left: its log and its artifact folder.

        False when a file could not be masked: it was removed, and the job's log says so.
        """
        running.log.close()
        job = running.job
        log = self.artifacts_dir / LOGS_DIR / f"{job.name}.log"
        try:
            scrub_tree(log, *([self.artifacts_dir / job.artifact] if job.artifact else []))
        except UnmaskedFiles as failure:
            with _display_may_fail():
                for problem in failure.problems:
                    self.progress.note(f"{job.name}: {problem}")
            with suppress(OSError), log.open("a") as end:
                end.write("".join(f"\nrunner: {problem}" for problem in failure.problems) + "\n")
            return False
        return True

    def _enforce_timeouts_and_cancel(self) -> None:
        now = time.monotonic()
        for running in self.running.values():
            if self.forced:
                running.stop_reason = running.stop_reason or Status.CANCELLED
                self._kill_group(running.process.pid, signal.SIGKILL)
                continue
            if running.stop_reason is None:
                if now >= running.deadline:
                    self._begin_stop(running, Status.TIMED_OUT)
                elif self.cancelling and running.job.condition != "always":
                    self._begin_stop(running, Status.CANCELLED)
            if running.next_signals and now >= running.next_signal_at:
                self._kill_group(running.process.pid, running.next_signals.pop(0))
                running.next_signal_at = now + self.stop_grace_seconds

    def _begin_stop(self, running: _Running, reason: Status) -> None:
        running.stop_reason = reason
        running.next_signals = [signal.SIGINT, signal.SIGTERM, signal.SIGKILL]
        running.next_signal_at = time.monotonic()

    @staticmethod
    def _kill_group(pgid: int, signum: signal.Signals) -> None:
        with suppress(ProcessLookupError, PermissionError):  # the group is already gone
            os.killpg(pgid, signum)

    # --- state changes -------------------------------------------------------------------------

    def _set(self, name: str, **changes: object) -> None:
        self.record["jobs"][name].update(changes)
        self._changed()

    def _changed(self) -> None:
        records.write_record(self.artifacts_dir, self.record)
        with _display_may_fail():
            self.progress.changed(self.record)

    @contextmanager
    def _signals_cancel(self) -> Iterator[None]:
        """Ctrl-C, SIGTERM or SIGHUP cancels the run (report still runs); a second stops everything now."""

        def cancel(signum: int, _frame: object) -> None:
            if self.cancelling:
                self.forced = True
            self.cancelling = True
            with _display_may_fail():  # an exception here would surface in the run loop and end it
                self.progress.note(
                    f"{signal.Signals(signum).name}: cancelling the run; the report still runs"
                )

        # SIGHUP too: a closed terminal must not kill the runner and leave its jobs running.
        stops = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        previous = {signum: signal.signal(signum, cancel) for signum in stops}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
