"""Keep secrets out of the report even if a job put one in an artifact by mistake.

The report only reads artifacts, which should never hold a secret; this is the second line of
defence. Values under secret-sounding keys are masked, and so is any text that looks like a token
(GitHub, AWS, bearer headers, `KEY=value` assignments), wherever it appears in what is rendered.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "***"

SECRET_KEY = re.compile(r"(secret|token|passw(or)?d|api[_-]?key|private[_-]?key|credential|auth)", re.I)

_SECRET_TEXT = (
    # GitHub tokens: classic, fine-grained, app installation, OAuth, refresh.
    re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{16,}"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)"),
    # URL credentials: scheme://user:password@host
    re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+(?=@)"),
)
_SECRET_ASSIGNMENT = re.compile(
    r"(?i)\b([A-Z0-9_]*(SECRET|TOKEN|PASSWORD|PASSWD|API_KEY|PRIVATE_KEY|CREDENTIALS?)[A-Z0-9_]*)(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|\S+)"
)


def redact(text: str) -> str:
    """`text` with anything that looks like a secret replaced by ***."""
    text = _SECRET_ASSIGNMENT.sub(lambda match: f"{match[1]}{match[3]}{MASK}", text)
    for pattern in _SECRET_TEXT:
        text = pattern.sub(MASK, text)
    return text


def redact_mapping(values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `values` with values under secret-sounding keys masked, recursively."""
    cleaned: dict[str, Any] = {}
    for key, value in values.items():
        if SECRET_KEY.search(str(key)) and value not in (None, ""):
            cleaned[key] = MASK
        elif isinstance(value, Mapping):
            cleaned[key] = redact_mapping(value)
        else:
            cleaned[key] = value
    return cleaned
