"""A timetable's slots and plans as data: their views, a plan's session settings, and the weekly
expansion of a slot into occurrences.

``occurrences`` keeps the wall-clock start in the slot's time zone on every date, so a
daylight-saving change keeps 10:00 at 10:00 (and moves its UTC instant by an hour). The scheduler
and the rules of creating, skipping and starting plans are ``service.timetable``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from pydantic import BaseModel

from attendance_live.networks import MAX_NETWORKS, parse_networks
from attendance_live.service.errors import InvalidInput
from attendance_live.vocabulary import CheckInMode

__all__ = [
    "WEEKDAYS",
    "PlannedView",
    "SessionSettings",
    "SlotView",
    "Weekday",
    "check_settings",
    "occurrences",
    "settings_of",
    "zone",
]


Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


WEEKDAYS: Final[tuple[Weekday, ...]] = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)


class SessionSettings(BaseModel):
    """The started session's settings (``POST /api/courses/{id}/sessions``'s optional fields)."""

    late_after_minutes: int | None = None
    check_in_mode: CheckInMode = "open"
    code_period_seconds: int = 15
    allowed_networks: list[str] | None = None


class SlotView(BaseModel):
    id: str
    course_id: str
    weekday: Weekday
    start_time: str
    duration_minutes: int
    timezone: str
    first_date: str
    last_date: str
    exception_dates: list[str]
    topic: str | None
    location: str | None
    settings: SessionSettings
    planned: int  # occurrences created


class PlannedView(BaseModel):
    id: str
    course_id: str
    slot_id: str | None
    starts_at: str
    ends_at: str
    topic: str | None
    location: str | None
    status: Literal["planned", "starting", "started", "skipped", "missed"]
    # When started: the session (its id is the plan's) and whether it is active or ended.
    session_id: str | None
    session_status: str | None
    settings: SessionSettings


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; InvalidInput naming it otherwise."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"timezone {name[:64]!r} is not an IANA time zone; use a name such as Europe/Berlin or UTC"
        ) from None


def occurrences(
    weekday: int,
    start: time,
    duration: timedelta,
    tz: ZoneInfo,
    first: date,
    last: date,
    exceptions: Sequence[date] = (),
) -> list[tuple[datetime, datetime]]:
    """The (start, end) instants in UTC of a weekly slot: the wall-clock ``start`` in ``tz`` on every
    ``weekday`` from ``first`` to ``last`` but the ``exceptions``."""
    day = first + timedelta(days=(weekday - first.weekday()) % 7)
    skipped = set(exceptions)
    found = []
    while day <= last:
        if day not in skipped:
            begins = datetime.combine(day, start, tzinfo=tz).astimezone(UTC)
            found.append((begins, begins + duration))
        day += timedelta(days=7)
    return found


def check_settings(settings: SessionSettings, duration_minutes: int) -> None:
    if not 5 <= settings.code_period_seconds <= 300:
        raise InvalidInput(
            f"code_period_seconds ({settings.code_period_seconds}) is out of range; use 5 to 300 seconds"
        )
    if settings.late_after_minutes is not None and not 0 <= settings.late_after_minutes <= duration_minutes:
        raise InvalidInput(
            f"late_after_minutes ({settings.late_after_minutes}) is not within the session's "
            f"{duration_minutes} minutes; choose a late threshold within the session"
        )
    if settings.allowed_networks is not None:
        if not settings.allowed_networks or len(settings.allowed_networks) > MAX_NETWORKS:
            raise InvalidInput(f"allowed_networks lists 1 to {MAX_NETWORKS} networks, or is null (anywhere)")
        try:
            parse_networks(settings.allowed_networks, "allowed_networks entry")
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None


def settings_of(raw: str) -> SessionSettings:
    return SessionSettings.model_validate(orjson.loads(raw))
