"""Calendar feeds (RFC 5545, built with ``icalendar``): one course's term, and a user's courses.

A feed has one event per session of the course: planned (from the timetable, ``service.timetable``),
running and past. A planned session and the session it became share one UID, so a calendar that
refreshes sees the same event change rather than a second one appear. Times are UTC (``...Z``),
which every calendar shows in its user's zone. ``SUMMARY`` holds the topic (or the course, when the
session has none); planned sessions that were skipped or not held are ``STATUS:CANCELLED``.

Calendar apps cannot send an ``Authorization`` header, so a user has a secret feed token in the URL
(``FeedTokens``): only its SHA-256 is stored, it is shown once when made, and making a new one
revokes the old.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from icalendar import Calendar, Event
from sqlalchemy import delete, or_, select

from attendance_live.auth.tokens import Identity
from attendance_live.db.engine import Database
from attendance_live.db.models import AttendanceSession, Course, Enrollment, User
from attendance_live.db.term_models import CalendarToken
from attendance_live.service.access import managed_by
from attendance_live.service.attendance import AttendanceService
from attendance_live.service.errors import NotFound
from attendance_live.timeutil import Clock

__all__ = [
    "PRODID",
    "UID_DOMAIN",
    "CalendarEntry",
    "CalendarFeeds",
    "FeedTokens",
    "PlannedSource",
    "build_calendar",
    "session_entries",
    "uid_of",
]

PRODID = "-//attendance-live//term calendar//EN"
UID_DOMAIN = "attendance-live"


def uid_of(session_id: str) -> str:
    return f"{session_id}@{UID_DOMAIN}"


@dataclass(frozen=True, slots=True)
class CalendarEntry:
    """One event of a feed."""

    uid: str
    course_code: str
    course_title: str
    topic: str | None
    start: datetime
    end: datetime
    # planned | active | ended | skipped | missed
    state: str
    description: str = ""
    location: str | None = None


_STATUS = {
    "planned": "TENTATIVE",
    "active": "CONFIRMED",
    "ended": "CONFIRMED",
    "skipped": "CANCELLED",
    "missed": "CANCELLED",
}
_STATE_WORDS = {
    "planned": "Planned",
    "active": "Running now",
    "ended": "Held",
    "skipped": "Skipped",
    "missed": "Not held",
}


def build_calendar(name: str, entries: Sequence[CalendarEntry], now: datetime) -> bytes:
    """The feed: a VCALENDAR with one VEVENT per entry, in start order."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", name)
    for entry in sorted(entries, key=lambda e: (e.start, e.uid)):
        event = Event()
        event.add("uid", entry.uid)
        event.add("dtstamp", now)
        event.add("dtstart", entry.start)
        event.add("dtend", max(entry.end, entry.start + timedelta(minutes=1)))
        topic = entry.topic or entry.course_title
        event.add("summary", f"{entry.course_code}: {topic}")
        words = [_STATE_WORDS[entry.state]]
        if entry.description:
            words.append(entry.description)
        event.add("description", ". ".join(words))
        event.add("status", _STATUS[entry.state])
        event.add("categories", [entry.course_code])
        if entry.location:
            event.add("location", entry.location)
        calendar.add_component(event)
    ical: bytes = calendar.to_ical()
    return ical


def session_entries(rows: Sequence[tuple[AttendanceSession, Course]]) -> list[CalendarEntry]:
    """Entries of sessions that were started (running or past)."""
    entries = []
    for session, course in rows:
        if session.status == "ended" and session.ended_at is not None:
            end = session.ended_at
            description = (
                f"Present {(session.final_present or 0) + (session.final_late or 0)}, "
                f"absent {session.final_absent or 0} of {session.final_total or 0}"
            )
        else:
            end, description = session.expires_at, ""
        entries.append(
            CalendarEntry(
                uid=uid_of(session.id),
                course_code=course.code,
                course_title=course.title,
                topic=session.topic,
                start=session.started_at,
                end=end,
                state=session.status,
                description=description,
            )
        )
    return entries


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class FeedTokens:
    """Users' secret calendar feed tokens: make (replacing the old), find the user, revoke."""

    def __init__(self, database: Database, clock: Clock) -> None:
        self.database = database
        self.clock = clock

    async def reset(self, service: AttendanceService, actor: Identity) -> str:
        """A new token for ``actor`` (the old one stops working); shown only now."""
        token = secrets.token_urlsafe(32)
        now = self.clock()
        async with self.database.write() as db:
            await service.users.ensure(db, actor)
            await db.execute(delete(CalendarToken).where(CalendarToken.user_id == actor.user_id))
            db.add(CalendarToken(user_id=actor.user_id, token_hash=_hash(token), created_at=now))
        return token

    async def revoke(self, actor: Identity) -> bool:
        async with self.database.write() as db:
            result = await db.execute(delete(CalendarToken).where(CalendarToken.user_id == actor.user_id))
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def created_at(self, actor: Identity) -> datetime | None:
        async with self.database.read() as db:
            row = await db.get(CalendarToken, actor.user_id)
            return row.created_at if row is not None else None

    async def identity(self, token: str) -> Identity:
        """The user a feed token belongs to; NotFound (the same for every bad token) otherwise."""
        async with self.database.read() as db:
            row = (
                await db.execute(
                    select(User)
                    .join(CalendarToken, CalendarToken.user_id == User.id)
                    .where(CalendarToken.token_hash == _hash(token))
                )
            ).scalar_one_or_none()
        if row is None:
            raise NotFound(
                "No calendar feed at this address (the link was reset or revoked); "
                "copy the new link from the dashboard"
            )
        return Identity(user_id=row.id, name=row.name, email=row.email, role=row.role)

    async def course_ids(self, actor: Identity) -> list[str]:
        """The courses of a user's own feed: those it teaches or is approved in."""
        async with self.database.read() as db:
            approved = select(Enrollment.course_id).where(
                Enrollment.user_id == actor.user_id, Enrollment.status == "approved"
            )
            rows = await db.execute(
                select(Course.id)
                .where(or_(managed_by(actor.user_id), Course.id.in_(approved)))
                .order_by(Course.id)
            )
            return list(rows.scalars())


PlannedSource = Callable[[Sequence[str]], Awaitable[list[CalendarEntry]]]


class CalendarFeeds:
    """The feeds: a course's (its members) and a user's own (by its feed token)."""

    def __init__(self, service: AttendanceService, tokens: FeedTokens) -> None:
        self.service = service
        self.tokens = tokens
        # The timetable's planned sessions of some courses (service.timetable sets it).
        self.planned: PlannedSource | None = None

    async def course_feed(self, actor: Identity, course_id: str) -> bytes:
        async with self.service.database.read() as db:
            access = await self.service.member_access(db, actor, course_id)
        course = access.course
        entries = await self._entries([course_id])
        return build_calendar(f"{course.code} {course.title}", entries, self.service.clock())

    async def user_feed(self, token: str) -> bytes:
        actor = await self.tokens.identity(token)
        entries = await self._entries(await self.tokens.course_ids(actor))
        return build_calendar(f"Attendance: {actor.name}", entries, self.service.clock())

    async def _entries(self, course_ids: Sequence[str]) -> list[CalendarEntry]:
        if not course_ids:
            return []
        async with self.service.database.read() as db:
            rows = await db.execute(
                select(AttendanceSession, Course)
                .join(Course, Course.id == AttendanceSession.course_id)
                .where(AttendanceSession.course_id.in_(course_ids))
            )
            entries = session_entries([(s, c) for s, c in rows.all()])
        if self.planned is not None:
            entries.extend(await self.planned(course_ids))
        return entries
