"""Wait for an Argo CD Application to be Synced and Healthy by watching it (no polling sleeps).

The wait fails at once on states that will not fix themselves, instead of running out its time:
a ComparisonError (Argo CD cannot read or render Git), pods that cannot pull their image or keep
crashing (`stuck`), and Degraded for longer than DEGRADED_SECONDS. Every failure names the
Application that blocks, with its conditions: the root's when the child never appeared.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from pipeline.gitops.appofapps import ARGOCD_NAMESPACE, ROOT_APPLICATION
from pipeline.release import ControllerStatus
from pipeline.targets.kube.api import application_events, core_v1, read_application
from pipeline.targets.kube.environment import application_status

#: Given a server-side timeout in seconds, the watch events of one Application until it expires.
EventStream = Callable[[int], Iterable[dict[str, Any]]]
#: Conditions that mean Argo CD cannot read or render Git: waiting will not change them.
FATAL_CONDITIONS = ("ComparisonError", "InvalidSpecError")
#: Pod waiting reasons that will not fix themselves within a wait.
STUCK_REASONS = (
    "ImagePullBackOff",
    "ErrImagePull",
    "ErrImageNeverPull",
    "InvalidImageName",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
)
#: Degraded this long is a failure (a rollout past its progress deadline, a crashing pod).
DEGRADED_SECONDS = 120
#: A watch is re-opened at least this often, so `stuck` is asked at least this often.
WATCH_CHUNK_SECONDS = 15


class ApplicationBlocked(TimeoutError):
    """The Application will not converge: the message names it, its state and its conditions."""


def conditions_text(application: dict[str, Any]) -> str:
    conditions = application.get("status", {}).get("conditions", [])
    return "; ".join(f"{c.get('type', 'Condition')}: {c.get('message', '')}" for c in conditions)


def watch_until_converged(
    events: EventStream,
    name: str,
    *,
    revision: str,
    timeout_seconds: int,
    stuck: Callable[[], str | None] | None = None,
    blocker: Callable[[], str] | None = None,
) -> ControllerStatus:
    """Follow `events` (re-opened when the server ends a watch) until converged, or fail naming the state.

    `stuck` names a state that will not fix itself (pods), or None; `blocker` describes what else
    blocks this Application (the root's conditions), for the failure message.
    """
    deadline = time.monotonic() + timeout_seconds
    last: dict[str, Any] = {}
    shown = None
    degraded_since: float | None = None

    def fail(why: str) -> ApplicationBlocked:
        conditions = conditions_text(last)
        extra = blocker() if blocker is not None and not last else ""
        return ApplicationBlocked(
            f"Application {name} is not Synced and Healthy at {revision}: {why} "
            f"(last: {application_status(last)}{'; ' + conditions if conditions else ''})"
            + (f"; blocked by {extra}" if extra else "")
        )

    while (remaining := deadline - time.monotonic()) > 0:
        opened = time.monotonic()
        for event in events(max(1, min(WATCH_CHUNK_SECONDS, int(remaining)))):
            last = event["object"]
            status = application_status(last)
            if status != shown:
                print(f"  {name}: {status.sync}, {status.health}", flush=True)
                shown = status
            if status.converged and last.get("status", {}).get("sync", {}).get("revision") == revision:
                return status
            fatal = [
                c for c in last.get("status", {}).get("conditions", []) if c.get("type") in FATAL_CONDITIONS
            ]
            if fatal:
                raise fail(f"{fatal[0]['type']} will not fix itself")
            now = time.monotonic()
            if status.health != "Degraded":
                degraded_since = None
            elif degraded_since is None:
                degraded_since = now
            elif now - degraded_since > DEGRADED_SECONDS:
                raise fail(f"Degraded for {now - degraded_since:.0f}s (bound {DEGRADED_SECONDS}s)")
            if stuck is not None and (reason := stuck()):
                raise fail(reason)
            if time.monotonic() >= deadline:
                break
        if stuck is not None and (reason := stuck()):
            raise fail(reason)
        if time.monotonic() - opened < 1 and deadline - time.monotonic() > 1:
            time.sleep(1)  # the server ended the watch at once: do not spin
    raise fail(f"timed out after {timeout_seconds}s")


def stuck_pods(context: str, namespace: str) -> Callable[[], str | None]:
    """A `stuck` check: the first pod of `namespace` waiting for a reason that will not fix itself."""

    def check() -> str | None:
        try:
            pods = core_v1(context).list_namespaced_pod(namespace).items
        except Exception:  # the namespace may not exist yet; the watch goes on
            return None
        for pod in pods:
            for container in (pod.status and pod.status.container_statuses) or []:
                waiting = container.state and container.state.waiting
                if waiting is not None and waiting.reason in STUCK_REASONS:
                    return f"pod {pod.metadata.name}: {waiting.reason}: {waiting.message or ''}".rstrip(": ")
        return None

    return check


def root_conditions(context: str) -> str:
    """The root Application's state and conditions, for a child that never appeared."""
    try:
        root = read_application(context, ROOT_APPLICATION)
    except Exception as error:
        return f"{ROOT_APPLICATION}: unreadable ({error})"
    conditions = conditions_text(root)
    return f"{ROOT_APPLICATION}: {conditions or 'no conditions'} (root is {application_status(root)})"


def wait_for_application(
    context: str, name: str, *, revision: str, timeout_seconds: int, namespace: str | None = None
) -> ControllerStatus:
    """Watch Application `name` through the Kubernetes API (kubernetes client watch)."""
    try:
        return watch_until_converged(
            application_events(context, name),
            name,
            revision=revision,
            timeout_seconds=timeout_seconds,
            stuck=stuck_pods(context, namespace) if namespace else None,
            blocker=lambda: root_conditions(context),
        )
    except ApplicationBlocked as error:
        inspect = f"kubectl --context {context} -n {ARGOCD_NAMESPACE} get application {name} -o yaml"
        raise ApplicationBlocked(f"{error}; inspect it with `{inspect}`") from None
