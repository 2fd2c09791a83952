"""Reads: session bodies, the roster, statistics and the live snapshot of a course.

Two kinds of read live here. The HTTP reads go through the ORM
(``Database.read``) and check access first. The hot reads that the real-time
side asks for on every subscribe and broadcast (``active_sessions_snapshot``,
``session_summary``) run as single synchronous units (``Database.run_read``)
with statements built once (``service.snapshots``), without an access check: their
callers have authorized the subscriber or the room already.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from attendance_live.auth.tokens import Identity
from attendance_live.db.models import AttendanceRecord, AttendanceSession, RecordChange, User
from attendance_live.service.access import Access, AccessRules
from attendance_live.service.audit import AUDIT_COLUMNS, audits_by_user, with_audit
from attendance_live.service.errors import Forbidden, NotFound
from attendance_live.service.roster_fill import missing_rows, roster_query
from attendance_live.service.snapshots import (
    STATEMENTS,
    active_sessions_in,
    counts_of,
    session_view_of,
    summary_in,
)
from attendance_live.service.views import (
    ActiveSessionsView,
    RecordsPage,
    RecordView,
    SessionView,
    Statistics,
)
from attendance_live.timeutil import iso_z

__all__ = ["Reads", "absent_view", "record_view"]


class Reads(AccessRules):
    """Session bodies and snapshots; see the module docstring."""

    async def active_sessions(self, actor: Identity, course_id: str) -> ActiveSessionsView:
        """The course's active sessions, for a member of the course."""
        async with self.database.read() as db:
            await self.member_access(db, actor, course_id)
            return await db.run_sync(lambda session: active_sessions_in(session.connection(), course_id))

    async def active_sessions_snapshot(self, course_id: str) -> ActiveSessionsView:
        """The same without an access check (for an authorized subscriber or room).

        Served from the snapshot cache, which every change to the course's
        sessions invalidates before it is announced.
        """

        async def load() -> ActiveSessionsView:
            return await self.database.run_read(lambda conn: active_sessions_in(conn, course_id))

        snapshot = await self.caches.snapshots.get(course_id, load)
        assert snapshot is not None
        return snapshot

    async def session_summary(self, session_id: str) -> SessionView | None:
        """A session without its records, for announcements (no access check): one read."""
        return await self.database.run_read(lambda conn: summary_in(conn, session_id))

    async def session_statistics(self, session_id: str) -> Statistics:
        """A session's statistics now (no access check; for its roster's followers)."""

        def read(conn: Connection) -> Statistics:
            return counts_of(conn.execute(STATEMENTS.statistics, {"p_sid": session_id}))

        return await self.database.run_read(read)

    async def manages_session(self, actor: Identity, session_id: str) -> bool:
        """Whether ``actor`` may follow the session's roster (its course's teacher, an admin)."""
        async with self.database.read() as db:
            try:
                _, access = await self._session_access(db, actor, session_id)
            except (NotFound, Forbidden):
                return False
            return access.manages

    async def roster(self, actor: Identity, session_id: str) -> SessionView:
        """The whole session with every record, for the course's teacher and admins."""
        async with self.database.read() as db:
            _, access = await self._session_access(db, actor, session_id)
            if not access.manages:
                raise Forbidden("Only the course's teacher or an admin can follow the roster")
            return await self._session_view(db, session_id, access, actor)

    async def get_session(self, actor: Identity, session_id: str) -> SessionView:
        async with self.database.read() as db:
            _, access = await self._session_access(db, actor, session_id)
            if access.relation == "pending":
                raise Forbidden(
                    "Your enrollment in this session's course is pending; "
                    "ask the course's teacher to approve it"
                )
            return await self._session_view(db, session_id, access, actor)

    async def records_page(self, actor: Identity, session_id: str, offset: int, limit: int) -> RecordsPage:
        """One page of the roster, ordered by name then user id (a student: its own record); the
        rows a pending roster has not written yet are in it as unmarked absent records."""
        async with self.database.read() as db:
            attendance, access = await self._session_access(db, actor, session_id)
            if access.relation == "pending":
                raise Forbidden(
                    "Your enrollment in this session's course is pending; "
                    "ask the course's teacher to approve it"
                )
            own = None if access.manages else actor.user_id
            roster = roster_query(session_id, own, pending=bool(attendance.roster_pending)).subquery()
            rows = (
                await db.execute(
                    select(roster).order_by(roster.c.name, roster.c.user_id).offset(offset).limit(limit)
                )
            ).all()
            total = int(await db.scalar(select(func.count()).select_from(roster)) or 0)
            records = [
                RecordView(
                    user_id=user_id,
                    name=name,
                    status=status,
                    marked_at=iso_z(marked_at),
                    marked_by=marked_by,
                    remarks=remarks,
                    code_attempts_blocked_at=iso_z(blocked_at),
                )
                for user_id, name, status, marked_at, marked_by, remarks, blocked_at in rows
            ]
            if access.manages and records:  # the audit trail is the teacher's
                changes = await db.execute(
                    select(*AUDIT_COLUMNS)
                    .where(
                        RecordChange.session_id == session_id,
                        RecordChange.user_id.in_([r.user_id for r in records]),
                    )
                    .order_by(RecordChange.id)
                )
                records = with_audit(records, audits_by_user(changes.all()))
        return RecordsPage(session_id=session_id, total=total, offset=offset, limit=limit, records=records)

    async def list_sessions(self, actor: Identity, course_id: str) -> list[SessionView]:
        async with self.database.read() as db:
            access = await self.manager_access(db, actor, course_id)
            ids = (
                (
                    await db.execute(
                        select(AttendanceSession.id)
                        .where(AttendanceSession.course_id == course_id)
                        .order_by(AttendanceSession.started_at.desc())
                        .limit(500)
                    )
                )
                .scalars()
                .all()
            )
            return [await self._session_view(db, sid, access, actor, with_records=False) for sid in ids]

    # ------------------------------------------------------- within a transaction

    async def _statistics(self, db: AsyncSession, session_id: str) -> Statistics:
        return counts_of((await db.execute(STATEMENTS.statistics, {"p_sid": session_id})).all())

    async def _record(self, db: AsyncSession, session_id: str, user_id: str) -> RecordView:
        row = (
            await db.execute(
                select(AttendanceRecord, User.name)
                .join(User, User.id == AttendanceRecord.user_id)
                .where(AttendanceRecord.session_id == session_id, AttendanceRecord.user_id == user_id)
            )
        ).first()
        if row is None:
            raise NotFound(f"User {user_id!r} has no record in session {session_id!r}")
        return record_view(row[0], row[1])

    async def _session_view(
        self,
        db: AsyncSession,
        session_id: str,
        access: Access,
        actor: Identity,
        *,
        with_records: bool = True,
    ) -> SessionView:
        """The session body; a caller who does not manage the course sees only its own record."""
        attendance = (
            await db.execute(
                select(AttendanceSession)
                .where(AttendanceSession.id == session_id)
                .execution_options(populate_existing=True)
            )
        ).scalar_one()
        records: list[RecordView] = []
        if with_records:
            query = (
                select(AttendanceRecord, User.name)
                .join(User, User.id == AttendanceRecord.user_id)
                .where(AttendanceRecord.session_id == session_id)
                .order_by(User.name, User.id)
                .execution_options(populate_existing=True)
            )
            if not access.manages:
                query = query.where(AttendanceRecord.user_id == actor.user_id)
            records = [record_view(r, name) for r, name in (await db.execute(query)).all()]
            if attendance.roster_pending:  # rows not written yet read as unmarked absent records
                missing = missing_rows(session_id, None if access.manages else actor.user_id)
                records += [absent_view(user_id, name) for user_id, name in (await db.execute(missing)).all()]
                records.sort(key=lambda r: (r.name, r.user_id))
            if access.manages:  # the audit trail is the teacher's
                changes = await db.execute(
                    select(*AUDIT_COLUMNS)
                    .where(RecordChange.session_id == session_id)
                    .order_by(RecordChange.id)
                )
                records = with_audit(records, audits_by_user(changes.all()))
        statistics = await self._statistics(db, attendance.id)
        return session_view_of(
            lambda column: getattr(attendance, column),
            access.course.teacher_id,
            access.teacher_name,
            statistics,
            records,
        )


def absent_view(user_id: str, name: str) -> RecordView:
    """A roster student whose row is not written yet (service.roster_fill): absent, unmarked."""
    return RecordView(
        user_id=user_id, name=name, status="absent", marked_at=None, marked_by=None, remarks=None
    )


def record_view(record: AttendanceRecord, name: str) -> RecordView:
    return RecordView(
        user_id=record.user_id,
        name=name,
        status=record.status,
        marked_at=iso_z(record.marked_at),
        marked_by=record.marked_by,
        remarks=record.remarks,
        code_attempts_blocked_at=iso_z(record.code_attempts_blocked_at),
    )
