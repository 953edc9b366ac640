"""The local target's GitOps reconciler: the stand-in for Argo CD on one machine.

Run as `python -m pipeline.targets.local.reconciler STATE_DIR` (Target.up starts it detached, in
its own session). About once a second it

1. reads Git's desired state (re-rendering gitops/ with kustomize whenever a file there changes),
2. observes live state: every process labelled with this environment's id in its environment
   (found by a scan of all processes, so a replica started by hand is seen too), its real command
   line and environment, and its probes (startup, then readiness and liveness, on the manifest's
   paths; a startup or liveness probe that keeps failing past failureThreshold x periodSeconds
   fails the replica; a replica is not ready from its first failed /ready, as a terminating pod
   leaves its Service at once: a replica draining after SIGTERM answers /ready with 503),
3. reports Synced/OutOfSync and Healthy/Progressing/Degraded with the reasons,
4. heals drift like a Deployment with maxUnavailable 0 (but no maxSurge limit, to heal fast):
   starts every missing replica at once, stops extra ones, replaces failed ones, and stops a
   misconfigured replica only once Git's replicas are ready (or at once if it is not ready).
   A replica that exits because another program took its port before it could bind it is
   started again on a fresh port at once, and does not count toward a crash loop.
   With PIPELINE_RECONCILER_HEAL=0 it still applies a new Git revision once (Argo CD's automated
   sync without selfHeal) but leaves live drift alone. While Git cannot be rendered it reports
   Unknown and changes nothing (Argo CD's ComparisonError), and renders again after 1, 2, 4 ... up
   to 30 s even if no file changed: a timed-out kustomize is often transient.

It writes status.json (current view), events.jsonl (actions and changes) and history.jsonl (one
line per observation), all timestamped; it runs Prometheus on observability/prometheus/
(reloaded when that changes) and keeps its file discovery current. The loop wakes early when a
child exits, so a killed replica is replaced within the same second.

Load balancing is the kernel's: every replica also listens on the shared endpoint port with
SO_REUSEPORT, and the reconciler holds a bound, never-listening socket on that port for the
environment's lifetime so no other program can take it. Readiness gates traffic less than a
Service does, because the kernel hashes each new connection over every socket listening on the
port and knows nothing of /ready:
- a replica gets its share of new connections from the moment it listens on the shared port
  until it closes that listener, ready or not (a replica that listens before its model is loaded
  answers its share with 503 meanwhile; the service closes the listener first when it drains);
- connections still queued on a listener when it closes (or when its process is killed) are reset;
- the reconciler cannot take a not-ready replica out of rotation, only replace it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
import traceback
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from pipeline.artifacts import read_json, write_json_atomic
from pipeline.gitops.render import RenderError, render_text
from pipeline.ports import free_port
from pipeline.scrub import mask, write_text_atomic
from pipeline.targets.local import layout
from pipeline.targets.local.desired import (
    DEPLOYMENT,
    PORT_VARIABLE,
    DesiredState,
    desired_state,
)
from pipeline.targets.local.target import log_tail
from pipeline.timestamps import iso

#: Seconds between observations when all is well, and while converging.
STEADY_INTERVAL = 1.0
CONVERGING_INTERVAL = 0.2
PROBE_TIMEOUT = 0.5
#: A failed render of gitops/ is retried after 1, 2, 4 ... up to this many seconds.
MAX_RENDER_BACKOFF = 30.0
#: A replica that crashes before it is ready is restarted after 0.5, 1, 2 ... up to 10 s (CrashLoopBackOff).
MAX_BACKOFF = 10.0
#: After this many replicas in a row exit before ready, health is Degraded (CrashLoopBackOff).
CRASH_LOOP_FAILURES = 3
#: Bound on the whole shutdown, whatever the manifest's grace period (down() kills the group after it).
SHUTDOWN_GRACE = 10.0
#: A replica's exit status when its port was taken between our choice and its bind (the service's
#: EXIT_PORT_IN_USE): another program's doing, so it is restarted on a fresh port at once and
#: never counts toward a crash loop.
PORT_IN_USE_EXIT = 75
PROMETHEUS_RESTART_DELAY = 5.0
#: Prometheus exits in a row before it was ever ready that make a crash loop (a config it rejects).
PROMETHEUS_CRASH_LOOP = 2
#: After a SIGHUP, when to ask Prometheus whether it took the new config, and when to stop asking.
RELOAD_SETTLE_SECONDS = 1.0
RELOAD_GIVE_UP_SECONDS = 10.0
#: In a Prometheus error line (logfmt, as v2 and v3 write it): its cause (`err=`), else its message.
PROMETHEUS_ERROR_LINE = re.compile(r"\blevel=error\b", re.IGNORECASE)
PROMETHEUS_CAUSE = re.compile(r'\berr="((?:[^"\\]|\\.)*)"')
PROMETHEUS_MESSAGE = re.compile(r'\bmsg="((?:[^"\\]|\\.)*)"')


@dataclass
class Replica:
    name: str
    #: A psutil.Popen for replicas this reconciler started (and must reap).
    process: psutil.Process
    port: int
    started_monotonic: float
    started_at: str
    started: bool = False
    ready: bool = False
    ever_ready: bool = False
    last_alive: float = 0.0
    failed: str | None = None
    differences: list[str] = field(default_factory=list)
    stopping_since: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        """Running and not a zombie (a replica we started is reaped by observe(), which wants its code)."""
        try:
            return self.process.is_running() and self.process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    def view(self) -> dict:
        return {
            "name": self.name,
            "pid": self.process.pid,
            "port": self.port,
            "url": self.url,
            "ready": self.ready,
            "started": self.started,
            "git_config": not self.differences,
            "differences": self.differences,
            "started_at": self.started_at,
            "started_by": "reconciler"
            if isinstance(self.process, psutil.Popen)
            else "outside the reconciler",
            "terminating": self.stopping_since is not None,
        }


class Reconciler:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.state = json.loads((state_dir / layout.STATE).read_text())
        self.replicas: dict[int, Replica] = {}
        self.desired: DesiredState | None = None
        self.desired_error: str | None = None
        self.gitops_fingerprint: tuple | None = None
        self.render_failures = 0
        self.render_retry_at = 0.0
        #: The revision last brought to Synced + Healthy; a new one is applied even without heal.
        self.applied_revision: str | None = None
        #: Replicas in a row that exited before they were ever ready, and the last of them.
        self.crash_failures = 0
        self.last_crash: dict | None = None
        self.next_start_at = 0.0
        self.last_view: tuple | None = None
        self.targets_written: list | None = None
        self.prometheus_config_fingerprint: tuple | None = None
        self.prometheus: psutil.Popen | None = None
        self.prometheus_started = 0.0
        self.prometheus_ready = False
        #: Prometheus exits in a row before it was ever ready, and the errors it logged the last time.
        self.prometheus_failures = 0
        self.prometheus_errors: list[str] = []
        self.prometheus_log_offset = 0
        #: A SIGHUP not yet confirmed (when it was sent, the log's size then), and what Prometheus
        #: said when it last rejected a changed config.
        self.prometheus_reload: tuple[float, int] | None = None
        self.prometheus_rejected: list[str] = []
        self.stopping = False
        self.probes = ThreadPoolExecutor(max_workers=8, thread_name_prefix="probe")
        (state_dir / layout.REPLICA_LOGS).mkdir(exist_ok=True)
        # The shared endpoint port, reserved: bound with SO_REUSEPORT, never listening.
        self.endpoint_hold = socket.socket()
        self.endpoint_hold.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self.endpoint_hold.bind(("127.0.0.1", self.state["endpoint_port"]))
        # Each signal writes a byte to the other end of `wakeup`, which ends the wait in sleep().
        self.wakeup, wakeup_send = socket.socketpair()
        wakeup_send.setblocking(False)
        signal.set_wakeup_fd(wakeup_send.detach(), warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._request_stop)
        signal.signal(signal.SIGINT, self._request_stop)

    # -- the loop ----------------------------------------------------------------------------

    def run(self) -> None:
        self.event(
            "reconciler-started", pid=os.getpid(), heal=self.state["heal"], overlay=self.state["overlay"]
        )
        while not self.stopping:
            try:
                converged = self.reconcile_once()
            except Exception:  # one bad observation must not take the controller down
                self.event("reconciler-error", traceback=traceback.format_exc())
                converged = False
            self.sleep(STEADY_INTERVAL if converged else CONVERGING_INTERVAL)
        self.shutdown()

    def reconcile_once(self) -> bool:
        """Observe, report, heal; True when Synced and Healthy."""
        self.refresh_desired()
        self.observe()
        desired = self.desired
        active = [r for r in self.replicas.values() if r.stopping_since is None]
        if desired is None:
            self.report("Unknown", "Missing", [self.desired_error or "no desired state yet"], [])
            return False
        for replica in active:
            with contextlib.suppress(psutil.Error):  # gone since observe(): the next tick notices
                replica.differences = desired.differences(
                    replica.process.cmdline(), replica.process.environ()
                )
        health = self.assess(desired, active)
        actions = []
        if self.desired_error is not None:
            # Like Argo CD's ComparisonError: nothing is changed while Git cannot be read.
            sync, reasons = "Unknown", [self.desired_error]
        else:
            sync, reasons = self.compare(desired, active)
            if self.state["heal"] or desired.revision != self.applied_revision:
                actions = self.converge(desired, active, time.monotonic())
            if sync == "Synced" and health == "Healthy":
                self.applied_revision = desired.revision
        self.manage_prometheus()
        self.report(sync, health, reasons, actions)
        return sync == "Synced" and health == "Healthy"

    def sleep(self, seconds: float) -> None:
        """Wait, but wake at once on SIGCHLD (a replica died) or SIGTERM."""
        self.wakeup.settimeout(seconds)
        with contextlib.suppress(TimeoutError):
            self.wakeup.recv(64)

    # -- desired and live state --------------------------------------------------------------

    def refresh_desired(self) -> None:
        """Re-render when a file under gitops/ changed (rendering every second costs CPU), or to retry."""
        overlay = Path(self.state["overlay"])
        fingerprint = _tree_fingerprint(overlay.parents[1])
        failed = self.desired_error is not None
        if fingerprint == self.gitops_fingerprint and not (
            failed and time.monotonic() >= self.render_retry_at
        ):
            return
        self.gitops_fingerprint = fingerprint
        try:
            manifests = render_text(overlay)
            desired = desired_state(
                manifests, model_dir=Path(self.state["model_dir"]), shared_port=self.state["endpoint_port"]
            )
        except (RenderError, OSError, ValueError, KeyError, subprocess.SubprocessError) as error:
            self.desired_error = f"cannot read Git's desired state: {error}"
            self.render_failures += 1
            retry_in = min(MAX_RENDER_BACKOFF, 2.0 ** (self.render_failures - 1))
            self.render_retry_at = time.monotonic() + retry_in
            self.event("desired-state-error", error=str(error), retry_in_seconds=retry_in)
            return
        self.desired_error = None
        self.render_failures = 0
        if self.desired is None or desired.revision != self.desired.revision:
            write_text_atomic(self.state_dir / layout.MANIFESTS, manifests)  # save_state may copy it now
            self.event(
                "desired-state",
                revision=desired.revision[:12],
                replicas=desired.replicas,
                template_hash=desired.template_hash,
            )
        self.desired = desired

    def observe(self) -> None:
        """Drop replicas that are gone, adopt labelled processes nobody told us about."""
        for pid, replica in list(self.replicas.items()):
            if replica.alive():
                continue
            del self.replicas[pid]
            returncode = (
                replica.process.wait(timeout=1) if isinstance(replica.process, psutil.Popen) else None
            )
            if replica.stopping_since is not None:
                self.event("replica-stopped", replica=replica.name, pid=pid, returncode=returncode)
                continue
            if returncode == PORT_IN_USE_EXIT and not replica.ever_ready:
                self.event("replica-port-taken", replica=replica.name, pid=pid, port=replica.port)
                continue
            exited = {
                "replica": replica.name,
                "pid": pid,
                "returncode": returncode,
                "log_tail": log_tail(self.state_dir / layout.REPLICA_LOGS / f"{replica.name}.log"),
            }
            if not replica.ever_ready:
                self.crash_failures += 1
                self.last_crash = exited
                self.next_start_at = time.monotonic() + min(MAX_BACKOFF, 0.5 * 2 ** (self.crash_failures - 1))
            self.event("replica-exited", **exited)
        for pid, (process, environ) in replica_processes(self.state["environment_id"]).items():
            if pid in self.replicas:
                continue
            replica = Replica(
                name=environ.get(layout.REPLICA_LABEL, f"unlabelled-{pid}"),
                process=process,
                port=int(environ.get(PORT_VARIABLE, 0)),
                started_monotonic=time.monotonic() - (time.time() - process.info["create_time"]),
                started_at=iso(process.info["create_time"]),
            )
            self.replicas[pid] = replica
            self.event("replica-found", replica=replica.name, pid=pid, detail="not started by the reconciler")
        if (desired := self.desired) is not None:
            live = [r for r in self.replicas.values() if r.stopping_since is None]
            list(self.probes.map(lambda replica: self._probe(replica, desired), live))

    def _probe(self, replica: Replica, desired: DesiredState) -> None:
        now = time.monotonic()
        startup = desired.startup
        if not replica.started:
            replica.started = startup is None or _http_ok(replica.url + startup.path)
            if startup is not None and not replica.started:
                if now - replica.started_monotonic > startup.window_seconds:
                    replica.failed = f"startup probe {startup.path} failed for {startup.window_seconds:g}s"
                return
            replica.last_alive = now
        if desired.liveness is not None:
            if _http_ok(replica.url + desired.liveness.path):
                replica.last_alive = now
            elif now - replica.last_alive > desired.liveness.window_seconds:
                replica.failed = (
                    f"liveness probe {desired.liveness.path} failed for {desired.liveness.window_seconds:g}s"
                )
        replica.ready = desired.readiness is None or _http_ok(replica.url + desired.readiness.path)
        if replica.ready and not replica.ever_ready:
            replica.ever_ready = True
            self.crash_failures = 0
            self.event("replica-ready", replica=replica.name, pid=replica.process.pid, url=replica.url)

    # -- compare, assess, converge -----------------------------------------------------------

    def compare(self, desired: DesiredState, active: list[Replica]) -> tuple[str, list[str]]:
        reasons = []
        matching, wanted = sum(1 for r in active if not r.differences), desired.replicas
        if matching < wanted:
            reasons.append(f"{wanted - matching} replica(s) missing: Git wants {wanted}")
        if matching > wanted:
            reasons.append(f"{matching - wanted} extra replica(s): Git wants {wanted}")
        reasons += [f"{r.name} differs from Git: {'; '.join(r.differences)}" for r in active if r.differences]
        return ("OutOfSync" if reasons else "Synced"), reasons

    def assess(self, desired: DesiredState, active: list[Replica]) -> str:
        ready = [r for r in active if r.ready]
        # Only replicas running Git's config count: during a rollout the old ones stay ready.
        ready_as_git_says = [r for r in ready if not r.differences]
        if self.crash_failures >= CRASH_LOOP_FAILURES and len(ready_as_git_says) < desired.replicas:
            return "Degraded"
        if len(ready) >= desired.replicas and len(ready) == len(active):
            return "Healthy"
        starting = [r for r in active if not r.ready and not r.failed and not r.ever_ready]
        if starting or (self.state["heal"] and len(ready) < desired.replicas):
            return "Progressing"
        return "Degraded"

    def converge(self, desired: DesiredState, active: list[Replica], now: float) -> list[str]:
        actions = [self.stop(r, reason=r.failed) for r in active if r.failed]
        healthy = [r for r in active if not r.failed]
        matching = [r for r in healthy if not r.differences]
        missing = desired.replicas - len(matching)
        if missing > 0 and now >= self.next_start_at:
            actions += [self.start(desired, reason="missing") for _ in range(missing)]
        if missing < 0:
            # Not-ready ones first, then the newest: the replicas that serve least.
            surplus = sorted(matching, key=lambda r: (r.ready, -r.started_monotonic))[:-missing]
            actions += [self.stop(r, reason="extra replica, not in Git") for r in surplus]
        ready_matching = sum(1 for r in matching if r.ready)
        for replica in [r for r in healthy if r.differences]:
            if not replica.ready or ready_matching >= desired.replicas:
                actions.append(self.stop(replica, reason="configuration differs from Git"))
        for replica in self.replicas.values():
            if replica.stopping_since is not None and now - replica.stopping_since > desired.grace_seconds:
                with contextlib.suppress(psutil.NoSuchProcess):
                    replica.process.kill()
                actions.append(f"killed {replica.name} after the {desired.grace_seconds:g}s grace period")
        return actions

    def start(self, desired: DesiredState, *, reason: str) -> str:
        name = f"{DEPLOYMENT}-{desired.template_hash[:5]}-{secrets.token_hex(3)[:5]}"
        port = free_port()
        own = {
            PORT_VARIABLE: str(port),
            layout.ENVIRONMENT_LABEL: self.state["environment_id"],
            layout.REPLICA_LABEL: name,
        }
        popen = start_logged(
            list(desired.argv),
            self.state_dir / layout.REPLICA_LOGS / f"{name}.log",
            cwd=self.state_dir,
            env=_passthrough_environ() | desired.env | own,
        )
        self.replicas[popen.pid] = Replica(
            name=name,
            process=popen,
            port=port,
            started_monotonic=time.monotonic(),
            started_at=iso(time.time()),
        )
        self.event("replica-start", replica=name, pid=popen.pid, port=port, reason=reason)
        return f"started {name} ({reason})"

    def stop(self, replica: Replica, *, reason: str) -> str:
        replica.stopping_since = time.monotonic()
        with contextlib.suppress(psutil.NoSuchProcess):
            replica.process.terminate()
        self.event("replica-stop", replica=replica.name, pid=replica.process.pid, reason=reason)
        return f"stopped {replica.name} ({reason})"

    # -- Prometheus --------------------------------------------------------------------------

    def manage_prometheus(self) -> None:
        """Keep Prometheus running on the repo's config, its file discovery listing every replica."""
        config = self.state.get("prometheus")
        if config is None:
            return
        self._sync_prometheus_config(Path(config["config_source"]))
        self._write_scrape_targets()
        if self.prometheus is not None and self.prometheus.poll() is not None:
            errors = self._prometheus_errors_since(self.prometheus_log_offset)
            self.event(
                "prometheus-exited",
                pid=self.prometheus.pid,
                returncode=self.prometheus.returncode,
                errors=errors,
            )
            if not self.prometheus_ready:
                self.prometheus_failures += 1
                self.prometheus_errors = errors
            self.prometheus, self.prometheus_ready = None, False
        if self.prometheus is None and time.monotonic() - self.prometheus_started > PROMETHEUS_RESTART_DELAY:
            self.prometheus_started = time.monotonic()
            self.prometheus_log_offset = self._prometheus_log_size()
            self.prometheus = start_logged(
                [
                    config["program"],
                    f"--config.file={layout.PROMETHEUS_CONFIG}",
                    f"--storage.tsdb.path={self.state_dir / layout.PROMETHEUS_DATA}",
                    f"--web.listen-address=127.0.0.1:{config['port']}",
                    "--log.level=warn",
                ],
                self.state_dir / layout.PROMETHEUS_LOG,
                cwd=self.state_dir / layout.PROMETHEUS,
                env=_passthrough_environ(),
            )
            self.event("prometheus-start", pid=self.prometheus.pid, url=config["url"])
        if self.prometheus is not None and self.prometheus_ready and self.prometheus_reload is not None:
            self._confirm_reload(config["url"], *self.prometheus_reload)
        if self.prometheus is not None and not self.prometheus_ready:
            self.prometheus_ready = _http_ok(config["url"] + "/-/ready")
            if self.prometheus_ready:
                self.prometheus_failures = 0
                self.event("prometheus-ready", pid=self.prometheus.pid, url=config["url"])

    def _sync_prometheus_config(self, source: Path) -> None:
        """Copy observability/prometheus/ when it changes, and have a running Prometheus reload it.

        The copy also holds what the reconciler writes (the scrape targets), so it is not replaced
        whole: a file gone from the source since the last copy is removed from it.
        """
        fingerprint = _tree_fingerprint(source)
        if fingerprint == self.prometheus_config_fingerprint:
            return
        copy = self.state_dir / layout.PROMETHEUS
        copied = {Path(path) for path, *_ in self.prometheus_config_fingerprint or ()}
        for gone in copied - {Path(path) for path, *_ in fingerprint}:
            (copy / gone.relative_to(source)).unlink(missing_ok=True)
        shutil.copytree(source, copy, dirs_exist_ok=True)
        if self.prometheus_config_fingerprint is not None and self.prometheus is not None:
            self.prometheus_reload = (time.monotonic(), self._prometheus_log_size())
            self.prometheus.send_signal(signal.SIGHUP)
        self.prometheus_config_fingerprint = fingerprint

    def _prometheus_log_size(self) -> int:
        """Where Prometheus' next log line starts: what follows is its latest start's or reload's."""
        log = self.state_dir / layout.PROMETHEUS_LOG
        return log.stat().st_size if log.exists() else 0

    def _prometheus_errors_since(self, offset: int) -> list[str]:
        """What the error lines Prometheus logged after `offset` say, first first, at most three."""
        try:
            with open(self.state_dir / layout.PROMETHEUS_LOG, "rb") as handle:
                handle.seek(offset)
                lines = handle.read().decode(errors="replace").splitlines()
        except OSError:
            return []
        causes = []
        for line in filter(PROMETHEUS_ERROR_LINE.search, lines):
            found = PROMETHEUS_CAUSE.search(line) or PROMETHEUS_MESSAGE.search(line)
            causes.append(found[1].replace('\\"', '"') if found else line)
        return list(dict.fromkeys(causes))[:3]

    def _confirm_reload(self, url: str, sent: float, log_offset: int) -> None:
        """Whether Prometheus took the config it was sent a SIGHUP for at `sent` (it reloads in the
        background); one it rejects leaves the one before in force, and must not read as applied."""
        if time.monotonic() - sent < RELOAD_SETTLE_SECONDS:
            return
        try:
            with urllib.request.urlopen(f"{url}/api/v1/status/runtimeinfo", timeout=2) as response:
                took = json.load(response)["data"]["reloadConfigSuccess"]
        except (OSError, ValueError, KeyError):
            if time.monotonic() - sent > RELOAD_GIVE_UP_SECONDS:
                self.prometheus_reload = None
            return
        self.prometheus_reload = None
        if took:
            self.prometheus_rejected = []
            self.event("prometheus-config-reloaded")
        else:
            errors = self._prometheus_errors_since(log_offset)
            self.prometheus_rejected = errors or ["rejected; see prometheus.log"]
            self.event("prometheus-config-rejected", errors=self.prometheus_rejected)

    def _write_scrape_targets(self) -> None:
        targets = sorted(
            (r.name, r.port) for r in self.replicas.values() if r.stopping_since is None and r.port
        )
        if targets == self.targets_written:
            return
        write_json_atomic(
            self.state_dir / layout.PROMETHEUS / "targets" / "ml-inference.json",
            [
                {"targets": [f"127.0.0.1:{port}"], "labels": {"pod": name, "environment": self.state["name"]}}
                for name, port in targets
            ],
        )
        self.targets_written = targets

    # -- records -----------------------------------------------------------------------------

    def report(self, sync: str, health: str, reasons: list[str], actions: list[str]) -> None:
        replicas = sorted(self.replicas.values(), key=lambda r: r.started_monotonic)
        status = {
            "environment": self.state["name"],
            "environment_id": self.state["environment_id"],
            "observed_at": iso(time.time()),
            "reconciler_pid": os.getpid(),
            "heal": self.state["heal"],
            "revision": self.desired.revision if self.desired else None,
            "sync": sync,
            "health": health,
            "reasons": reasons,
            "crash_loop": {"failures": self.crash_failures, "last_exit": self.last_crash}
            if self.crash_failures >= CRASH_LOOP_FAILURES
            else None,
            "desired": {"replicas": self.desired.replicas, "template_hash": self.desired.template_hash}
            if self.desired
            else None,
            "endpoint": self.state["endpoint"],
            "replicas": [r.view() for r in replicas],
            "prometheus": {
                "url": self.state["prometheus"]["url"],
                "pid": self.prometheus.pid if self.prometheus else None,
                "ready": self.prometheus_ready,
                "config_rejected": self.prometheus_rejected or None,
                "crash_loop": {"failures": self.prometheus_failures, "errors": self.prometheus_errors}
                if self.prometheus_failures >= PROMETHEUS_CRASH_LOOP
                else None,
            }
            if self.state.get("prometheus")
            else None,
        }
        write_json_atomic(self.state_dir / layout.STATUS, status)
        observation = {
            "t": status["observed_at"],
            "sync": sync,
            "health": health,
            "reasons": reasons,
            "replicas": [
                {"name": r.name, "pid": r.process.pid, "ready": r.ready, "git_config": not r.differences}
                for r in replicas
                if r.stopping_since is None
            ],
            "actions": actions,
        }
        _append_jsonl(self.state_dir / layout.HISTORY, observation)
        view = (sync, health, tuple(reasons))
        if view != self.last_view:
            self.event("status", sync=sync, health=health, reasons=reasons)
            self.last_view = view

    def event(self, kind: str, **fields: object) -> None:
        _append_jsonl(self.state_dir / layout.EVENTS, {"t": iso(time.time()), "event": kind, **fields})

    # -- lifecycle ---------------------------------------------------------------------------

    def _request_stop(self, *_: object) -> None:
        self.stopping = True

    def shutdown(self) -> None:
        """Drain every replica (SIGTERM, then SIGKILL after the grace bound) and Prometheus."""
        self.event("reconciler-stopping")
        self.observe()  # replicas started by hand since the last tick: down() must leave none
        processes = [r.process for r in self.replicas.values()]
        if self.prometheus is not None:
            processes.append(self.prometheus)
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.terminate()
        grace = min(SHUTDOWN_GRACE, self.desired.grace_seconds if self.desired else SHUTDOWN_GRACE)
        _, alive = psutil.wait_procs(processes, timeout=grace)
        for process in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        psutil.wait_procs(alive, timeout=2)
        status_path = self.state_dir / layout.STATUS
        write_json_atomic(
            status_path,
            (read_json(status_path) or {})
            | {
                "observed_at": iso(time.time()),
                "sync": "Unknown",
                "health": "Missing",
                "replicas": [],
                "reasons": ["environment stopped"],
            },
        )
        self.event("reconciler-stopped", killed_after_grace=[p.pid for p in alive])
        self.probes.shutdown(wait=False)


def labelled_processes(environment_id: str) -> dict[int, tuple[psutil.Process, dict[str, str]]]:
    """Every live process labelled with `environment_id`, whoever started it, with its environment."""
    return {
        process.pid: (process, process.info["environ"])
        for process in psutil.process_iter(["ppid", "environ", "status", "create_time"])
        if (process.info["environ"] or {}).get(layout.ENVIRONMENT_LABEL) == environment_id
        and process.info["status"] != psutil.STATUS_ZOMBIE
    }


def replica_processes(environment_id: str) -> dict[int, tuple[psutil.Process, dict[str, str]]]:
    """The labelled processes less a replica's workers, which inherit its label."""
    labelled = labelled_processes(environment_id)
    return {pid: found for pid, found in labelled.items() if found[0].info["ppid"] not in labelled}


def start_logged(argv: list[str], log: Path, **options: Any) -> psutil.Popen:
    """Start `argv` without stdin, its output appended to `log`."""
    with open(log, "ab") as output:
        return psutil.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, **options
        )


def _passthrough_environ() -> dict[str, str]:
    return {key: os.environ[key] for key in layout.PASSTHROUGH_VARIABLES if key in os.environ}


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT) as response:
            return 200 <= response.status < 400
    except (OSError, ValueError):
        return False


def _tree_fingerprint(root: Path) -> tuple:
    return tuple(
        sorted((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*") if p.is_file())
    )


def _append_jsonl(path: Path, record: dict) -> None:
    """Append `record`, masked: a process's environment shows in it, and these logs are kept and shared."""
    with open(path, "a") as handle:
        handle.write(json.dumps(mask(record), sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.targets.local.reconciler",
        description="Run the local target's GitOps controller for one environment (started by the target).",
    )
    parser.add_argument("state_dir", type=Path, help="the environment's folder under .pipeline/local/")
    Reconciler(parser.parse_args(argv).state_dir).run()


if __name__ == "__main__":
    main()
