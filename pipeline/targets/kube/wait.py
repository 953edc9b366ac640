"""Wait for an Argo CD Application to be Synced and Healthy by watching it (no polling sleeps)."""

from __future__ import annotations

import time
from typing import Any

from pipeline.targets import Status
from pipeline.targets.kube.argocd import ARGOCD_NAMESPACE
from pipeline.targets.kube.environment import ARGOCD_API_VERSION, ARGOCD_GROUP, application_status


def _converged(application: dict[str, Any], revision: str | None) -> bool:
    synced_revision = application.get("status", {}).get("sync", {}).get("revision")
    return application_status(application).converged and (revision is None or synced_revision == revision)


def wait_for_application(context: str, name: str, *, revision: str | None, timeout_seconds: int) -> Status:
    """Watch Application `name` until it has synced `revision` and is healthy, or fail naming its state."""
    from kubernetes import client, config, watch

    api = client.CustomObjectsApi(config.new_client_from_config(context=context))
    deadline = time.monotonic() + timeout_seconds
    last: dict[str, Any] = {}
    shown = None
    while (remaining := int(deadline - time.monotonic())) > 0:
        stream = watch.Watch()
        for event in stream.stream(
            api.list_namespaced_custom_object,
            ARGOCD_GROUP,
            ARGOCD_API_VERSION,
            ARGOCD_NAMESPACE,
            "applications",
            field_selector=f"metadata.name={name}",
            timeout_seconds=remaining,
        ):
            last = event["object"]
            status = application_status(last)
            if status != shown:
                print(f"  {name}: {status.sync}, {status.health}", flush=True)
                shown = status
            if _converged(last, revision):
                stream.stop()
                return status
    conditions = "; ".join(c.get("message", "") for c in last.get("status", {}).get("conditions", []))
    raise TimeoutError(
        f"Application {name} is not Synced and Healthy after {timeout_seconds}s "
        f"(last: {application_status(last)}{'; ' + conditions if conditions else ''}); "
        f"inspect it with `kubectl --context {context} -n {ARGOCD_NAMESPACE} get application {name} -o yaml`"
    )
