"""Time stamps as every record of the pipeline writes them: ISO 8601, UTC, a trailing Z."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(moment: datetime | float, timespec: str = "milliseconds") -> str:
    """`moment` (an aware datetime or a Unix time) as `2026-01-01T10:00:00.000Z`."""
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, UTC)
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def utc_now(timespec: str = "milliseconds") -> str:
    """Now, as `iso` writes it."""
    return iso(datetime.now(UTC), timespec)


def parse(value: str) -> datetime:
    """The aware datetime of an ISO 8601 string, `Z` included (Python 3.11 reads it too, kept explicit)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
