"""Recognise secrets and mask them, for everything the pipeline writes or shows.

One rule set, used wherever a value leaves the pipeline: the cluster-state a kube environment saves,
the process list the local target records, and the report (a second line of defence, since artifacts
should never hold a secret). Values under secret-sounding keys are masked, and so is any text that
looks like a credential wherever it appears. Over-masking a harmless value is acceptable; leaking a
secret is not. Standard library only, so any layer can import it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

MASK = "***"

#: Names whose values are credentials (case-insensitive).
SECRET_NAME = re.compile(
    r"(pass(word|wd|phrase)?|secret|token|api[-_]?key|private[-_]?key|client[-_]key|credential|auth|"
    r"certificate-authority-data|client-certificate-data|cookie|session)",
    re.IGNORECASE,
)
#: Keys that name or point at a secret rather than hold one (`secretName`, `tokenPath`, `authType`).
REFERENCE_KEY = re.compile(r"(name|ref|refs|path|file|mountpath|type|kind)$", re.IGNORECASE)

#: `NAME=value` / `"name": "value"` where the name says credential: the name stays, the value goes.
_ASSIGNMENT = re.compile(
    r"""(?P<name>\b[\w-]*(passw(or)?d|passphrase|secret|token|api[-_]?key|private[-_]?key|client-key-data"""
    r"""|credentials?)[\w-]*["']?)(?P<separator>\s*[=:]\s*)("[^"]*"|'[^']*'|\S+)""",
    re.IGNORECASE,
)
#: Text that is a credential whatever surrounds it.
_CREDENTIAL = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)"
    # GitHub tokens: classic, fine-grained, app installation, OAuth, refresh.
    r"|\b(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"
    r"|\bAKIA[0-9A-Z]{16}\b"
    r"|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"  # JWT
    r"|\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}"
    r"|(?<=://)[^/\s:@]+:[^/\s@]+(?=@)",  # URL credentials: scheme://user:password@host
    re.IGNORECASE,
)


def is_secret_name(name: str) -> bool:
    """Whether a variable named `name` would hold a credential (env vars: drop or mask them)."""
    return bool(SECRET_NAME.search(name))


def is_secret_key(key: object) -> bool:
    """Whether a mapping key says its value is a credential, and is not a reference to one."""
    return isinstance(key, str) and is_secret_name(key) and not REFERENCE_KEY.search(key)


def mask_text(text: str) -> str:
    """`text` with anything that looks like a credential replaced by MASK."""
    text = _ASSIGNMENT.sub(lambda match: f"{match['name']}{match['separator']}{MASK}", text)
    return _CREDENTIAL.sub(MASK, text)


def mask(value: Any, rewrite: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> Any:
    """A copy of JSON-like `value` with values under secret keys and credential-looking text masked.

    `rewrite` sees each mapping first and returns what to mask instead: the hook for rules a caller
    knows and this module does not (a Kubernetes Secret's data, an env var entry).
    """
    if isinstance(value, (list, tuple)):
        return [mask(item, rewrite) for item in value]
    if isinstance(value, str):
        return mask_text(value)
    if not isinstance(value, Mapping):
        return value
    mapping = rewrite(dict(value)) if rewrite else value
    return {key: MASK if _holds_secret(key, item) else mask(item, rewrite) for key, item in mapping.items()}


def _holds_secret(key: object, value: Any) -> bool:
    is_scalar = isinstance(value, (str, bytes, int, float))
    return is_scalar and value not in ("", b"") and is_secret_key(key)
