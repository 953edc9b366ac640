"""Redact Kubernetes objects before the cluster-state artifact saves them.

Applied to every object, event and status before it is written. The shared rules in pipeline.scrub
mask credentials under secret keys and in text (kubeconfig tokens and keys, bearer strings, PEM
blocks); this module adds what only Kubernetes objects need: a Secret keeps its key names but no
values, an env var (`{name, value}`) named like a credential loses its value, and last-applied
annotations (which can embed any of them) are dropped.
"""

from __future__ import annotations

from typing import Any

from pipeline.scrub import MASK, is_secret_name, mask

DROPPED_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)
SECRET_DATA_FIELDS = ("data", "stringData")


def redact(value: Any) -> Any:
    """A copy of `value` (objects, lists, kubeconfigs, events, text) with every secret masked."""
    return mask(value, _kubernetes_rules)


def _kubernetes_rules(obj: dict[str, Any]) -> dict[str, Any]:
    if obj.get("kind") == "Secret":
        for field in SECRET_DATA_FIELDS:
            if field in obj:
                obj[field] = dict.fromkeys(obj[field], MASK) if isinstance(obj[field], dict) else MASK
    if isinstance(obj.get("annotations"), dict):
        obj["annotations"] = {k: v for k, v in obj["annotations"].items() if k not in DROPPED_ANNOTATIONS}
    name = obj.get("name")
    if isinstance(name, str) and "value" in obj and is_secret_name(name):
        obj["value"] = MASK
    return obj
