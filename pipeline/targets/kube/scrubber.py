"""Remove every secret from what the cluster-state artifact saves.

Applied to every object, event and status before it is written: Secret data, kubeconfig
credentials, tokens, passwords, private keys and bearer strings are replaced by REDACTED, and
last-applied annotations (which can embed any of them) are dropped. Over-redacting a harmless
value is acceptable; leaking one secret is not.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "REDACTED"

#: Keys whose string values are credentials (case-insensitive; `secretName`-style references are not).
SECRET_KEY = re.compile(
    r"(pass(word|wd|phrase)?|secret|token|api[-_]?key|private[-_]?key|client[-_]key|credential|auth|"
    r"certificate-authority-data|client-certificate-data|cookie|session)",
    re.IGNORECASE,
)
REFERENCE_KEY = re.compile(r"(name|ref|refs|path|file|mountpath|type|kind)$", re.IGNORECASE)
#: Values that are secrets whatever their key: PEM keys, JWTs, bearer/basic auth, key=value pairs.
SECRET_VALUE = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)"
    r"|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"
    r"|\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}"
    r"""|["']?\b(password|passwd|token|secret|api[-_]?key|client-key-data|private[-_]?key|credentials?)\b["']?"""
    r"""\s*[=:]\s*("[^"]*"|'[^']*'|[^\s,;}]+)""",
    re.IGNORECASE | re.DOTALL,
)
DROPPED_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)
ENV_VALUE_KEYS = ("value",)


def scrub_text(text: str) -> str:
    return SECRET_VALUE.sub(REDACTED, text)


def _is_secret_key(key: str) -> bool:
    return bool(SECRET_KEY.search(key)) and not REFERENCE_KEY.search(key)


def scrub(value: Any) -> Any:
    """A copy of `value` (objects, lists, kubeconfigs, events) with every secret redacted."""
    if isinstance(value, list):
        return [scrub(item) for item in value]
    if isinstance(value, str):
        return scrub_text(value)
    if not isinstance(value, dict):
        return value
    if value.get("kind") == "Secret":
        return _scrub_secret(value)
    result: dict[str, Any] = {}
    for key, item in value.items():
        if key == "annotations" and isinstance(item, dict):
            item = {k: v for k, v in item.items() if k not in DROPPED_ANNOTATIONS}
        secret_value = isinstance(key, str) and _is_secret_key(key) and isinstance(item, (str, bytes, int))
        if (secret_value and item != "") or (_is_secret_env(value) and key in ENV_VALUE_KEYS):
            result[key] = REDACTED
        else:
            result[key] = scrub(item)
    return result


def _is_secret_env(entry: dict[str, Any]) -> bool:
    """An env var (`{name, value}`) whose name says it holds a credential."""
    name = entry.get("name")
    return isinstance(name, str) and "value" in entry and bool(SECRET_KEY.search(name))


def _scrub_secret(secret: dict[str, Any]) -> dict[str, Any]:
    """A Secret keeps its identity and key names, never its values."""
    kept = {k: scrub(v) for k, v in secret.items() if k not in ("data", "stringData")}
    for field in ("data", "stringData"):
        if isinstance(secret.get(field), dict):
            kept[field] = dict.fromkeys(secret[field], REDACTED)
    return kept
