"""One local environment as the jobs see it: endpoint, status, hand-made drifts, saved state."""

from __future__ import annotations

import json
import shutil
import signal
import threading
import urllib.request
from pathlib import Path

import psutil

from pipeline.artifacts import read_json, write_json_atomic
from pipeline.contracts import ClusterStatus, Prometheus, encode
from pipeline.ports import free_port
from pipeline.release import ControllerStatus, Drift, Observation
from pipeline.scrub import is_secret_name, mask_text, scrub_file, write_text_atomic
from pipeline.targets import summarize_prometheus_targets
from pipeline.targets.local import layout
from pipeline.targets.local.desired import PORT_VARIABLE
from pipeline.targets.local.reconciler import labelled_processes, replica_processes, start_logged
from pipeline.targets.local.target import is_reconciler, stop_environment

#: The setting the config drift changes, and the value it sets when Git's is different.
DRIFTED_SETTING = "ML_INFERENCE_MAX_BATCH"
DRIFTED_VALUES = ("10", "20")
#: How much of each replica's log save_state keeps: its last lines, read from at most its last bytes.
REPLICA_LOG_LINES = 200
REPLICA_LOG_BYTES = 256 * 1024


class LocalEnvironment:
    """An environment under .pipeline/local/<name>/, run by its reconciler."""

    def __init__(self, state_dir: Path, reconciler: psutil.Popen | None = None) -> None:
        state = json.loads((state_dir / layout.STATE).read_text())
        self.state_dir = state_dir
        self.name: str = state["name"]
        self.endpoint: str = state["endpoint"]
        self.prometheus_url: str | None = state["prometheus"]["url"] if state["prometheus"] else None
        #: The Prometheus is this environment's own: every series in it is this environment's.
        self.prometheus_selector: dict[str, str] = {}
        self._state = state
        self._reconciler = reconciler

    # -- what the jobs read ------------------------------------------------------------------

    def reconciler_status(self) -> dict:
        """The reconciler's latest observation (status.json), {} before the first one."""
        return read_json(self.state_dir / layout.STATUS) or {}

    def status(self) -> ControllerStatus:
        running = is_reconciler(self._state["reconciler_pid"], self.state_dir)
        status = self.reconciler_status() if running else {}
        return ControllerStatus(sync=status.get("sync", "Unknown"), health=status.get("health", "Missing"))

    def replica_urls(self) -> list[str]:
        return [r["url"] for r in self._replicas() if r["ready"]]

    def observed(self) -> Observation:
        """The replica processes running now (ps, not the reconciler's view, which may already have
        healed) less those the reconciler is stopping (like terminating pods), the ones among them
        it last saw ready, and their DRIFTED_SETTING."""
        status = self.reconciler_status().get("replicas", [])
        stopping = {r["pid"] for r in status if r["terminating"]}
        running = {
            pid: environ
            for pid, (_, environ) in replica_processes(self._state["environment_id"]).items()
            if pid not in stopping
        }
        ready = [r for r in status if r["ready"] and r["pid"] in running]
        values = {environ.get(DRIFTED_SETTING, "<unset>") for environ in running.values()}
        return Observation(
            replicas=len(running),
            ready_replicas=len(ready),
            config={DRIFTED_SETTING: sorted(values, key=lambda v: (len(v), v))},
        )

    def _replicas(self) -> list[dict]:
        return [r for r in self.reconciler_status().get("replicas", []) if not r["terminating"]]

    # -- drift by hand -----------------------------------------------------------------------

    def drifts(self) -> list[Drift]:
        return [
            Drift(
                "replica-count",
                "Start an extra replica by hand, outside Git (one more than Git's replica count)",
                self._start_extra_replica,
            ),
            Drift("replica-killed", "Kill one replica with SIGKILL", self._kill_replica),
            Drift(
                "config-drift",
                f"Restart one replica by hand with {DRIFTED_SETTING} different from Git",
                self._restart_replica_misconfigured,
            ),
        ]

    def _start_extra_replica(self) -> None:
        template = self._pick_replica()
        self._start_by_hand(template, name=f"{template.environ()[layout.REPLICA_LABEL]}-by-hand", changes={})

    def _kill_replica(self) -> None:
        self._pick_replica().send_signal(signal.SIGKILL)

    def _restart_replica_misconfigured(self) -> None:
        replica = self._pick_replica()
        environ = replica.environ()
        value = next(v for v in DRIFTED_VALUES if v != environ.get(DRIFTED_SETTING))
        # The drifted copy starts before the original stops: a restart that never drops capacity.
        self._start_by_hand(replica, name=environ[layout.REPLICA_LABEL], changes={DRIFTED_SETTING: value})
        replica.terminate()

    def _pick_replica(self) -> psutil.Process:
        """A ready replica that runs Git's configuration, checked to be what status.json says."""
        for replica in self._replicas():
            if not (replica["ready"] and replica["git_config"]):
                continue
            try:
                process = psutil.Process(replica["pid"])
                if process.environ().get(layout.REPLICA_LABEL) == replica["name"]:
                    return process
            except psutil.Error:
                continue
        raise RuntimeError(f"local/{self.name}: no ready replica to drift")

    def _start_by_hand(self, template: psutil.Process, *, name: str, changes: dict[str, str]) -> None:
        """Run a copy of `template`'s command and environment, as an operator at a shell would."""
        environ = template.environ() | changes | {PORT_VARIABLE: str(free_port()), layout.REPLICA_LABEL: name}
        log = self.state_dir / layout.REPLICA_LOGS / f"{name}.log"
        process = start_logged(template.cmdline(), log, env=environ, cwd=self.state_dir)
        # The reconciler stops it; reap it here so no zombie outlives it.
        threading.Thread(target=process.wait, daemon=True).start()

    # -- state for the cluster-state artifact -------------------------------------------------

    def save_state(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        status = self.reconciler_status()
        current = self.status()
        targets = self._prometheus_targets()
        state = ClusterStatus(
            target="local",
            environment=self.name,
            endpoint=self.endpoint,
            sync=current.sync,
            health=current.health,
            reasons=status.get("reasons", []),
            revision=status.get("revision"),
            desired_replicas=(status.get("desired") or {}).get("replicas"),
            heal=status.get("heal"),
            replicas=self._replicas(),
            prometheus=Prometheus(
                url=self.prometheus_url,
                targets=summarize_prometheus_targets(
                    (targets.get("data") or {}).get("activeTargets", []), self.prometheus_selector
                ),
            )
            if self.prometheus_url
            else None,
            observed_at=status.get("observed_at"),
        )
        write_json_atomic(directory / "status.json", encode(ClusterStatus, state))
        write_json_atomic(directory / "processes.json", self._process_table())
        write_json_atomic(directory / "prometheus-targets.json", targets)
        for source, target in (
            (layout.MANIFESTS, "manifests.yaml"),
            (layout.EVENTS, "events.jsonl"),
            (layout.HISTORY, "reconciler-history.jsonl"),
        ):
            if (self.state_dir / source).exists():
                shutil.copyfile(self.state_dir / source, directory / target)
                scrub_file(directory / target)
        for log in sorted((self.state_dir / layout.REPLICA_LOGS).glob("*.log")):
            write_text_atomic(directory / "replica-logs" / log.name, _scrubbed_tail(log))

    def _process_table(self) -> list[dict]:
        """Every process of the environment: the reconciler's tree plus replicas started by hand."""
        reconciler_pid, environment_id = self._state["reconciler_pid"], self._state["environment_id"]
        try:
            reconciler = psutil.Process(reconciler_pid)
            processes = [reconciler, *reconciler.children(recursive=True)]
        except psutil.Error:
            processes = []
        known = {p.pid for p in processes}
        processes += [p for pid, (p, _) in labelled_processes(environment_id).items() if pid not in known]
        table = []
        for process in processes:
            try:
                with process.oneshot():
                    cmdline = process.cmdline()
                    row: dict[str, object] = {
                        "pid": process.pid,
                        "ppid": process.ppid(),
                        "cmdline": cmdline,
                        "status": process.status(),
                        "rss_bytes": process.memory_info().rss,
                        "cpu_seconds": round(sum(process.cpu_times()[:2]), 2),
                        "started_at": process.create_time(),
                    }
                    environ = process.environ() if process.pid != reconciler_pid else {}
            except psutil.Error:
                continue
            if process.pid == reconciler_pid:
                row["role"] = "reconciler"
            elif environ.get(layout.ENVIRONMENT_LABEL) == environment_id:
                row["role"] = "replica"
                row["replica"] = environ.get(layout.REPLICA_LABEL)
                row["environment"] = {k: v for k, v in sorted(environ.items()) if not is_secret_name(k)}
            else:
                row["role"] = "prometheus" if cmdline and Path(cmdline[0]).name == "prometheus" else "other"
            table.append(row)
        return table

    def _prometheus_targets(self) -> dict:
        if self.prometheus_url is None:
            return {"status": "unavailable", "reason": "no Prometheus runs in this environment"}
        try:
            with urllib.request.urlopen(f"{self.prometheus_url}/api/v1/targets", timeout=5) as response:
                return json.load(response)
        except (OSError, ValueError) as error:
            return {"status": "error", "reason": f"GET {self.prometheus_url}/api/v1/targets failed: {error}"}

    def down(self) -> None:
        stop_environment(self.state_dir)
        if self._reconciler is not None:
            self._reconciler.wait(timeout=5)


def _scrubbed_tail(log: Path) -> str:
    """The log's last REPLICA_LOG_LINES lines, masked before they are cut from the rest."""
    size = log.stat().st_size
    with open(log, "rb") as handle:
        handle.seek(max(0, size - REPLICA_LOG_BYTES))
        text = handle.read().decode("utf-8", errors="replace")
    if size > REPLICA_LOG_BYTES:
        text = text.partition("\n")[2]  # the first line read is a piece of one
    lines = mask_text(text).splitlines()
    return "\n".join(lines[-REPLICA_LOG_LINES:]) + ("\n" if lines else "")
