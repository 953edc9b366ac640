"""Wait for an Argo CD Application to be Synced and Healthy by watching it (no polling sleeps)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from pipeline.gitops.appofapps import ARGOCD_NAMESPACE
from pipeline.release import ControllerStatus
from pipeline.targets.kube.api import ARGOCD_API_VERSION, ARGOCD_GROUP, custom_objects
from pipeline.targets.kube.environment import application_status

#: Given a server-side timeout in seconds, the watch events of one Application until it expires.
EventStream = Callable[[int], Iterable[dict[str, Any]]]


def _converged(application: dict[str, Any], revision: str | None) -> bool:
    synced_revision = application.get("status", {}).get("sync", {}).get("revision")
    return application_status(application).converged and (revision is None or synced_revision == revision)


def watch_until_converged(
    events: EventStream, name: str, *, revision: str | None, timeout_seconds: int
) -> ControllerStatus:
    """Follow `events` (re-opened when the server ends a watch) until converged, or fail naming the state."""
    deadline = time.monotonic() + timeout_seconds
    last: dict[str, Any] = {}
    shown = None
    while (remaining := deadline - time.monotonic()) > 0:
        for event in events(max(1, int(remaining))):
            last = event["object"]
            status = application_status(last)
            if status != shown:
                print(f"  {name}: {status.sync}, {status.health}", flush=True)
                shown = status
            if _converged(last, revision):
                return status
    conditions = "; ".join(c.get("message", "") for c in last.get("status", {}).get("conditions", []))
    raise TimeoutError(
        f"Application {name} is not Synced and Healthy at {revision or 'the target revision'} after "
        f"{timeout_seconds}s (last: {application_status(last)}{'; ' + conditions if conditions else ''})"
    )


def wait_for_application(
    context: str, name: str, *, revision: str | None, timeout_seconds: int
) -> ControllerStatus:
    """Watch Application `name` through the Kubernetes API (kubernetes client watch)."""
    api = custom_objects(context)
    from kubernetes import watch

    def events(timeout: int) -> Iterable[dict[str, Any]]:
        return watch.Watch().stream(
            api.list_namespaced_custom_object,
            ARGOCD_GROUP,
            ARGOCD_API_VERSION,
            ARGOCD_NAMESPACE,
            "applications",
            field_selector=f"metadata.name={name}",
            timeout_seconds=timeout,
        )

    try:
        return watch_until_converged(events, name, revision=revision, timeout_seconds=timeout_seconds)
    except TimeoutError as error:
        inspect = f"kubectl --context {context} -n {ARGOCD_NAMESPACE} get application {name} -o yaml"
        raise TimeoutError(f"{error}; inspect it with `{inspect}`") from None
