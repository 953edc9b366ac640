"""The license policy over the build's CycloneDX SBOM: every license known and allowed.

A component declares licenses as SPDX ids, free-text names or SPDX expressions. Free-text names
are read through the policy's classifier table; several declarations must all be allowed; in an
expression `OR` needs one side allowed and `AND` both. A package the policy reviewed by hand (keyed
by name==version) uses the reviewed license instead of its metadata.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pipeline.contracts import Finding, ScanPart
from pipeline.scan import Check

_TOKEN = re.compile(r"\(|\)|[^\s()]+")


def disallowed(expression: str, allowed: set[str]) -> set[str]:
    """The licenses that keep `expression` from being allowed (empty: allowed)."""
    tokens = _TOKEN.findall(expression)[::-1]  # a stack: the next token is the last

    def atom() -> set[str]:
        token = tokens.pop() if tokens else None
        if token == "(":
            blocking = any_of()
            del tokens[-1:]  # the closing parenthesis
            return blocking
        license_id = str(token)
        if tokens and tokens[-1] == "WITH":  # an exception narrows, never widens
            del tokens[-2:]
        return set() if license_id in allowed else {license_id}

    def all_of() -> set[str]:
        blocking = atom()
        while tokens and tokens[-1] == "AND":
            tokens.pop()
            blocking |= atom()
        return blocking

    def any_of() -> set[str]:
        blocking = all_of()
        while tokens and tokens[-1] == "OR":
            tokens.pop()
            alternative = all_of()
            blocking = set() if not blocking or not alternative else blocking | alternative
        return blocking

    return any_of()


def declared(component: dict[str, Any], classifiers: dict[str, str]) -> tuple[list[str], list[str]]:
    """(SPDX expressions, names no table knows) a component declares."""
    expressions, unknown = [], []
    for entry in component.get("licenses") or []:
        if "expression" in entry:
            expressions.append(entry["expression"])
            continue
        license_ = entry.get("license") or {}
        if license_.get("id"):
            expressions.append(license_["id"])
        elif license_.get("name") in classifiers:
            expressions.append(classifiers[license_["name"]])
        else:
            unknown.append(str(license_.get("name") or license_))
    return expressions, unknown


def check_sbom(sbom_file: Path | None, policy: dict[str, Any]) -> ScanPart:
    check = Check("licenses", "License policy (SBOM)", policy["fail_at"])
    if sbom_file is None or not sbom_file.is_file():
        return check.skipped("the build wrote no SBOM (it makes one only with an image)")
    try:
        components = json.loads(sbom_file.read_text())["components"]
    except (OSError, ValueError, KeyError) as error:
        return check.judged([Finding("sbom-unreadable", "critical", f"{sbom_file.name}: {error}")])
    allowed = set(policy["allowed"])
    reviewed = policy.get("reviewed", {})
    findings = []
    for component in components:
        package = f"{component['name']}=={component.get('version', '')}"
        if package not in reviewed:
            expressions, unknown = declared(component, policy.get("classifiers", {}))
        else:
            expressions, unknown = [reviewed[package]["license"]], []
        if not expressions and not unknown:
            findings.append(
                Finding("license-unknown", policy["unknown_severity"], "declares no license", package)
            )
        for name in unknown:
            message = f"declares license {name!r}, which is no SPDX id this policy knows"
            findings.append(Finding("license-unknown", policy["unknown_severity"], message, package))
        blocking = set().union(*(disallowed(expression, allowed) for expression in expressions))
        if blocking:
            declaration = " AND ".join(expressions)
            message = f"license {', '.join(sorted(blocking))} is not in the allowed list ({declaration})"
            findings.append(Finding("license-disallowed", policy["disallowed_severity"], message, package))
    return check.judged(findings)
