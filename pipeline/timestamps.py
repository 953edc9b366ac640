"""Time stamps as every record of the pipeline writes them (ISO 8601, UTC, a trailing Z), and read back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def iso(when: datetime | float, timespec: str = "milliseconds") -> str:
    """`when` (an aware datetime or a Unix time) as `2026-01-01T10:00:00.000Z`."""
    if not isinstance(when, datetime):
        when = datetime.fromtimestamp(when, UTC)
    return when.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def utc_now(timespec: str = "milliseconds") -> str:
    """Now, as `iso` writes it."""
    return iso(datetime.now(UTC), timespec)


def moment(value: Any) -> datetime | None:
    """An ISO 8601 time (with Z or an offset; naive ones are taken as UTC) in UTC, or None.

    None too for a time UTC cannot hold (year 1 at +01:00 falls before the first moment a datetime has).
    """
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


def elapsed(start: Any, end: Any) -> float | None:
    """Seconds from one ISO time to another; None unless both are times."""
    begin, finish = moment(start), moment(end)
    if begin is None or finish is None:
        return None
    return round((finish - begin).total_seconds(), 3)
