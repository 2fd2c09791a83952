"""The check-in: the hot path of a lecture hall, so it is lean.

One read answers refusals, repeats and records the teacher already marked
without a write; otherwise one conditional ``UPDATE … RETURNING`` in a short
write transaction. Both run as single synchronous units
(``Database.run_read``/``run_write``) with statements built once per database
(``CheckInStatements``): per-statement driver round trips, statement building
and the ORM were most of a check-in's cost (docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import Any

from sqlalchemy import String, and_, bindparam, exists, select, update
from sqlalchemy.engine import Connection

from attendance_live.auth.tokens import Identity
from attendance_live.db.engine import Database
from attendance_live.db.models import AttendanceRecord, AttendanceSession, Course, Enrollment, User
from attendance_live.service.core import ServiceCore
from attendance_live.service.errors import Conflict, Forbidden, NotFound
from attendance_live.service.events import RecordChanged
from attendance_live.service.views import RecordView
from attendance_live.timeutil import iso_z

__all__ = ["CheckInStatements", "CheckIns"]


class CheckInStatements:
    """The check-in's statements, with bound parameters (``p_sid``, ``p_uid``, …)."""

    def __init__(self, database: Database) -> None:
        S, R = AttendanceSession, AttendanceRecord  # noqa: N806
        sid, uid = bindparam("p_sid", type_=String()), bindparam("p_uid", type_=String())
        now = bindparam("p_now", type_=R.marked_at.type)
        status = bindparam("p_status", type_=R.status.type)
        self.probe = (
            select(
                S.course_id,
                S.status,
                S.started_at,
                S.late_after_minutes,
                Course.teacher_id,
                Enrollment.status,
                R.status,
                R.marked_at,
                R.marked_by,
                R.remarks,
                User.name,
            )
            .join(Course, Course.id == S.course_id)
            .outerjoin(Enrollment, and_(Enrollment.course_id == S.course_id, Enrollment.user_id == uid))
            .outerjoin(R, and_(R.session_id == S.id, R.user_id == uid))
            .outerjoin(User, User.id == uid)
            .where(S.id == sid)
        )
        self.lock = select(S.status).where(S.id == sid).with_for_update(read=True)
        returning = (R.status, R.marked_at, R.marked_by, R.remarks)
        self.update = (
            update(R)
            .where(
                R.session_id == sid,
                R.user_id == uid,
                R.status == "absent",
                R.marked_by.is_(None),
                exists().where(S.id == sid, S.status == "active"),
            )
            .values(status=status, marked_at=now, marked_by=uid, checked_in_at=now)
            .returning(*returning)
        )
        self.state = (
            select(S.status, *returning)
            .select_from(S)
            .outerjoin(R, and_(R.session_id == S.id, R.user_id == uid))
            .where(S.id == sid)
        )
        row = {
            "session_id": sid,
            "user_id": uid,
            "status": status,
            "marked_at": now,
            "marked_by": uid,
            "checked_in_at": now,
        }
        self.insert = database.upsert(R, row, key=["session_id", "user_id"]).returning(*returning)


class CheckIns(ServiceCore):
    """The check-in; see the module docstring."""

    @cached_property
    def _check_in_statements(self) -> CheckInStatements:
        return CheckInStatements(self.database)

    async def check_in(self, actor: Identity, session_id: str) -> RecordView:
        """Check the caller in: present, or late after the session's late threshold; idempotent."""
        now = self.clock()
        q = self._check_in_statements
        params: dict[str, object] = {"p_sid": session_id, "p_uid": actor.user_id}
        row = await self.database.run_read(lambda conn: conn.execute(q.probe, params).first())
        if row is None:
            raise NotFound(f"Session {session_id!r} not found")
        (
            course_id,
            session_status,
            started_at,
            late_minutes,
            teacher_id,
            enrollment,
            record_status,
            marked_at,
            marked_by,
            remarks,
            stored_name,
        ) = row
        if actor.is_admin or teacher_id == actor.user_id:
            raise Forbidden("Only approved students of the course can check in")
        if enrollment == "pending":
            raise Forbidden(
                "Your enrollment in this course is pending; ask the course's teacher to approve it"
            )
        if enrollment != "approved":
            raise NotFound(f"Session {session_id!r} not found")
        if session_status != "active":
            raise Conflict(f"Session {session_id!r} has ended; check-in is closed")
        name = stored_name or actor.name

        def view(record: Sequence[Any]) -> RecordView:
            status, at, by, note = record
            return RecordView(
                user_id=actor.user_id,
                name=name,
                status=status,
                marked_at=iso_z(at),
                marked_by=by,
                remarks=note,
            )

        if record_status is not None and not (record_status == "absent" and marked_by is None):
            return view((record_status, marked_at, marked_by, remarks))  # a repeat, or the teacher's mark

        params["p_status"] = "late" if now - started_at > timedelta(minutes=late_minutes) else "present"
        params["p_now"] = now
        postgres = self.database.dialect == "postgresql"

        def write(conn: Connection) -> tuple[bool, Sequence[Any]]:
            """(changed, the record); raises Conflict when the session has ended."""
            if postgres and conn.execute(q.lock, params).scalar_one_or_none() != "active":
                # The lock holds off a concurrent end until this commits, so the
                # end's final statistics count this check-in (SQLite's writers are
                # serialised already).
                raise Conflict(f"Session {session_id!r} has ended; check-in is closed")
            changed = conn.execute(q.update, params).first()
            if changed is not None:
                return True, tuple(changed)
            # Ended meanwhile, raced with another check-in or a mark, or not on the roster yet.
            state = conn.execute(q.state, params).one()
            if state[0] != "active":
                raise Conflict(f"Session {session_id!r} has ended; check-in is closed")
            if state[1] is not None:
                return False, tuple(state[1:])
            # Approved after the session started: joins the roster now.
            inserted = conn.execute(q.insert, params).first()
            if inserted is None:  # another check-in of this user won the race
                return False, tuple(conn.execute(q.state, params).one()[1:])
            return True, tuple(inserted)

        changed, record = await self.database.run_write(write)
        result = view(record)
        if changed:
            await self._committed([RecordChanged(course_id, session_id, actor.user_id, True, record=result)])
        return result
