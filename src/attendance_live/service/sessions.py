"""Sessions: start, end (by a teacher or by the auto-end timer) and teacher marks.

Each transition is a conditional update (``UPDATE … WHERE status = 'active'``),
so two clicks, two nodes or the timer racing a teacher give one result and
one announcement. A session's roster (every approved enrollment, each with an
``absent`` record) is written just after its start has been announced, in a
second transaction (``service.roster_fill``); an end writes it first if it is
still pending. The check-in is in ``service.checkin``.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, insert, select, update

from attendance_live.auth.tokens import Identity
from attendance_live.db.models import AttendanceRecord, AttendanceSession, Enrollment, RecordChange
from attendance_live.networks import MAX_NETWORKS, parse_networks
from attendance_live.service.audit import AUDIT_COLUMNS, audits_by_user, change_row
from attendance_live.service.codes import new_secret
from attendance_live.service.core import Unit
from attendance_live.service.errors import Conflict, Forbidden, InvalidInput, NotFound
from attendance_live.service.events import RecordChanged, SessionEnded, SessionStarted
from attendance_live.service.reads import Reads
from attendance_live.service.views import RecordView, SessionView
from attendance_live.vocabulary import PRESENT_STATUSES, SYSTEM, CheckInMode, RecordStatus

__all__ = ["Sessions"]

log = logging.getLogger(__name__)


class Sessions(Reads):
    """Session transitions and teacher marks; see the module docstring."""

    async def start_session(
        self,
        actor: Identity,
        course_id: str,
        *,
        topic: str | None = None,
        max_duration_minutes: int | None = None,
        late_after_minutes: int | None = None,
        check_in_mode: CheckInMode = "open",
        code_period_seconds: int = 15,
        allowed_networks: list[str] | None = None,
        session_id: str | None = None,
    ) -> SessionView:
        """Start a session; ``session_id`` names it (the timetable's planned id: a second start of the
        same plan, by any node, fails on the primary key instead of starting it twice)."""
        now = self.clock()
        if not 5 <= code_period_seconds <= 300:
            raise InvalidInput(
                f"code_period_seconds ({code_period_seconds}) is out of range; use 5 to 300 seconds"
            )
        networks_json = None
        if allowed_networks is not None:
            if len(allowed_networks) > MAX_NETWORKS:
                raise InvalidInput(
                    f"allowed_networks lists {len(allowed_networks)} networks; use at most {MAX_NETWORKS}"
                )
            try:
                networks = parse_networks(allowed_networks, "allowed_networks entry")
            except ValueError as exc:
                raise InvalidInput(str(exc)) from None
            if not networks:
                raise InvalidInput(
                    "allowed_networks is empty, so nobody could check in; "
                    "list at least one network, or send null to allow anywhere"
                )
            networks_json = json.dumps([str(n) for n in networks])
        max_minutes = max_duration_minutes or self.default_max_minutes
        # The default late threshold never exceeds the session (a 5-minute session is late after 5).
        late_minutes = (
            min(self.default_late_minutes, max_minutes) if late_after_minutes is None else late_after_minutes
        )
        if late_minutes > max_minutes:
            raise InvalidInput(
                f"late_after_minutes ({late_minutes}) is longer than max_duration_minutes "
                f"({max_minutes}); choose a late threshold within the session"
            )
        session_id = session_id or uuid.uuid4().hex
        async with self._write() as unit:
            access = await self.manager_access(unit.db, actor, course_id)
            if access.course.archived_at is not None:
                raise Conflict(
                    f"Course {course_id!r} is archived and takes no new session; unarchive it first"
                )
            await self.users.ensure(unit.db, actor)
            unit.db.add(
                AttendanceSession(
                    id=session_id,
                    course_id=course_id,
                    topic=topic,
                    status="active",
                    late_after_minutes=late_minutes,
                    max_duration_minutes=max_minutes,
                    started_at=now,
                    started_by_id=actor.user_id,
                    started_by=actor.name,
                    expires_at=now + timedelta(minutes=max_minutes),
                    check_in_mode=check_in_mode,
                    code_period_seconds=code_period_seconds,
                    code_secret=new_secret(),
                    allowed_networks=networks_json,
                    roster_pending=True,
                )
            )
            # The roster (every approved enrollment, absent until it checks in) is written after
            # the announcement (service.roster_fill); the course's lock orders this start with
            # enrollment changes (PostgreSQL).
            await unit.db.run_sync(lambda sync: self.rosters.lock_course(sync.connection(), course_id))
            # The answer, read here so that nothing is left to wait for once committed: without
            # the records (GET /api/sessions/{id}/records has them); the statistics count the
            # roster (the approved enrollments now, all absent).
            await unit.db.flush()
            view = await self._session_view(unit.db, session_id, access, actor, with_records=False)
            unit.events.append(SessionStarted(course_id, session_id))
        # Committed and handed to the relay: announced. The roster's rows follow in their own
        # transaction; meanwhile every read counts the missing ones as absent.
        self.rosters.after_start(session_id)
        return view

    async def mark_record(
        self,
        actor: Identity,
        session_id: str,
        user_id: str,
        *,
        status: RecordStatus,
        remarks: str | None,
        address: str | None = None,
    ) -> RecordView:
        """Set a student's record (a teacher's mark), kept in the audit trail with ``address``."""
        now = self.clock()
        async with self._write() as unit:
            attendance, access = await self._session_access(unit.db, actor, session_id, lock=True)
            if not access.manages:
                raise Forbidden("Only the course's teacher or an admin can mark attendance")
            if attendance.status != "active":
                raise Conflict(f"Session {session_id!r} has ended; its records are final")
            record = await unit.db.get(AttendanceRecord, (session_id, user_id))
            if record is None:
                enrolled = await unit.db.get(Enrollment, (attendance.course_id, user_id))
                if enrolled is None or enrolled.status != "approved":
                    raise NotFound(
                        f"User {user_id!r} is not on this session's roster; "
                        "approve their enrollment in the course first"
                    )
                record = AttendanceRecord(session_id=session_id, user_id=user_id, status="absent")
                unit.db.add(record)
            was_counted = record.status in PRESENT_STATUSES
            record.status = status
            record.marked_at = now
            record.marked_by = actor.user_id
            if remarks is not None:
                record.remarks = remarks
            await unit.db.flush()
            await unit.db.execute(
                insert(RecordChange).values(
                    change_row(session_id, user_id, status, now, actor.user_id, "teacher_mark", address)
                )
            )
            changes = await unit.db.execute(
                select(*AUDIT_COLUMNS)
                .where(RecordChange.session_id == session_id, RecordChange.user_id == user_id)
                .order_by(RecordChange.id)
            )
            audit = audits_by_user(changes.all()).get(user_id)
            view = (await self._record(unit.db, session_id, user_id)).model_copy(update={"audit": audit})
            unit.events.append(
                RecordChanged(
                    attendance.course_id,
                    session_id,
                    user_id,
                    was_counted != (status in PRESENT_STATUSES),
                    record=view,
                )
            )
        return view

    async def flag_code_attempts(self, session_id: str, user_id: str) -> RecordView | None:
        """Flag the student's record: stopped for too many wrong check-in codes (now). The roster's
        followers get ``attendanceUpdated`` with ``code_attempts_blocked_at``; None when the
        student has no record in the session (approved after its start, never checked in)."""
        now = self.clock()
        # A roster still pending is written first (as the end does): the flag needs the row.
        await self.rosters.complete(session_id)
        async with self._write() as unit:
            attendance = await unit.db.get(AttendanceSession, session_id)
            record = await unit.db.get(AttendanceRecord, (session_id, user_id))
            if attendance is None or record is None:
                return None
            record.code_attempts_blocked_at = now
            await unit.db.flush()
            changes = await unit.db.execute(
                select(*AUDIT_COLUMNS)
                .where(RecordChange.session_id == session_id, RecordChange.user_id == user_id)
                .order_by(RecordChange.id)
            )
            audit = audits_by_user(changes.all()).get(user_id)
            view = (await self._record(unit.db, session_id, user_id)).model_copy(update={"audit": audit})
            unit.events.append(RecordChanged(attendance.course_id, session_id, user_id, False, record=view))
        return view

    async def end_session(self, actor: Identity, session_id: str) -> SessionView:
        # A roster still pending is written first, in its own transaction: the final statistics
        # then count every roster student.
        await self.rosters.complete(session_id)
        async with self._write() as unit:
            attendance, access = await self._session_access(unit.db, actor, session_id)
            if not access.manages:
                raise Forbidden("Only the course's teacher or an admin can end a session")
            await self.users.ensure(unit.db, actor)
            ended = await self._end(unit, attendance.course_id, session_id, actor.user_id, actor.name)
            if not ended:
                raise Conflict(f"Session {session_id!r} has already ended")
            view = await self._session_view(unit.db, session_id, access, actor)
        return view

    async def end_expired(self) -> list[str]:
        """End every active session past its maximum duration; returns their ids.

        Safe to run on every node at once: each end is a conditional update,
        so each session ends (and is announced) exactly once.
        """
        now = self.clock()
        async with self.database.read() as db:
            rows = (
                await db.execute(
                    select(AttendanceSession.id, AttendanceSession.course_id).where(
                        AttendanceSession.status == "active", AttendanceSession.expires_at <= now
                    )
                )
            ).all()
        ended: list[str] = []
        for session_id, course_id in rows:
            await self.rosters.complete(session_id)
            async with self._write() as unit:
                if await self._end(unit, course_id, session_id, None, SYSTEM):
                    ended.append(session_id)
        if ended:
            log.info("auto-ended %d session(s) past their maximum duration", len(ended))
        return ended

    async def next_expiry(self) -> datetime | None:
        """When the earliest active session expires (None: no active session)."""
        async with self.database.read() as db:
            value = (
                await db.execute(
                    select(func.min(AttendanceSession.expires_at)).where(AttendanceSession.status == "active")
                )
            ).scalar_one_or_none()
        return value

    async def _end(
        self, unit: Unit, course_id: str, session_id: str, by_id: str | None, by_name: str
    ) -> bool:
        """End the session if it is active, freezing its final statistics; False if it was not."""
        now = self.clock()
        result = await unit.db.execute(
            update(AttendanceSession)
            .where(AttendanceSession.id == session_id, AttendanceSession.status == "active")
            .values(status="ended", ended_at=now, ended_by_id=by_id, ended_by=by_name)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return False
        stats = await self._statistics(unit.db, session_id)
        await unit.db.execute(
            update(AttendanceSession)
            .where(AttendanceSession.id == session_id)
            .values(
                final_present=stats.present - stats.late,
                final_late=stats.late,
                final_absent=stats.absent,
                final_excused=stats.excused,
                final_total=stats.total,
            )
            .execution_options(synchronize_session=False)
        )
        unit.events.append(SessionEnded(course_id, session_id))
        return True
