"""The hot reads as synchronous units on a ``Connection``: active sessions and a session summary.

They run in a read transaction for the real-time side (``service.reads``) and
inside a write transaction for the outbox (``service.outbox``), which stores
the snapshot a start or an end produced. Statements are built once with bound
parameters (``p_cid``, ``p_sid``). No access check: callers have authorized.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import CompoundSelect, String, bindparam, case, func, literal, select, union_all
from sqlalchemy.engine import Connection, Row

from attendance_live.db.models import AttendanceRecord, AttendanceSession, Course, User
from attendance_live.service.roster_fill import missing_count
from attendance_live.service.views import (
    ActiveSessionsView,
    ActiveSessionView,
    RecordView,
    SessionView,
    Statistics,
)
from attendance_live.timeutil import iso_z
from attendance_live.vocabulary import PRESENT_STATUSES

__all__ = ["STATEMENTS", "active_sessions_in", "counts_of", "session_view_of", "summary_in"]


def counts_of(rows: Iterable[Row[str, int]]) -> Statistics:
    """Statistics from ``STATEMENTS.statistics``' rows (status, count); a status may come twice:
    the roster's missing rows are added as ``absent`` while it is pending (service.roster_fill)."""
    counts: dict[str, int] = {}
    for status, n in rows:
        counts[status] = counts.get(status, 0) + int(n)
    return Statistics.from_counts(counts)


def session_view_of(
    get: Callable[[str], Any],
    teacher_id: str,
    teacher_name: str,
    statistics: Statistics,
    records: Sequence[RecordView],
) -> SessionView:
    """A session body from a session row, ORM or Core (``get`` reads one of its columns)."""
    final = None
    if get("status") == "ended" and get("final_total") is not None:
        final = Statistics.of(
            get("final_present") or 0,
            get("final_late") or 0,
            get("final_absent") or 0,
            get("final_excused") or 0,
        )
    return SessionView(
        id=get("id"),
        course_id=get("course_id"),
        teacher_id=teacher_id,
        teacher_name=teacher_name,
        topic=get("topic"),
        status=get("status"),
        late_after_minutes=get("late_after_minutes"),
        max_duration_minutes=get("max_duration_minutes"),
        started_at=iso_z(get("started_at")) or "",
        started_by=get("started_by"),
        expires_at=iso_z(get("expires_at")) or "",
        ended_at=iso_z(get("ended_at")),
        ended_by=get("ended_by"),
        check_in_mode=get("check_in_mode"),
        code_period_seconds=get("code_period_seconds"),
        allowed_networks=json.loads(networks) if (networks := get("allowed_networks")) else None,
        statistics=statistics,
        final_statistics=final,
        records=list(records),
    )


class _Statements:
    """The hot reads' statements, built once with bound parameters (``p_cid``, ``p_sid``)."""

    def __init__(self) -> None:
        cid = bindparam("p_cid", type_=String())
        counted = func.sum(case((AttendanceRecord.status.in_(PRESENT_STATUSES), 1), else_=0))
        self.active = (
            select(
                AttendanceSession.id,
                AttendanceSession.started_at,
                AttendanceSession.topic,
                Course.teacher_id,
                func.coalesce(counted, 0),
                # The roster: its records, and while it is pending its missing rows (absent).
                func.count(AttendanceRecord.user_id) + missing_count(AttendanceSession),
            )
            .join(Course, Course.id == AttendanceSession.course_id)
            .outerjoin(AttendanceRecord, AttendanceRecord.session_id == AttendanceSession.id)
            .where(AttendanceSession.course_id == cid, AttendanceSession.status == "active")
            .group_by(
                AttendanceSession.id, AttendanceSession.started_at, AttendanceSession.topic, Course.teacher_id
            )
            .order_by(AttendanceSession.started_at, AttendanceSession.id)
        )
        sid = bindparam("p_sid", type_=String())
        self.summary = (
            select(
                AttendanceSession.__table__,
                Course.teacher_id.label("teacher_id_"),
                User.name.label("teacher_name_"),
            )
            .join(Course, Course.id == AttendanceSession.course_id)
            .join(User, User.id == Course.teacher_id)
            .where(AttendanceSession.id == sid)
        )
        # Per status; then, while the roster is pending, its missing rows as absent.
        self.statistics: CompoundSelect[str, int] = union_all(
            select(AttendanceRecord.status, func.count())
            .where(AttendanceRecord.session_id == sid)
            .group_by(AttendanceRecord.status),
            select(literal("absent", String()), missing_count()),
        )


STATEMENTS = _Statements()


def active_sessions_in(conn: Connection, course_id: str) -> ActiveSessionsView:
    """The course's active sessions, read on ``conn``."""
    rows = conn.execute(STATEMENTS.active, {"p_cid": course_id}).all()
    return ActiveSessionsView(
        course_id=course_id,
        sessions=[
            ActiveSessionView(
                session_id=sid,
                teacher_id=teacher_id,
                student_count=int(count),
                started_at=iso_z(started_at) or "",
                topic=topic,
                total_students=int(total),
            )
            for sid, started_at, topic, teacher_id, count, total in rows
        ],
    )


def summary_in(conn: Connection, session_id: str, *, statistics: bool = True) -> SessionView | None:
    """The session without records; its statistics zero unless ``statistics`` (a start's
    announcement carries none, so its transaction reads no roster)."""
    row = conn.execute(STATEMENTS.summary, {"p_sid": session_id}).first()
    if row is None:
        return None
    m = row._mapping
    stats = (
        counts_of(conn.execute(STATEMENTS.statistics, {"p_sid": session_id}))
        if statistics
        else Statistics.of(0, 0, 0, 0)
    )
    return session_view_of(m.__getitem__, m["teacher_id_"], m["teacher_name_"], stats, records=[])
