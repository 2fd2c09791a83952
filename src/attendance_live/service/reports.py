"""Reports over ended sessions: the course report, the session CSV, xAPI statements.

The statements themselves are built by ``service.xapi``; this module reads,
checks access and sums up. It is longer than most (about 480 lines) because
its four reports share one access check, one date-range filter and their
views; split, each part would import the others' private helpers.

Read-only, so apart from the session service: each report is one read
transaction that checks the caller's relation to the course from the database
(teacher or admin: ``manager``; approved student: ``member``; pending:
:class:`Forbidden`; anyone else: :class:`NotFound`, like a course that does not
exist) and then aggregates with ``GROUP BY`` in the database, so a course of
100 sessions × 500 students reads 500 rows, not 50,000.

Arithmetic of the course report (CONTRACT.md, "Course report"): each count is
of records with exactly that status (``present`` does not include ``late``);
``sessions`` is the number of ended sessions with a record for that student;
``attendance_rate`` is (present + late) / (sessions − excused), ``None`` when
that denominator is 0, rounded to 4 decimals.

Every CSV cell a user typed goes through :func:`csv_safe`, so a spreadsheet
does not run it as a formula. The session CSV is built here (not from the
record view) because it needs the record's own ``checked_in_at``, which the
record view does not carry.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final, Literal

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import aliased

from attendance_live.auth.tokens import Identity
from attendance_live.db.engine import Database
from attendance_live.db.models import (
    AttendanceRecord,
    AttendanceSession,
    Course,
    CourseManager,
    Enrollment,
    User,
)
from attendance_live.service import xapi
from attendance_live.service.access import manages
from attendance_live.service.errors import Forbidden, InvalidInput, NotFound
from attendance_live.service.report_views import (
    CourseReport,
    SessionAttendance,
    SessionCsv,
    StudentAttendance,
    StudentHistory,
)
from attendance_live.service.roster_fill import missing_rows
from attendance_live.timeutil import iso_z

__all__ = [
    "CSV_FORMULA_PREFIXES",
    "FIRST_DAY",
    "LAST_DAY",
    "CourseReports",
    "attendance_rate",
    "csv_safe",
    "parse_day",
]

_Relation = Literal["manager", "member"]
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
#: The days a report's ``from`` and ``to`` may name.
FIRST_DAY: Final = date(1970, 1, 1)
LAST_DAY: Final = date.max - timedelta(days=1)

_COURSE_REPORT_COLUMNS = (
    "user_id",
    "name",
    "present",
    "late",
    "absent",
    "excused",
    "sessions",
    "attendance_rate",
)
_SESSION_REPORT_COLUMNS = (
    "user_id",
    "name",
    "email",
    "status",
    "checked_in_at",
    "marked_at",
    "marked_by",
    "remarks",
)


def parse_day(value: str | None, name: str) -> date | None:
    """A ``YYYY-MM-DD`` query value, or :class:`InvalidInput` that names it and the fix.

    Days outside [``FIRST_DAY``, ``LAST_DAY``] are refused too: the range's end is the next
    day's midnight, which does not exist after 9999-12-30 (``OverflowError``, a 500 before)."""
    if value is None or value == "":
        return None
    try:
        if not _DAY.match(value):
            raise ValueError(value)
        day = date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"{name}={value[:40]!r} is not a date: use YYYY-MM-DD, for example {name}=2024-01-15"
        ) from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise InvalidInput(
            f"{name}={value} is outside the days a report covers: use a day from "
            f"{FIRST_DAY.isoformat()} to {LAST_DAY.isoformat()}, or leave {name} out for no limit"
        )
    return day


@dataclass(frozen=True, slots=True)
class _Course:
    id: str
    code: str
    title: str
    teacher_id: str
    teacher_name: str
    relation: _Relation

    def as_xapi(self) -> xapi.XapiCourse:
        return xapi.XapiCourse(self.id, self.code, self.title, self.teacher_id, self.teacher_name)


def attendance_rate(present: int, late: int, excused: int, sessions: int) -> float | None:
    denominator = sessions - excused
    return round((present + late) / denominator, 4) if denominator > 0 else None


def _count(status: str) -> ColumnElement[Any]:
    return func.coalesce(func.sum(case((AttendanceRecord.status == status, 1), else_=0)), 0)


class CourseReports:
    """The course report, its CSV, the session CSV and xAPI exports (see the module docstring)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    # ------------------------------------------------------------ course report

    async def course_report(
        self, actor: Identity, course_id: str, *, start: date | None = None, end: date | None = None
    ) -> CourseReport:
        """One row per roster student (a student: only its own) over the ended sessions in range."""
        _check_range(start, end)
        return await self.database.run_read(
            lambda conn: self._course_report(conn, actor, course_id, start, end)
        )

    def _course_report(
        self, conn: Connection, actor: Identity, course_id: str, start: date | None, end: date | None
    ) -> CourseReport:
        course = _course_access(conn, actor, course_id, manager_only=False)
        ended = _ended_sessions(course_id, start, end)
        sessions = conn.execute(
            select(func.count()).select_from(AttendanceSession).where(*ended)
        ).scalar_one()
        R = AttendanceRecord  # noqa: N806
        counts = (
            select(
                R.user_id,
                User.name,
                _count("present"),
                _count("late"),
                _count("absent"),
                _count("excused"),
                func.count(),
            )
            .join(AttendanceSession, AttendanceSession.id == R.session_id)
            .join(User, User.id == R.user_id)
            .where(*ended)
            .group_by(R.user_id, User.name)
        )
        roster = (
            select(Enrollment.user_id, User.name)
            .join(User, User.id == Enrollment.user_id)
            .where(Enrollment.course_id == course_id, Enrollment.status == "approved")
        )
        if course.relation != "manager":
            counts = counts.where(R.user_id == actor.user_id)
            roster = roster.where(Enrollment.user_id == actor.user_id)
        rows: dict[str, StudentAttendance] = {}
        # Approved students with no record in range still get a row (of zeros).
        for user_id, name in conn.execute(roster):
            rows[user_id] = StudentAttendance(
                user_id=user_id,
                name=name,
                present=0,
                late=0,
                absent=0,
                excused=0,
                sessions=0,
                attendance_rate=None,
            )
        # Students with records but no approved enrollment now (rejected since) keep their history.
        for user_id, name, present, late, absent, excused, total in conn.execute(counts):
            rows[user_id] = StudentAttendance(
                user_id=user_id,
                name=name,
                present=int(present),
                late=int(late),
                absent=int(absent),
                excused=int(excused),
                sessions=int(total),
                attendance_rate=attendance_rate(int(present), int(late), int(excused), int(total)),
            )
        students = sorted(rows.values(), key=lambda s: (s.name.casefold(), s.user_id))
        return CourseReport(
            course_id=course_id,
            sessions=int(sessions),
            from_=start.isoformat() if start else None,
            to=end.isoformat() if end else None,
            students=students,
        )

    async def course_report_csv(
        self, actor: Identity, course_id: str, *, start: date | None = None, end: date | None = None
    ) -> str:
        report = await self.course_report(actor, course_id, start=start, end=end)
        return _csv(
            _COURSE_REPORT_COLUMNS,
            (
                [
                    csv_safe(s.user_id),
                    csv_safe(s.name),
                    s.present,
                    s.late,
                    s.absent,
                    s.excused,
                    s.sessions,
                    "" if s.attendance_rate is None else f"{s.attendance_rate:.4f}",
                ]
                for s in report.students
            ),
        )

    async def student_history(
        self,
        actor: Identity,
        course_id: str,
        user_id: str,
        *,
        start: date | None = None,
        end: date | None = None,
    ) -> StudentHistory:
        """One student's record in each ended session (the teacher and admins: anyone; a student: itself)."""
        _check_range(start, end)

        def read(conn: Connection) -> StudentHistory:
            course = _course_access(conn, actor, course_id, manager_only=False)
            if course.relation != "manager" and user_id != actor.user_id:
                raise Forbidden("A student can see only its own attendance; ask the course's teacher")
            name = conn.execute(select(User.name).where(User.id == user_id)).scalar_one_or_none()
            S, R = AttendanceSession, AttendanceRecord  # noqa: N806
            rows = conn.execute(
                select(S.id, S.topic, S.started_at, R.status)
                .join(R, R.session_id == S.id)
                .where(*_ended_sessions(course_id, start, end), R.user_id == user_id)
                .order_by(S.started_at, S.id)
            ).all()
            if name is None or (not rows and not _approved(conn, course_id, user_id)):
                raise NotFound(f"User {user_id!r} is not a student of course {course_id!r}")
            return StudentHistory(
                course_id=course_id,
                user_id=user_id,
                name=name,
                from_=start.isoformat() if start else None,
                to=end.isoformat() if end else None,
                sessions=[
                    SessionAttendance(session_id=sid, topic=topic, started_at=iso_z(at) or "", status=status)
                    for sid, topic, at, status in rows
                ],
            )

        return await self.database.run_read(read)

    # -------------------------------------------------------------- session CSV

    async def session_csv(self, actor: Identity, session_id: str) -> SessionCsv:
        """A header and one row per roster record (the course's teacher and admins)."""
        return await self.database.run_read(lambda conn: self._session_csv(conn, actor, session_id))

    def _session_csv(self, conn: Connection, actor: Identity, session_id: str) -> SessionCsv:
        session = conn.execute(
            select(AttendanceSession.course_id, AttendanceSession.started_at).where(
                AttendanceSession.id == session_id
            )
        ).first()
        if session is None:
            raise NotFound(f"Session {session_id!r} not found")
        course_id, started_at = session
        try:
            _course_access(conn, actor, course_id, manager_only=True, what="download the report")
        except NotFound:
            raise NotFound(f"Session {session_id!r} not found") from None
        R = AttendanceRecord  # noqa: N806
        rows: list[tuple[Any, ...]] = list(
            conn.execute(
                select(
                    R.user_id,
                    User.name,
                    User.email,
                    R.status,
                    R.checked_in_at,
                    R.marked_at,
                    R.marked_by,
                    R.remarks,
                )
                .join(User, User.id == R.user_id)
                .where(R.session_id == session_id)
                .order_by(User.name, User.id)
            )
        )
        # A roster still being written (service.roster_fill): its missing rows are absent.
        missing = conn.execute(missing_rows(session_id).add_columns(User.email)).all()
        if missing:
            rows += [(uid, name, email, "absent", None, None, None, None) for uid, name, email in missing]
            rows.sort(key=lambda row: (row[1], row[0]))
        body = _csv(
            _SESSION_REPORT_COLUMNS,
            (
                [
                    csv_safe(user_id),
                    csv_safe(name),
                    csv_safe(email or ""),
                    status,
                    iso_z(checked_in_at) or "",
                    iso_z(marked_at) or "",
                    csv_safe(marked_by or ""),
                    csv_safe(remarks or ""),
                ]
                for user_id, name, email, status, checked_in_at, marked_at, marked_by, remarks in rows
            ),
        )
        return SessionCsv(course_id, session_id, started_at, body)

    # --------------------------------------------------------------------- xAPI

    async def course_xapi(
        self,
        actor: Identity,
        course_id: str,
        base_url: str,
        *,
        start: date | None = None,
        end: date | None = None,
    ) -> list[dict[str, Any]]:
        """xAPI 1.0.3 ``attended`` statements, one per record of the course's ended sessions."""
        _check_range(start, end)

        def read(conn: Connection) -> list[dict[str, Any]]:
            course = _course_access(
                conn, actor, course_id, manager_only=True, what="export the course's records"
            )
            where = _ended_sessions(course_id, start, end)
            return xapi.statements(conn, course.as_xapi(), where, base_url)

        return await self.database.run_read(read)

    async def session_xapi(self, actor: Identity, session_id: str, base_url: str) -> list[dict[str, Any]]:
        """The same statements for one ended session."""

        def read(conn: Connection) -> list[dict[str, Any]]:
            course_id = conn.execute(
                select(AttendanceSession.course_id).where(AttendanceSession.id == session_id)
            ).scalar_one_or_none()
            if course_id is None:
                raise NotFound(f"Session {session_id!r} not found")
            try:
                course = _course_access(
                    conn, actor, course_id, manager_only=True, what="export the session's records"
                )
            except NotFound:
                raise NotFound(f"Session {session_id!r} not found") from None
            where = [AttendanceSession.id == session_id, AttendanceSession.status == "ended"]
            return xapi.statements(conn, course.as_xapi(), where, base_url)

        return await self.database.run_read(read)


def _course_access(
    conn: Connection, actor: Identity, course_id: str, *, manager_only: bool, what: str = "do this"
) -> _Course:
    """The course and the caller's relation to it, or the contract's 404/403."""
    teacher = aliased(User)
    row = conn.execute(
        select(Course.id, Course.code, Course.title, Course.teacher_id, teacher.name, Enrollment.status)
        .add_columns(CourseManager.role)
        .join(teacher, teacher.id == Course.teacher_id)
        .outerjoin(Enrollment, and_(Enrollment.course_id == Course.id, Enrollment.user_id == actor.user_id))
        .outerjoin(
            CourseManager, and_(CourseManager.course_id == Course.id, CourseManager.user_id == actor.user_id)
        )
        .where(Course.id == course_id)
    ).first()
    if row is None:
        raise NotFound(f"Course {course_id!r} not found")
    cid, code, title, teacher_id, teacher_name, enrollment, manager_role = row
    relation: _Relation
    if manages(actor, teacher_id, manager_role is not None):
        relation = "manager"
    elif enrollment == "approved":
        relation = "member"
    elif enrollment == "pending":
        raise Forbidden(
            f"Your enrollment in course {course_id!r} is pending; ask the course's teacher to approve it"
        )
    else:
        raise NotFound(f"Course {course_id!r} not found")
    if manager_only and relation != "manager":
        raise Forbidden(f"Only the teachers of course {course_id!r} or an admin can {what}")
    return _Course(cid, code, title, teacher_id, teacher_name, relation)


def _approved(conn: Connection, course_id: str, user_id: str) -> bool:
    status = conn.execute(
        select(Enrollment.status).where(Enrollment.course_id == course_id, Enrollment.user_id == user_id)
    ).scalar_one_or_none()
    return status == "approved"


def _check_range(start: date | None, end: date | None) -> None:
    if start is not None and end is not None and start > end:
        raise InvalidInput(
            f"from={start.isoformat()} is after to={end.isoformat()}: swap them or widen the range"
        )


def _ended_sessions(course_id: str, start: date | None, end: date | None) -> list[ColumnElement[bool]]:
    """The course's ended sessions that started within [start, end] (UTC days, both inclusive)."""
    S = AttendanceSession  # noqa: N806
    where: list[ColumnElement[bool]] = [S.course_id == course_id, S.status == "ended"]
    if start is not None:
        where.append(S.started_at >= datetime.combine(start, time(), UTC))
    if end is not None:
        where.append(S.started_at < datetime.combine(end + timedelta(days=1), time(), UTC))
    return where


def _csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


CSV_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: str) -> str:
    """Keep spreadsheet programs from running a cell as a formula (prefix it with ``'``)."""
    return "'" + value if value.startswith(CSV_FORMULA_PREFIXES) else value
