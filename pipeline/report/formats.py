"""How figures read in the report: one place for units and rounding, used by templates and charts.

Each function takes whatever an artifact held and returns text; a value of the wrong type reads as a dash.
"""

from __future__ import annotations

import math
from typing import Any

from pipeline.contracts import Drift, SettingValues, Timeline
from pipeline.timestamps import moment

#: An en dash: what a value that is not there reads as.
NO_VALUE = "\u2013"


def _is_figure(value: Any) -> bool:
    """A finite number an artifact holds (a yes/no is not one, though Python counts it as an int)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def number(value: Any, digits: int = 2) -> str:
    """A figure as the artifact holds it, to at most `digits` decimals (no separators: easy to search)."""
    if not _is_figure(value):
        return NO_VALUE
    text = f"{round(value, digits):.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def seconds(value: Any) -> str:
    if not _is_figure(value):
        return NO_VALUE
    if value < 10:  # drifts heal in about a second: keep the hundredths there
        return f"{value:.2f} s"
    if value < 60:
        return f"{value:.1f} s"
    minutes, seconds = divmod(value, 60)
    return f"{int(minutes)} min {seconds:04.1f} s"


def size(value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return NO_VALUE
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def percent(value: Any, digits: int = 2) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return NO_VALUE
    return f"{value * 100:.{digits}f} %"


def change(ratio: float | None) -> str:
    return NO_VALUE if ratio is None else f"{ratio * 100:+.1f} %"


def clock(value: Any) -> str:
    """An ISO 8601 time as HH:MM:SS.mmm UTC (the date is in the overview)."""
    parsed = moment(value)
    if parsed is None:
        return value if isinstance(value, str) and value else NO_VALUE
    return parsed.time().isoformat(timespec="milliseconds")


def short(value: Any, length: int = 12) -> str:
    text = str(value or "")
    prefix, _, rest = text.partition(":")
    if rest and len(prefix) < 10:  # sha256:abcdef...
        return f"{prefix}:{rest[:length]}"
    return text[:length]


#: The moments a drift's live state is read at, in the order the report shows them.
DRIFT_MOMENTS = ("before", "during", "after")


def replica_counts(drift: Drift) -> str:
    """A drift's running replicas (ready ones in brackets) before it, when detected and once healed."""
    if drift.replicas is None:
        return NO_VALUE
    return " → ".join(
        NO_VALUE
        if (running := getattr(drift.replicas, moment)) is None
        else f"{running} ({number(getattr(drift.ready_replicas, moment, None))})"
        for moment in DRIFT_MOMENTS
    )


def setting_values(values: SettingValues) -> str:
    """A setting's values across the replicas at the same moments: `1000 → 10, 1000 → 1000`."""
    return " → ".join(
        NO_VALUE if (seen := getattr(values, moment)) is None else ", ".join(seen) for moment in DRIFT_MOMENTS
    )


def demo_verdict(timeline: Timeline) -> str:
    """The drift demo's outcome in words: what passed, or the first reason it did not."""
    drifts, verification = timeline.drifts, timeline.verification
    not_healed = sum(not drift.passed for drift in drifts)
    if timeline.passed:
        return "every drift detected and healed"
    if not drifts:
        return "no drift was caused"
    if not_healed:
        return f"{not_healed} of {len(drifts)} drifts not healed"
    if verification is None:
        return f"the demo stopped after {len(drifts)} drifts, before its final check of Git's state"
    return "every drift healed, but the final check found the live state differs from Git's"
