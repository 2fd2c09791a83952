"""Time helpers: every timestamp is UTC, truncated to milliseconds.

Truncating when a time is created (not when it is printed) keeps what the
database stores and what clients are told identical.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["Clock", "iso_z", "truncate_ms", "utcnow"]

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The current UTC time, truncated to milliseconds."""
    return truncate_ms(datetime.now(UTC))


def truncate_ms(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond - value.microsecond % 1000)


def iso_z(value: datetime | None) -> str | None:
    """``2024-01-15T10:30:00.000Z``: UTC ISO 8601 with milliseconds and ``Z``."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
