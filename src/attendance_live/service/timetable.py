"""Timetables: recurring slots and one-off plans, and the scheduler that starts them on time.

A slot (weekday, wall-clock start, duration, time zone, first and last date, exception dates) is
expanded when it is created into one ``planned_sessions`` row per occurrence. Each occurrence's
start is the wall-clock time in the slot's zone on that date, so a daylight-saving change keeps
10:00 at 10:00 (and moves its UTC instant by an hour); its end is the start plus the duration.

The scheduler (``Timetable.run_due``, a loop on every node) starts each planned session whose start
has come, through the same ``start_session`` as a teacher's start: the same outbox rows, so the same
``courseSessionStarted`` and ``activeSessionsData`` on every node, with ``started_by`` ``system``. Its
``max_duration_minutes`` runs to the planned end, where the auto-end timer ends it like any session.

Exactly once, on any number of nodes:

1. a node claims the plan with a conditional update (``status`` ``planned`` → ``starting``, with a
   lease), which only one node can win;
2. the session is inserted with the plan's id as its primary key, so even a node that took over an
   expired lease from a node that died after its start cannot start it again (the insert fails);
3. the plan is marked ``started``.

A node that was down catches up when it comes back: a plan whose start has passed is started late,
for what remains of it; one whose end has passed too (missed by more than its duration) is recorded
as ``missed`` (not held) and not started. A teacher may start a plan early (the same claim), skip it,
or end its session early (the session's ordinary end).
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final

import orjson
from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from attendance_live.auth.tokens import Identity
from attendance_live.db.models import AttendanceSession, Course
from attendance_live.db.term_models import PlannedSession, TimetableSlot
from attendance_live.service.attendance import AttendanceService
from attendance_live.service.calendar import CalendarEntry, uid_of
from attendance_live.service.errors import Conflict, Forbidden, InvalidInput, NotFound, ServiceError
from attendance_live.service.slots import (
    WEEKDAYS,
    PlannedView,
    SessionSettings,
    SlotView,
    Weekday,
    check_settings,
    occurrences,
    settings_of,
    zone,
)
from attendance_live.service.views import SessionView
from attendance_live.timeutil import Clock, iso_z
from attendance_live.vocabulary import SYSTEM

__all__ = ["DUE_BATCH", "LEASE", "Timetable"]

log = logging.getLogger(__name__)

# How long a node holds a plan it is starting before another may take over.
LEASE: Final = timedelta(seconds=60)
DUE_BATCH: Final = 100


class Timetable:
    """Slots, plans, and the scheduler; see the module docstring."""

    def __init__(self, service: AttendanceService) -> None:
        self.service = service
        self.database = service.database

    @property
    def clock(self) -> Clock:
        return self.service.clock

    # ------------------------------------------------------------ planning (managers)

    async def create_slot(
        self,
        actor: Identity,
        course_id: str,
        *,
        weekday: Weekday,
        start_time: time,
        duration_minutes: int,
        timezone: str,
        first_date: date,
        last_date: date,
        exception_dates: Sequence[date] = (),
        topic: str | None = None,
        location: str | None = None,
        settings: SessionSettings | None = None,
    ) -> SlotView:
        settings = settings or SessionSettings()
        tz = zone(timezone)
        if last_date < first_date:
            raise InvalidInput(f"last_date ({last_date}) is before first_date ({first_date}); swap them")
        if (last_date - first_date).days > 366:
            raise InvalidInput("a slot spans at most 366 days; add another slot for the next term")
        check_settings(settings, duration_minutes)
        start = start_time.replace(second=0, microsecond=0, tzinfo=None)
        day = WEEKDAYS.index(weekday)
        times = occurrences(
            day, start, timedelta(minutes=duration_minutes), tz, first_date, last_date, exception_dates
        )
        if not times:
            raise InvalidInput(
                "this slot has no occurrence: no such weekday between first_date and last_date "
                "outside the exception dates"
            )
        now = self.clock()
        slot_id = uuid.uuid4().hex
        settings_json = settings.model_dump_json()
        async with self.database.write() as db:
            await self.service.manager_access(db, actor, course_id)
            slot = TimetableSlot(
                id=slot_id,
                course_id=course_id,
                weekday=day,
                start_time=start.strftime("%H:%M"),
                duration_minutes=duration_minutes,
                timezone=timezone,
                first_date=first_date,
                last_date=last_date,
                exception_dates=orjson.dumps(sorted(d.isoformat() for d in exception_dates)).decode(),
                topic=topic,
                location=location,
                settings=settings_json,
                created_by=actor.user_id,
                created_at=now,
            )
            db.add(slot)
            await db.flush()
            # Occurrences already over when the slot is made are not planned (nothing to catch up).
            rows = [
                {
                    "id": uuid.uuid4().hex,
                    "course_id": course_id,
                    "slot_id": slot_id,
                    "starts_at": begins,
                    "ends_at": ends,
                    "topic": topic,
                    "location": location,
                    "settings": settings_json,
                    "status": "planned",
                    "updated_at": now,
                }
                for begins, ends in times
                if ends > now
            ]
            if rows:
                await db.execute(insert(PlannedSession), rows)
        return self._slot_view(slot, len(rows))

    async def list_slots(self, actor: Identity, course_id: str) -> list[SlotView]:
        async with self.database.read() as db:
            await self.service.member_access(db, actor, course_id)
            slots = (
                await db.execute(
                    select(TimetableSlot)
                    .where(TimetableSlot.course_id == course_id)
                    .order_by(TimetableSlot.weekday, TimetableSlot.start_time)
                )
            ).scalars()
            counts = dict(
                (
                    await db.execute(
                        select(PlannedSession.slot_id, func.count())
                        .where(PlannedSession.course_id == course_id)
                        .group_by(PlannedSession.slot_id)
                    )
                ).all()
            )
            return [self._slot_view(s, int(counts.get(s.id, 0))) for s in slots]

    async def delete_slot(self, actor: Identity, course_id: str, slot_id: str) -> None:
        """Remove a slot and its plans that have not started (held and missed ones stay)."""
        async with self.database.write() as db:
            await self.service.manager_access(db, actor, course_id)
            slot = await db.get(TimetableSlot, slot_id)
            if slot is None or slot.course_id != course_id:
                raise NotFound(f"Slot {slot_id!r} not found in course {course_id!r}")
            await db.execute(
                delete(PlannedSession).where(
                    PlannedSession.slot_id == slot_id, PlannedSession.status.in_(("planned", "skipped"))
                )
            )
            await db.delete(slot)

    async def plan_once(
        self,
        actor: Identity,
        course_id: str,
        *,
        starts_at: datetime,
        duration_minutes: int,
        topic: str | None = None,
        location: str | None = None,
        settings: SessionSettings | None = None,
    ) -> PlannedView:
        settings = settings or SessionSettings()
        if starts_at.tzinfo is None:
            raise InvalidInput("starts_at has no time zone; add Z or an offset such as +01:00")
        check_settings(settings, duration_minutes)
        now = self.clock()
        begins = starts_at.astimezone(UTC).replace(microsecond=0)
        ends = begins + timedelta(minutes=duration_minutes)
        if ends <= now:
            raise InvalidInput("this session would be over already; plan it in the future")
        row = PlannedSession(
            id=uuid.uuid4().hex,
            course_id=course_id,
            slot_id=None,
            starts_at=begins,
            ends_at=ends,
            topic=topic,
            location=location,
            settings=settings.model_dump_json(),
            status="planned",
            updated_at=now,
        )
        async with self.database.write() as db:
            await self.service.manager_access(db, actor, course_id)
            db.add(row)
        return self._planned_view(row, None)

    async def list_planned(
        self, actor: Identity, course_id: str, *, start: datetime | None = None, end: datetime | None = None
    ) -> list[PlannedView]:
        query = (
            select(PlannedSession, AttendanceSession.status)
            .outerjoin(AttendanceSession, AttendanceSession.id == PlannedSession.id)
            .where(PlannedSession.course_id == course_id)
            .order_by(PlannedSession.starts_at)
        )
        if start is not None:
            query = query.where(PlannedSession.ends_at > start)
        if end is not None:
            query = query.where(PlannedSession.starts_at < end)
        async with self.database.read() as db:
            await self.service.member_access(db, actor, course_id)
            return [self._planned_view(p, s) for p, s in (await db.execute(query)).all()]

    async def skip(self, actor: Identity, planned_id: str) -> PlannedView:
        now = self.clock()
        async with self.database.write() as db:
            planned = await self._managed(db, actor, planned_id)
            result = await db.execute(
                update(PlannedSession)
                .where(PlannedSession.id == planned_id, PlannedSession.status == "planned")
                .values(status="skipped", updated_at=now)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise Conflict(
                    f"Planned session {planned_id!r} is {planned.status}; only a planned one can be skipped "
                    "(end a running session instead)"
                )
            await db.refresh(planned)
            return self._planned_view(planned, None)

    async def start_now(self, actor: Identity, planned_id: str) -> SessionView:
        """A teacher starts a planned session now (early, or late by hand); it ends at the planned end."""
        now = self.clock()
        async with self.database.read() as db:
            planned = await self._managed(db, actor, planned_id)
        if planned.ends_at <= now:
            raise Conflict(
                f"Planned session {planned_id!r} was to end at {iso_z(planned.ends_at)}; start a new one"
            )
        if not await self._claim(planned_id):
            raise Conflict(
                f"Planned session {planned_id!r} is {planned.status}: it was started or skipped already"
            )
        view = await self._start(planned, actor)
        if view is None:  # cannot be: our claim was exclusive and nobody had started it
            raise Conflict(f"Planned session {planned_id!r} was started already")
        return view

    # ------------------------------------------------------------ the scheduler (every node)

    async def run_due(self) -> int:
        """Start (or record as missed) every plan whose start has come; the number handled."""
        now = self.clock()
        async with self.database.read() as db:
            due = (
                (
                    await db.execute(
                        select(PlannedSession)
                        .where(
                            or_(
                                (PlannedSession.status == "planned") & (PlannedSession.starts_at <= now),
                                (PlannedSession.status == "starting") & (PlannedSession.lease_until < now),
                            )
                        )
                        .order_by(PlannedSession.starts_at)
                        .limit(DUE_BATCH)
                    )
                )
                .scalars()
                .all()
            )
        handled = 0
        for planned in due:
            try:
                if planned.ends_at <= now:
                    handled += await self._record_missed(planned)
                elif await self._claim(planned.id):
                    actor = await self._system_actor(planned.course_id)
                    await self._start(planned, actor)
                    handled += 1
            except ServiceError as exc:
                log.warning("planned session %s could not start: %s; recording it as missed", planned.id, exc)
                await self._mark(planned.id, "missed")
        return handled

    async def next_start(self) -> datetime | None:
        async with self.database.read() as db:
            value = (
                await db.execute(
                    select(func.min(PlannedSession.starts_at)).where(PlannedSession.status == "planned")
                )
            ).scalar_one_or_none()
        return value

    async def run_pass(self, poll_seconds: float) -> float:
        await self.run_due()
        upcoming = await self.next_start()
        if upcoming is None:
            return poll_seconds
        return min(poll_seconds, (upcoming - self.clock()).total_seconds())

    # ------------------------------------------------------------ the calendar

    async def calendar_entries(self, course_ids: Sequence[str]) -> list[CalendarEntry]:
        """Plans not (yet) started: planned, skipped, missed (a started one is its session's event)."""
        async with self.database.read() as db:
            rows = (
                await db.execute(
                    select(PlannedSession, Course.code, Course.title)
                    .join(Course, Course.id == PlannedSession.course_id)
                    .where(PlannedSession.course_id.in_(course_ids), PlannedSession.status != "started")
                )
            ).all()
        return [
            CalendarEntry(
                uid=uid_of(p.id),
                course_code=code,
                course_title=title,
                topic=p.topic,
                start=p.starts_at,
                end=p.ends_at,
                state="planned" if p.status == "starting" else p.status,
                location=p.location,
            )
            for p, code, title in rows
        ]

    # ------------------------------------------------------------ helpers

    async def _managed(self, db: Any, actor: Identity, planned_id: str) -> PlannedSession:
        planned = await db.get(PlannedSession, planned_id)
        if planned is None:
            raise NotFound(f"Planned session {planned_id!r} not found")
        try:
            await self.service.manager_access(db, actor, planned.course_id)
        except NotFound:
            raise NotFound(f"Planned session {planned_id!r} not found") from None
        except Forbidden:
            raise Forbidden(
                "Only the course's teacher or an admin can start or skip a planned session"
            ) from None
        result: PlannedSession = planned
        return result

    async def _claim(self, planned_id: str) -> bool:
        """Take the plan for starting (one node, one teacher wins); False if it is not to be started."""
        now = self.clock()
        async with self.database.write() as db:
            result = await db.execute(
                update(PlannedSession)
                .where(
                    PlannedSession.id == planned_id,
                    or_(
                        PlannedSession.status == "planned",
                        (PlannedSession.status == "starting") & (PlannedSession.lease_until < now),
                    ),
                )
                .values(status="starting", lease_until=now + LEASE, updated_at=now)
                .execution_options(synchronize_session=False)
            )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    async def _start(self, planned: PlannedSession, actor: Identity) -> SessionView | None:
        """Start the claimed plan's session (its id is the plan's); None if some node already had."""
        settings = settings_of(planned.settings)
        remaining = (planned.ends_at - self.clock()).total_seconds()
        minutes = max(1, math.ceil(remaining / 60))
        late = settings.late_after_minutes
        try:
            view = await self.service.start_session(
                actor,
                planned.course_id,
                topic=planned.topic,
                max_duration_minutes=minutes,
                late_after_minutes=None if late is None else min(late, minutes),
                check_in_mode=settings.check_in_mode,
                code_period_seconds=settings.code_period_seconds,
                allowed_networks=settings.allowed_networks,
                session_id=planned.id,
            )
        except IntegrityError:
            view = None  # a node that held the lease before us started it, then died
        await self._mark(planned.id, "started")
        return view

    async def _record_missed(self, planned: PlannedSession) -> int:
        """A plan whose end has passed: missed, unless its session exists (a node died after starting)."""
        async with self.database.read() as db:
            held = await db.get(AttendanceSession, planned.id) is not None
        return await self._mark(planned.id, "started" if held else "missed", only_if=planned.status)

    async def _mark(self, planned_id: str, status: str, *, only_if: str | None = None) -> int:
        now = self.clock()
        query = update(PlannedSession).where(PlannedSession.id == planned_id)
        if only_if is not None:
            query = query.where(PlannedSession.status == only_if)
        async with self.database.write() as db:
            result = await db.execute(
                query.values(status=status, lease_until=None, updated_at=now).execution_options(
                    synchronize_session=False
                )
            )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def _system_actor(self, course_id: str) -> Identity:
        """Who starts a planned session: the course's teacher's id, shown as ``system``."""
        async with self.database.read() as db:
            teacher_id = (
                await db.execute(select(Course.teacher_id).where(Course.id == course_id))
            ).scalar_one_or_none()
        if teacher_id is None:
            raise NotFound(f"Course {course_id!r} not found")
        return Identity(user_id=teacher_id, name=SYSTEM, email=None, role="teacher")

    @staticmethod
    def _slot_view(slot: TimetableSlot, planned: int) -> SlotView:
        return SlotView(
            id=slot.id,
            course_id=slot.course_id,
            weekday=WEEKDAYS[slot.weekday],
            start_time=slot.start_time,
            duration_minutes=slot.duration_minutes,
            timezone=slot.timezone,
            first_date=slot.first_date.isoformat(),
            last_date=slot.last_date.isoformat(),
            exception_dates=orjson.loads(slot.exception_dates),
            topic=slot.topic,
            location=slot.location,
            settings=settings_of(slot.settings),
            planned=planned,
        )

    @staticmethod
    def _planned_view(planned: PlannedSession, session_status: str | None) -> PlannedView:
        # A plan whose session exists has started, whatever its row says yet: the row is marked in a
        # write after the start was announced, and a dashboard refreshing on that announcement must
        # not see it still "planned" (nothing would make it look again).
        started = planned.status == "started" or session_status is not None
        return PlannedView(
            id=planned.id,
            course_id=planned.course_id,
            slot_id=planned.slot_id,
            starts_at=iso_z(planned.starts_at) or "",
            ends_at=iso_z(planned.ends_at) or "",
            topic=planned.topic,
            location=planned.location,
            status="started" if started else planned.status,
            session_id=planned.id if started else None,
            session_status=session_status if started else None,
            settings=settings_of(planned.settings),
        )
