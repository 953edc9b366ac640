"""Benchmark (not a test): the runner on sleep-only jobs of the real graph's shape, sequential vs --parallel.

Usage:  python scripts/bench_pipeline.py [--scale S]      (or: nox -s bench -- pipeline)
Needs:  nox (requirements/tools.txt). Takes about 30 s at scale 1; uses no CPU to speak of.

Both runs happen in one invocation, on the same machine, so the ratios compare like with like:
- parallel wall / critical path: how close --parallel gets to the graph's longest chain of jobs
  (computed from each job's measured duration, and from its nominal sleep)      target <= 1.1
- parallel wall / sequential wall, for this shape                              target <= 0.65
- runner overhead per job: sequential wall minus the jobs' own durations, per job  target < 0.5 s
A job's own duration is its `nox -s` process from start to exit, so nox's start-up counts as the job's.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere: import the engine

from pipeline.graph import JOBS
from pipeline.progress import Progress
from pipeline.runner import Runner, RunOptions

#: Seconds each job sleeps: unit ∥ build → deploy ∥ scan → test ∥ demo → report.
SLEEPS = {"unit": 3.0, "build": 3.0, "deploy": 2.0, "scan": 1.0, "test": 4.0, "demo": 4.0, "report": 1.0}
GRAPH = JOBS

NOXFILE = """\
import time

import nox

nox.options.default_venv_backend = "none"
SLEEPS = {sleeps!r}


def _job(name):
    def session(session):
        time.sleep(SLEEPS[name])

    session.__doc__ = f"Sleep {{SLEEPS[name]}} s."
    return nox.session(name=name)(session)


for _name in SLEEPS:
    _job(_name)
"""


def critical_path(durations: dict[str, float]) -> float:
    """The longest chain of `durations` through the graph's needs."""
    finish: dict[str, float] = {}
    for job in GRAPH:  # declared in dependency order
        finish[job.name] = max((finish[need] for need in job.needs), default=0.0) + durations[job.name]
    return max(finish.values())


def timed_run(project: Path, *, parallel: bool) -> tuple[float, dict[str, float]]:
    options = RunOptions(parallel=parallel, artifacts_dir=project / f"artifacts-{parallel}")
    runner = Runner(options, jobs=GRAPH, cwd=project, progress=Progress(io.StringIO()))
    started = time.monotonic()
    record = runner.run()
    wall = time.monotonic() - started
    if record["status"] != "success":  # the logs go with the temporary folder: show their ends now
        logs = [options.artifacts_dir / entry["log"] for entry in record["jobs"].values() if entry["log"]]
        ends = "".join(f"\n--- {log.name}\n{log.read_text()[-800:]}" for log in logs if log.is_file())
        raise SystemExit(f"benchmark run failed ({record['status']}):{ends}")
    return wall, {name: entry["duration_seconds"] for name, entry in record["jobs"].items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every job's sleep (default 1)")
    scale = parser.parse_args().scale
    if missing := [job.name for job in GRAPH if job.name not in SLEEPS]:
        raise SystemExit(f"give every job of the graph a sleep in SLEEPS: {', '.join(missing)} has none")
    sleeps = {name: seconds * scale for name, seconds in SLEEPS.items()}
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as directory:
        project = Path(directory)
        (project / "noxfile.py").write_text(NOXFILE.format(sleeps=sleeps))
        sequential_wall, sequential_jobs = timed_run(project, parallel=False)
        parallel_wall, parallel_jobs = timed_run(project, parallel=True)
    measured_path = critical_path(parallel_jobs)
    nominal_path = critical_path(sleeps)
    overhead = (sequential_wall - sum(sequential_jobs.values())) / len(GRAPH)
    shape = "{unit} ∥ {build} → {deploy} ∥ {scan} → {test} ∥ {demo} → {report}".format(
        **{name: f"{name} {seconds:g} s" for name, seconds in sleeps.items()}
    )
    rows = [
        ("sequential wall", f"{sequential_wall:.2f} s", ""),
        ("parallel wall", f"{parallel_wall:.2f} s", ""),
        ("critical path (measured job durations)", f"{measured_path:.2f} s", ""),
        ("critical path (nominal sleeps)", f"{nominal_path:.2f} s", ""),
        ("parallel wall / critical path (measured)", f"{parallel_wall / measured_path:.3f}", "≤ 1.1"),
        ("parallel wall / critical path (nominal)", f"{parallel_wall / nominal_path:.3f}", ""),
        ("parallel / sequential", f"{parallel_wall / sequential_wall:.3f}", "≤ 0.65"),
        ("runner overhead per job (sequential)", f"{overhead:.3f} s", "< 0.5 s"),
        ("nox start-up inside each job (mean)", f"{_mean_startup(sequential_jobs, sleeps):.3f} s", ""),
    ]
    print(f"Jobs (sleeps): {shape}\n")
    print("| measure | value | target |\n| --- | --- | --- |")
    for measure, value, target in rows:
        print(f"| {measure} | {value} | {target} |")


def _mean_startup(durations: dict[str, float], sleeps: dict[str, float]) -> float:
    return sum(durations[name] - sleeps[name] for name in sleeps) / len(sleeps)


if __name__ == "__main__":
    main()
