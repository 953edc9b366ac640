"""The Kubernetes API through the kubernetes client, for one kubeconfig context."""

from __future__ import annotations

from typing import Any

from pipeline.gitops.appofapps import ARGOCD_NAMESPACE

#: Argo CD's Applications, as the CustomObjectsApi addresses them: group, version, namespace, plural.
APPLICATIONS = ("argoproj.io", "v1alpha1", ARGOCD_NAMESPACE, "applications")


def _api(context: str, name: str) -> Any:
    """`kubernetes.client.<name>` bound to `context`; a clear error when the client is not installed."""
    try:
        import kubernetes
    except ImportError:
        raise SystemExit(
            "the kubernetes Python client is missing: `pip install kubernetes` (deploy's requirements)"
        ) from None
    return getattr(kubernetes.client, name)(kubernetes.config.new_client_from_config(context=context))


def custom_objects(context: str) -> Any:
    """A CustomObjectsApi (Argo CD's Applications) bound to `context`."""
    return _api(context, "CustomObjectsApi")


def core_v1(context: str) -> Any:
    """A CoreV1Api (pods) bound to `context`."""
    return _api(context, "CoreV1Api")


def read_application(context: str, name: str) -> dict[str, Any]:
    """Application `name` in Argo CD's namespace."""
    return custom_objects(context).get_namespaced_custom_object(*APPLICATIONS, name)


def application_events(context: str, name: str) -> Any:
    """A watch stream factory for Application `name`: given a server-side timeout, its events."""
    api = custom_objects(context)

    def events(timeout: int) -> Any:
        from kubernetes import watch

        return watch.Watch().stream(
            api.list_namespaced_custom_object,
            *APPLICATIONS,
            field_selector=f"metadata.name={name}",
            timeout_seconds=timeout,
        )

    return events
