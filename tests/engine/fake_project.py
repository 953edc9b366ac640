"""Fixtures for the runner's tests: a throwaway nox project whose sessions sleep, fail, hang or fork.

Each session runs `job.py <name>`, which does what `plan.json` says for that job: sleep, exit with
a code, leave grandchildren that ignore SIGINT and SIGTERM, write partial artifacts. Sessions use
venv_backend="none", so a job costs nox's start-up (a fraction of a second) plus its sleep.
"""

from __future__ import annotations

import io
import json
import os
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from pipeline.graph import JOBS, Job
from pipeline.progress import Progress
from pipeline.runner import Runner, RunOptions

NOXFILE = """\
import json
import sys
from pathlib import Path

import nox

nox.options.default_venv_backend = "none"


def _job(name):
    def session(session):
        session.run(sys.executable, "job.py", name, external=True)

    session.__doc__ = f"Fake job {name}."
    return nox.session(name=name)(session)


for _name in json.loads(Path("plan.json").read_text()):
    _job(_name)
"""

JOB_PY = """\
import json
import os
import subprocess
import sys
import time
from pathlib import Path

name = sys.argv[1]
spec = json.loads(Path("plan.json").read_text())[name]
out = Path(os.environ["PIPELINE_ARTIFACTS_DIR"]) / spec["artifact"]
out.mkdir(parents=True, exist_ok=True)
Path("runs").mkdir(exist_ok=True)
with open(Path("runs") / name, "a") as runs:
    runs.write(os.environ["PIPELINE_RUN_ID"] + "\\n")
started = time.time()
(out / "env.json").write_text(json.dumps({k: v for k, v in os.environ.items() if k.startswith("PIPELINE_")}))
(out / "partial.txt").write_text("written before the job's end\\n")
stubborn = (
    "import signal, time; [signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)];"
    " time.sleep(600)"
)
for _ in range(spec.get("grandchildren", 0)):
    child = subprocess.Popen([sys.executable, "-c", stubborn])
    with open(out / "grandchildren.pids", "a") as pids:
        pids.write(f"{child.pid}\\n")
if "leak" in spec:  # a job that prints and saves a secret, as careless tools do
    print(spec["leak"], flush=True)
    (out / "leak.txt").write_text(spec["leak"] + "\\n")
    (out / "nested" / "deeper").mkdir(parents=True, exist_ok=True)
    (out / "nested" / "deeper" / "leak.json").write_text(json.dumps({"cmd": spec["leak"].split()}))
time.sleep(spec.get("seconds", 0))
fail = spec.get("exit", 0) or (Path(spec["fail_if"]).exists() if "fail_if" in spec else 0)
(out / "outputs.json").write_text(json.dumps({"job": name, "artifact": spec["artifact"]}))
(out / "times.json").write_text(json.dumps({"start": started, "end": time.time()}))
sys.exit(1 if fail else 0)
"""


def real_graph(timeout_minutes: float = 1.0) -> tuple[Job, ...]:
    """The real graph (unit ∥ build → deploy → test ∥ demo → report) with short timeouts."""
    return tuple(replace(job, timeout_minutes=timeout_minutes) for job in JOBS)


@dataclass
class FakeProject:
    root: Path
    jobs: tuple[Job, ...]

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    def plan(self, **specs: dict[str, Any]) -> None:
        """Set what each job does (missing jobs: succeed at once)."""
        plan = {job.name: {"artifact": job.artifact, **specs.get(job.name, {})} for job in self.jobs}
        (self.root / "plan.json").write_text(json.dumps(plan))

    def set_timeout(self, name: str, seconds: float) -> None:
        self.jobs = tuple(
            replace(j, timeout_minutes=seconds / 60) if j.name == name else j for j in self.jobs
        )

    def runner(self, **options: Any) -> Runner:
        return Runner(
            RunOptions(artifacts_dir=self.artifacts, **options),
            jobs=self.jobs,
            cwd=self.root,
            progress=Progress(io.StringIO()),
            stop_grace_seconds=0.5,
        )

    def run(self, **options: Any) -> dict[str, Any]:
        return self.runner(**options).run()

    def runs_of(self, name: str) -> list[str]:
        """The run ids in which job `name` started, oldest first."""
        path = self.root / "runs" / name
        return path.read_text().split() if path.exists() else []

    def times(self, name: str) -> dict[str, float]:
        artifact = next(job.artifact for job in self.jobs if job.name == name)
        return json.loads((self.artifacts / str(artifact) / "times.json").read_text())


def process_gone(pid: int) -> bool:
    """True when `pid` no longer runs (absent, or a zombie waiting for its reaper)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def processes_of_run(run_id: str) -> list[int]:
    """Live processes whose environment carries this run's PIPELINE_RUN_ID: every job spawns with it."""
    marker = f"PIPELINE_RUN_ID={run_id}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0") and not process_gone(int(entry.name)):
            found.append(int(entry.name))
    return found


@pytest.fixture
def fake_project(tmp_path: Path) -> FakeProject:
    (tmp_path / "noxfile.py").write_text(NOXFILE)
    (tmp_path / "job.py").write_text(JOB_PY)
    project = FakeProject(tmp_path, real_graph())
    project.plan()
    return project


DRIVER = textwrap.dedent(
    """\
    import io, json, sys
    from pathlib import Path
    sys.path.insert(0, {repo!r})
    from pipeline.graph import JOBS, Job
    from pipeline.progress import Progress
    from pipeline.runner import Runner, RunOptions

    def job(spec):
        modes, needs = spec.pop("demo_modes"), spec.pop("needs")
        return Job(**spec, needs=tuple(needs), demo_modes=modes and tuple(modes))

    jobs = [job(spec) for spec in json.loads(sys.argv[1])]
    options = RunOptions(artifacts_dir=Path("artifacts"), **json.loads(sys.argv[2]))
    runner = Runner(options, jobs=jobs, cwd=Path.cwd(), progress=Progress(sys.stdout), stop_grace_seconds=0.5)
    sys.exit(0 if runner.run()["status"] == "success" else 1)
    """
)


@pytest.fixture
def driver_command(fake_project: FakeProject) -> Callable[..., list[str]]:
    """A command running the runner in its own process (for signals), over the fake project's graph."""
    script = fake_project.root / "drive.py"
    script.write_text(DRIVER.format(repo=str(Path(__file__).resolve().parents[2])))

    def command(**options: Any) -> list[str]:
        jobs = [
            {
                "name": job.name,
                "needs": list(job.needs),
                "timeout_minutes": job.timeout_minutes,
                "artifact": job.artifact,
                "condition": job.condition,
                "demo_modes": list(job.demo_modes) if job.demo_modes else None,
            }
            for job in fake_project.jobs
        ]
        return [sys.executable, str(script), json.dumps(jobs), json.dumps(options)]

    return command
