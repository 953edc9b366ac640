"""The runner's GitHub Actions semantics, proven with real nox sessions in a throwaway project."""

from __future__ import annotations

import io
import itertools
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.graph import Job
from pipeline.progress import Progress
from pipeline.runner import Runner, RunOptions, nox_command
from pipeline.status import FINISHED
from tests.engine.fake_project import FakeProject, process_gone, processes_of_run
from tests.helpers import read_only_under

#: Every test runs a whole pipeline: the real runner over real nox sessions.
pytestmark = pytest.mark.slow

RECORD_KEYS = {
    "schema_version", "run_id", "commit", "target", "demo_mode", "parallel", "started_at", "finished_at",
    "duration_seconds", "status", "jobs",
}  # fmt: skip
JOB_KEYS = {
    "status", "needs", "artifact", "started_at", "finished_at", "duration_seconds", "exit_code", "log",
    "outputs", "reused",
}  # fmt: skip


def statuses(record: dict) -> dict[str, str]:
    return {name: entry["status"] for name, entry in record["jobs"].items()}


def test_test_and_demo_overlap_in_time_when_parallel(fake_project: FakeProject) -> None:
    fake_project.plan(test={"seconds": 2}, demo={"seconds": 2})
    record = fake_project.run(parallel=True)
    assert record["status"] == "success"
    test, demo = fake_project.times("test"), fake_project.times("demo")
    assert demo["start"] < test["end"] and test["start"] < demo["end"]


def test_sequential_run_never_overlaps_jobs(fake_project: FakeProject) -> None:
    fake_project.plan(
        unit={"seconds": 0.5}, build={"seconds": 0.5}, test={"seconds": 0.5}, demo={"seconds": 0.5}
    )
    record = fake_project.run(parallel=False)
    assert record["status"] == "success" and record["parallel"] is False
    spans = sorted(
        (fake_project.times(name)["start"], fake_project.times(name)["end"]) for name in record["jobs"]
    )
    for (_, end), (next_start, _) in itertools.pairwise(spans):
        assert end <= next_start


def test_max_parallel_bounds_the_jobs_running_at_once(fake_project: FakeProject) -> None:
    fake_project.plan(unit={"seconds": 1}, build={"seconds": 1})
    fake_project.run(parallel=True, max_parallel=1)
    unit, build = fake_project.times("unit"), fake_project.times("build")
    assert unit["end"] <= build["start"] or build["end"] <= unit["start"]


def test_failed_job_skips_its_dependents_and_report_still_runs(fake_project: FakeProject) -> None:
    fake_project.plan(build={"exit": 1})
    record = fake_project.run(parallel=True)
    assert statuses(record) == {
        "unit": "success",
        "build": "failure",
        "deploy": "skipped",
        "scan": "skipped",
        "test": "skipped",
        "demo": "skipped",
        "report": "success",
    }
    assert record["status"] == "failure"
    assert record["jobs"]["build"]["exit_code"] == 1
    assert fake_project.runs_of("deploy") == []


def test_finished_jobs_artifacts_and_the_failed_jobs_partial_work_survive(fake_project: FakeProject) -> None:
    fake_project.plan(unit={"seconds": 0.5}, build={"exit": 1})
    fake_project.run(parallel=True)
    artifacts = fake_project.artifacts
    assert json.loads((artifacts / "unit-results" / "outputs.json").read_text())["job"] == "unit"
    assert (artifacts / "build-output" / "partial.txt").exists()
    assert "job.py build" in (artifacts / "logs" / "build.log").read_text()


def test_hung_job_is_killed_at_its_timeout_with_its_grandchildren(fake_project: FakeProject) -> None:
    fake_project.plan(deploy={"seconds": 600, "grandchildren": 2})
    fake_project.set_timeout("deploy", 2)
    started = time.monotonic()
    record = fake_project.run(parallel=True)
    elapsed = time.monotonic() - started
    deploy = record["jobs"]["deploy"]
    assert deploy["status"] == "timed_out"
    assert 2 <= deploy["duration_seconds"] < 2 + 3 * 0.5 + 2
    assert elapsed < 30
    pids = [
        int(pid)
        for pid in (fake_project.artifacts / "cluster-state" / "grandchildren.pids").read_text().split()
    ]
    assert len(pids) == 2 and all(process_gone(pid) for pid in pids)
    assert statuses(record)["test"] == "skipped" and statuses(record)["report"] == "success"
    assert record["status"] == "failure"


def test_grandchildren_left_by_a_finished_job_are_cleaned_up(fake_project: FakeProject) -> None:
    fake_project.plan(unit={"grandchildren": 1})
    record = fake_project.run(parallel=True)
    assert record["status"] == "success"
    pid = int((fake_project.artifacts / "unit-results" / "grandchildren.pids").read_text())
    assert process_gone(pid)
    assert processes_of_run(record["run_id"]) == []


# Ctrl-C, a stop (kill, a CI runner's cancel) and a closed terminal: the jobs run in sessions of
# their own, so a signal the runner dies of would leave them running.
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_a_stop_signal_cancels_the_run_runs_the_report_and_leaves_no_process(
    fake_project: FakeProject, driver_command: Callable[..., list[str]], signum: signal.Signals
) -> None:
    fake_project.plan(test={"seconds": 600, "grandchildren": 1}, demo={"seconds": 600})
    driver = subprocess.Popen(
        driver_command(parallel=True),
        cwd=fake_project.root,
        start_new_session=True,  # Ctrl-C reaches the terminal's foreground group: here, the driver's own
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    record_path = fake_project.artifacts / "pipeline-run.json"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        record = json.loads(record_path.read_text()) if record_path.exists() else {"jobs": {}}
        running = {name for name, entry in record["jobs"].items() if entry["status"] == "running"}
        if {"test", "demo"} <= running and (
            fake_project.artifacts / "test-results" / "grandchildren.pids"
        ).exists():
            break
        time.sleep(0.1)
    else:
        driver.kill()
        pytest.fail("test and demo never both ran")
    grandchild = int((fake_project.artifacts / "test-results" / "grandchildren.pids").read_text())
    os.killpg(driver.pid, signum)
    output, _ = driver.communicate(timeout=30)
    record = json.loads(record_path.read_text())
    assert driver.returncode != 0, output
    assert record["status"] == "cancelled"
    assert statuses(record)["test"] == "cancelled" and statuses(record)["demo"] == "cancelled"
    assert statuses(record)["report"] == "success"
    assert process_gone(grandchild)
    assert processes_of_run(record["run_id"]) == []


def test_a_second_run_on_the_same_artifacts_is_refused_while_the_first_runs(
    fake_project: FakeProject, driver_command: Callable[..., list[str]]
) -> None:
    """Else the second would empty the first's folders and move its record away as it ran."""
    fake_project.plan(unit={"seconds": 600})
    first = subprocess.Popen(
        driver_command(), cwd=fake_project.root, start_new_session=True, stdout=subprocess.DEVNULL
    )
    try:
        record_path = fake_project.artifacts / "pipeline-run.json"
        written = fake_project.artifacts / "unit-results" / "partial.txt"
        deadline = time.monotonic() + 30
        while not written.exists():
            assert time.monotonic() < deadline, "the first run's unit never wrote its artifact"
            time.sleep(0.1)
        running = json.loads(record_path.read_text())
        fake_project.plan()  # were the second run let through, its jobs would end at once
        with pytest.raises(
            SystemExit, match=f"run {running['run_id']} is still running on {fake_project.artifacts}"
        ):
            fake_project.run()
        assert json.loads(record_path.read_text())["run_id"] == running["run_id"]
        assert written.exists()
    finally:
        os.killpg(first.pid, signal.SIGINT)
        first.wait(timeout=30)


def test_rerun_failed_reruns_only_what_failed_and_its_dependents(fake_project: FakeProject) -> None:
    flag = fake_project.root / "make-test-fail"
    flag.touch()
    fake_project.plan(test={"fail_if": str(flag)})
    first = fake_project.run(parallel=True)
    assert statuses(first)["test"] == "failure"
    flag.unlink()

    second = fake_project.run(parallel=True, rerun_failed=True)
    assert second["status"] == "success"
    assert second["run_id"] == first["run_id"]
    rerun = {name for name in second["jobs"] if fake_project.runs_of(name).count(first["run_id"]) == 2}
    assert rerun == {"test", "report"}
    assert not any(entry["reused"] for entry in first["jobs"].values())
    for kept in ("unit", "build", "deploy", "demo"):
        assert second["jobs"][kept] == {**first["jobs"][kept], "reused": True}
    assert second["jobs"]["test"]["reused"] is False and second["jobs"]["report"]["reused"] is False
    assert (fake_project.artifacts / "build-output" / "outputs.json").exists()


def test_rerun_failed_after_a_run_that_succeeded_changes_nothing(fake_project: FakeProject) -> None:
    first = fake_project.run(parallel=True)
    assert first["status"] == "success"
    record = fake_project.artifacts / "pipeline-run.json"
    written = record.read_bytes()
    again = fake_project.run(parallel=True, rerun_failed=True)
    assert again == first
    assert record.read_bytes() == written  # its times stay the run's, not a second's of no work
    assert all(len(fake_project.runs_of(job.name)) == 1 for job in fake_project.jobs)


def test_rerun_failed_reruns_jobs_skipped_by_a_failure(fake_project: FakeProject) -> None:
    flag = fake_project.root / "make-build-fail"
    flag.touch()
    fake_project.plan(build={"fail_if": str(flag)})
    fake_project.run(parallel=True)
    flag.unlink()
    second = fake_project.run(parallel=True, rerun_failed=True)
    assert second["status"] == "success"
    assert len(fake_project.runs_of("unit")) == 1
    assert {name: len(fake_project.runs_of(name)) for name in ("build", "deploy", "test", "demo")} == {
        "build": 2,
        "deploy": 1,
        "test": 1,
        "demo": 1,
    }


def test_demo_is_skipped_in_quick_mode_and_the_run_still_succeeds(fake_project: FakeProject) -> None:
    record = fake_project.run(parallel=True, demo_mode="quick")
    assert statuses(record)["demo"] == "skipped"
    assert statuses(record)["report"] == "success"
    assert record["status"] == "success"
    assert fake_project.runs_of("demo") == []


def test_only_runs_the_named_jobs_from_artifacts_on_disk(fake_project: FakeProject) -> None:
    flag = fake_project.root / "make-test-fail"
    flag.touch()
    fake_project.plan(test={"fail_if": str(flag)})
    first = fake_project.run(parallel=True)
    record = fake_project.run(only=("deploy",))
    assert {name for name in record["jobs"] if len(fake_project.runs_of(name)) == 2} == {"deploy"}
    # kept, marked as such, but not this run's business
    assert record["jobs"]["test"] == {**first["jobs"]["test"], "reused": True}
    assert [name for name, entry in record["jobs"].items() if not entry["reused"]] == ["deploy"]
    assert record["status"] == "success"


def test_a_job_that_cannot_start_fails_and_skips_its_dependents(fake_project: FakeProject) -> None:
    runner = fake_project.runner(parallel=True)
    runner.command = lambda job: ["/nonexistent/nox"] if job.name == "build" else nox_command(job)
    record = runner.run()
    assert statuses(record)["build"] == "failure" and statuses(record)["deploy"] == "skipped"
    assert "could not start build" in (fake_project.artifacts / "logs" / "build.log").read_text()


def test_run_record_has_the_contract_schema_env_and_outputs(fake_project: FakeProject) -> None:
    record = fake_project.run(parallel=True, target="local", demo_mode="full", dry_run=True)
    on_disk = json.loads((fake_project.artifacts / "pipeline-run.json").read_text())
    assert on_disk == record
    assert set(record) == RECORD_KEYS
    for name, entry in record["jobs"].items():
        assert set(entry) == JOB_KEYS
        assert entry["status"] in FINISHED
        assert entry["log"] == f"logs/{name}.log"
        assert (fake_project.artifacts / entry["log"]).exists()
        assert entry["outputs"] == {"job": name, "artifact": entry["artifact"]}
    env = json.loads((fake_project.artifacts / "build-output" / "env.json").read_text())
    assert env == {
        "PIPELINE_TARGET": "local",
        "PIPELINE_DEMO_MODE": "full",
        "PIPELINE_ARTIFACTS_DIR": str(fake_project.artifacts),
        "PIPELINE_RUN_ID": record["run_id"],
        "PIPELINE_DRY_RUN": "1",
        "PIPELINE_KEEP": "0",
    }


def test_a_fresh_run_keeps_the_previous_record_and_load_summary(fake_project: FakeProject) -> None:
    first = fake_project.run(parallel=True)
    (fake_project.artifacts / "test-results" / "load-summary.json").write_text('{"p95_ms": 12}')
    fake_project.run(parallel=True)
    previous = fake_project.artifacts / "previous"
    assert json.loads((previous / "pipeline-run.json").read_text())["run_id"] == first["run_id"]
    assert json.loads((previous / "test-results" / "load-summary.json").read_text()) == {"p95_ms": 12}
    assert not (fake_project.artifacts / "test-results" / "load-summary.json").exists()


def test_a_run_that_made_no_baseline_leaves_the_older_ones_in_previous(fake_project: FakeProject) -> None:
    # Else one run stopped before its build and its load leaves the gate only its floor, and no load
    # to compare with.
    first = fake_project.run(parallel=True)
    card = fake_project.artifacts / "build-output" / "model" / "model-card.json"
    card.parent.mkdir(parents=True, exist_ok=True)
    card.write_text('{"version": "v1", "test_accuracy": 0.97}')
    (fake_project.artifacts / "test-results" / "load-summary.json").write_text('{"p95_ms": 12}')
    fake_project.run(parallel=True)  # it makes neither a model card nor a load summary
    fake_project.run(parallel=True)
    previous = fake_project.artifacts / "previous"
    kept_card = json.loads((previous / "build-output" / "model" / "model-card.json").read_text())
    assert kept_card["version"] == "v1"
    assert json.loads((previous / "test-results" / "load-summary.json").read_text()) == {"p95_ms": 12}
    # The record kept beside the load summary is the run's that made it: the report names that run.
    assert json.loads((previous / "pipeline-run.json").read_text())["run_id"] == first["run_id"]


def test_the_scan_job_added_after_build_runs_beside_deploy(fake_project: FakeProject) -> None:
    """The README's recipe, now real: one declaration (scan after build); the graph does the rest."""
    fake_project.plan(scan={"seconds": 3}, deploy={"seconds": 1})
    record = fake_project.run(parallel=True)
    assert record["status"] == "success" and "scan" in record["jobs"]["report"]["needs"]
    scan_times, deploy_times = fake_project.times("scan"), fake_project.times("deploy")
    assert scan_times["start"] < deploy_times["end"] and deploy_times["start"] < scan_times["end"]


def test_jobs_not_yet_started_when_the_run_is_cancelled_are_cancelled(fake_project: FakeProject) -> None:
    fake_project.plan(build={"seconds": 600})
    runner = fake_project.runner(parallel=True)
    threading.Timer(1.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()  # Ctrl-C while build runs
    record = runner.run()
    assert statuses(record) == {
        "unit": "success",
        "build": "cancelled",
        "deploy": "cancelled",
        "scan": "cancelled",
        "test": "cancelled",
        "demo": "cancelled",
        "report": "success",
    }
    assert record["status"] == "cancelled"
    assert fake_project.runs_of("deploy") == []


def files_containing(root: Path, needle: str) -> list[str]:
    return sorted(
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() and needle.encode() in path.read_bytes()
    )


def test_no_secret_a_job_prints_or_saves_is_left_in_its_log_or_artifacts(fake_project: FakeProject) -> None:
    leak = "push https://u:CANARY1@git.example/x.git --password CANARY2 ghp_" + "CANARY3x" * 5
    fake_project.plan(unit={"leak": leak}, build={"leak": leak, "exit": 1})
    record = fake_project.run(parallel=True)
    assert statuses(record)["unit"] == "success" and statuses(record)["build"] == "failure"
    for canary in ("CANARY1", "CANARY2", "CANARY3"):
        assert files_containing(fake_project.artifacts, canary) == []
    assert (
        "push https://***@git.example/x.git --password ***"
        in (fake_project.artifacts / "logs" / "unit.log").read_text()
    )


def test_a_job_whose_artifacts_cannot_be_masked_fails_saying_why_and_the_run_goes_on(
    fake_project: FakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_project.plan(unit={"leak": "--password CANARY8"})
    read_only_under(monkeypatch, fake_project.artifacts / "unit-results")
    record = fake_project.run(parallel=True)
    assert statuses(record)["unit"] == "failure" and statuses(record)["build"] == "success"
    assert statuses(record)["report"] == "success", "the run went on to its end"
    assert files_containing(fake_project.artifacts, "CANARY8") == []
    log = (fake_project.artifacts / "logs" / "unit.log").read_text()
    assert "unit-results" in log and "could not mask it (Read-only file system), so removed it" in log


class _BrokenPipeProgress(Progress):
    """A terminal gone as Ctrl-C came: the handler's write fails, as print() does on a closed pipe."""

    def note(self, message: str) -> None:
        if message.startswith("SIGINT"):
            raise BrokenPipeError(32, "Broken pipe")
        super().note(message)


def test_a_failing_write_in_the_signal_handler_does_not_lose_the_run(fake_project: FakeProject) -> None:
    fake_project.plan(unit={"seconds": 600})
    runner = fake_project.runner()
    runner.progress = _BrokenPipeProgress(io.StringIO())
    started = threading.Event()

    def interrupt_once_unit_runs() -> None:
        deadline = time.monotonic() + 30
        while "unit" not in runner.running and time.monotonic() < deadline:
            time.sleep(0.05)
        started.set()
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_once_unit_runs, daemon=True).start()
    record = runner.run()
    assert started.is_set()
    assert record["status"] == "cancelled"
    assert statuses(record)["unit"] == "cancelled" and statuses(record)["report"] == "success"
    saved = json.loads((fake_project.artifacts / "pipeline-run.json").read_text())
    assert saved["status"] == "cancelled"


#: A job module that, stopped by the runner (SIGINT), takes a second to save its work.
SLOW_CLEAN_UP_JOB = """\
import sys, time
from pathlib import Path
try:
    Path("started").write_text("")
    time.sleep(60)
except KeyboardInterrupt:
    Path("clean-up-started").write_text("")
    time.sleep(1)
    Path("clean-up-done").write_text("")
    sys.exit(130)
"""
#: A nox project whose one session runs its job the way the project's noxfile.py runs every job.
NOXFILE_USING_THE_PROJECTS_JOB_RUNNER = """\
import importlib.util
import nox

spec = importlib.util.spec_from_file_location("project_noxfile", {noxfile!r})
project = importlib.util.module_from_spec(spec)
spec.loader.exec_module(project)
nox.options.default_venv_backend = "none"


@nox.session(name="slow")
def slow(session):
    project._run_job(session, "slow")
"""


def test_a_stopped_job_gets_the_runners_grace_to_clean_up_not_noxs(tmp_path: Path) -> None:
    (tmp_path / "pipeline" / "jobs").mkdir(parents=True)
    (tmp_path / "pipeline" / "jobs" / "slow.py").write_text(SLOW_CLEAN_UP_JOB)
    noxfile = Path(__file__).resolve().parents[2] / "noxfile.py"
    (tmp_path / "noxfile.py").write_text(NOXFILE_USING_THE_PROJECTS_JOB_RUNNER.format(noxfile=str(noxfile)))
    job = Job("slow", timeout_minutes=3 / 60)
    runner = Runner(
        RunOptions(artifacts_dir=tmp_path / "artifacts"),
        jobs=(job,),
        cwd=tmp_path,
        progress=Progress(io.StringIO()),
        stop_grace_seconds=5,
    )
    record = runner.run()
    assert record["jobs"]["slow"]["status"] == "timed_out"
    assert (tmp_path / "clean-up-started").exists(), (
        tmp_path / "artifacts" / "logs" / "slow.log"
    ).read_text()
    assert (tmp_path / "clean-up-done").exists(), "nox cut the job's clean-up short"
