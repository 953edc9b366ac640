"""The Kubernetes API through the kubernetes client, for one kubeconfig context."""

from __future__ import annotations

from typing import Any

ARGOCD_GROUP, ARGOCD_API_VERSION = "argoproj.io", "v1alpha1"


def custom_objects(context: str) -> Any:
    """A CustomObjectsApi bound to `context`; a clear error when the client is not installed."""
    try:
        from kubernetes import client, config
    except ImportError:
        raise SystemExit(
            "the kubernetes Python client is missing: `pip install kubernetes` (deploy's requirements)"
        ) from None
    return client.CustomObjectsApi(config.new_client_from_config(context=context))
