"""The service layer: the only code that changes state.

Every operation is one transaction. Transitions are conditional updates
(``UPDATE … WHERE status = 'active'``) or primary keys, so two clicks, two
nodes or a timer racing a teacher give one result. Domain events are collected
during the transaction and published only after it commits.

Authorization comes from data: the course's teacher and admins manage a
course; students with an approved enrollment are its members. A caller with
no relation to a course gets :class:`NotFound`, the same as for a course that
does not exist; a related caller without the right gets :class:`Forbidden`.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import (
    Select,
    String,
    and_,
    bindparam,
    case,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from attendance_live.auth.tokens import Identity
from attendance_live.db.engine import Database
from attendance_live.db.models import (
    AttendanceRecord,
    AttendanceSession,
    Base,
    Course,
    Enrollment,
    User,
)
from attendance_live.service.cache import Caches, CourseMembers
from attendance_live.service.errors import Conflict, Forbidden, InvalidInput, NotFound
from attendance_live.service.events import (
    DomainEvent,
    EnrollmentChanged,
    EventBus,
    RecordChanged,
    SessionEnded,
    SessionStarted,
)
from attendance_live.service.users import UserDirectory
from attendance_live.service.views import (
    ActiveSession,
    ActiveSessions,
    CourseView,
    EnrollmentView,
    RecordView,
    SessionView,
    Statistics,
    UserView,
)
from attendance_live.timeutil import Clock, iso_z, utcnow

__all__ = ["SYSTEM", "AttendanceService", "Relation"]

log = logging.getLogger(__name__)

SYSTEM = "system"
BATCH_ROWS = 500  # rows per multi-row statement (SQLite allows 32,766 parameters)
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")
PRESENT_STATUSES = ("present", "late")
Relation = Literal["manager", "member", "pending"]
CSV_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def validate_id(value: str, what: str) -> str:
    if not ID_PATTERN.match(value):
        raise InvalidInput(
            f"{what} {value[:40]!r} is not valid: use 1 to 128 letters, digits or ._:@- "
            "starting with a letter or digit"
        )
    return value


@dataclass(slots=True)
class _Unit:
    """One transaction and the events it will publish once committed."""

    db: AsyncSession
    events: list[DomainEvent] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Access:
    course: Course
    teacher_name: str
    relation: Relation

    @property
    def manages(self) -> bool:
        return self.relation == "manager"


class _CheckIn:
    """The check-in's statements, built once with bound parameters (``p_sid``, ``p_uid``, …)."""

    def __init__(self) -> None:
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
        self.insert_sqlite = (
            sqlite_insert(R).values(**row).on_conflict_do_nothing(index_elements=["session_id", "user_id"])
        ).returning(*returning)
        self.insert_pg = (
            pg_insert(R).values(**row).on_conflict_do_nothing(index_elements=["session_id", "user_id"])
        ).returning(*returning)


_CHECK_IN = _CheckIn()


class AttendanceService:
    """Courses, enrollments and attendance sessions; see the module docstring."""

    def __init__(
        self,
        database: Database,
        bus: EventBus,
        *,
        clock: Clock = utcnow,
        default_max_minutes: int = 180,
        default_late_minutes: int = 10,
        caches: Caches | None = None,
    ) -> None:
        self.database = database
        self.bus = bus
        self.caches = caches or Caches()
        self.clock = clock
        self.default_max_minutes = default_max_minutes
        self.default_late_minutes = default_late_minutes
        self.users = UserDirectory(database, clock)

    # ------------------------------------------------------------------ plumbing

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[_Unit]:
        events: list[DomainEvent] = []
        async with self.database.write() as session:
            yield _Unit(session, events)
        await self._committed(events)  # reached only when the transaction committed

    async def _committed(self, events: list[DomainEvent]) -> None:
        # Caches first, so that whoever reacts to an event reads the new state.
        for event in events:
            self.caches.apply(event)
        for event in events:
            await self.bus.publish(event)

    def _upsert(self, model: type[Base]) -> PgInsert | SqliteInsert:
        """An INSERT that knows ON CONFLICT, in the dialect in use."""
        if self.database.dialect == "postgresql":
            return pg_insert(model)
        return sqlite_insert(model)

    def _relation_query(self, actor: Identity) -> Select[Course, str, str]:
        """A course with its teacher's name and the caller's enrollment status."""
        return (
            select(Course, User.name, Enrollment.status)
            .join(User, User.id == Course.teacher_id)
            .outerjoin(
                Enrollment,
                and_(Enrollment.course_id == Course.id, Enrollment.user_id == actor.user_id),
            )
        )

    def _relation(
        self, actor: Identity, course: Course, teacher_name: str, enrollment: str | None, course_id: str
    ) -> _Access:
        if actor.is_admin or course.teacher_id == actor.user_id:
            return _Access(course, teacher_name, "manager")
        if enrollment == "approved":
            return _Access(course, teacher_name, "member")
        if enrollment == "pending":
            return _Access(course, teacher_name, "pending")
        raise NotFound(f"Course {course_id!r} not found")

    async def _access(self, db: AsyncSession, actor: Identity, course_id: str) -> _Access:
        row = (await db.execute(self._relation_query(actor).where(Course.id == course_id))).first()
        if row is None:
            raise NotFound(f"Course {course_id!r} not found")
        course, teacher_name, enrollment = row
        return self._relation(actor, course, teacher_name, enrollment, course_id)

    async def _member_access(self, db: AsyncSession, actor: Identity, course_id: str) -> _Access:
        access = await self._access(db, actor, course_id)
        if access.relation == "pending":
            raise Forbidden(
                f"Your enrollment in course {course_id!r} is pending; ask the course's teacher to approve it"
            )
        return access

    async def _manager_access(self, db: AsyncSession, actor: Identity, course_id: str) -> _Access:
        access = await self._member_access(db, actor, course_id)
        if not access.manages:
            raise Forbidden(f"Only the teacher of course {course_id!r} or an admin can do this")
        return access

    async def _session_access(
        self, db: AsyncSession, actor: Identity, session_id: str, *, lock: bool = False
    ) -> tuple[AttendanceSession, _Access]:
        """The session and the caller's relation to its course, in one query."""
        query = (
            self._relation_query(actor)
            .add_columns(AttendanceSession)
            .join(AttendanceSession, AttendanceSession.course_id == Course.id)
            .where(AttendanceSession.id == session_id)
        )
        if lock:
            # PostgreSQL: holds off a concurrent end until this transaction commits.
            query = query.with_for_update(read=True, of=AttendanceSession)
        row = (await db.execute(query)).first()
        if row is None:
            raise NotFound(f"Session {session_id!r} not found")
        course, teacher_name, enrollment, attendance = row
        try:
            access = self._relation(actor, course, teacher_name, enrollment, course.id)
        except NotFound:
            raise NotFound(f"Session {session_id!r} not found") from None
        return attendance, access

    # ------------------------------------------------------------------- users

    async def remember_user(self, actor: Identity) -> None:
        """Create or refresh the user's row from its token's claims, now."""
        await self.users.remember(actor)

    def remember_user_later(self, actor: Identity) -> None:
        """Create or refresh the user's row in the next background batch."""
        self.users.remember_later(actor)

    async def me(self, actor: Identity) -> UserView:
        return UserView(id=actor.user_id, name=actor.name, email=actor.email, role=actor.role)

    # ----------------------------------------------------------------- courses

    async def create_course(
        self, actor: Identity, *, course_id: str | None, code: str, title: str
    ) -> CourseView:
        if not actor.may_create_courses:
            raise Forbidden("Only teachers and admins can create courses")
        course_id = validate_id(course_id, "course id") if course_id else uuid.uuid4().hex
        now = self.clock()
        async with self._write() as unit:
            if await unit.db.get(Course, course_id) is not None:
                raise Conflict(f"Course {course_id!r} already exists; choose another id")
            await self.users.ensure(unit.db, actor)
            unit.db.add(
                Course(id=course_id, code=code, title=title, teacher_id=actor.user_id, created_at=now)
            )
        return CourseView(
            id=course_id,
            code=code,
            title=title,
            teacher_id=actor.user_id,
            teacher_name=actor.name,
            created_at=iso_z(now) or "",
            my_role="admin" if actor.is_admin else "teacher",
        )

    async def list_courses(self, actor: Identity) -> list[CourseView]:
        async with self.database.read() as db:
            query = select(Course, User.name).join(User, User.id == Course.teacher_id)
            if not actor.is_admin:
                approved = select(Enrollment.course_id).where(
                    Enrollment.user_id == actor.user_id, Enrollment.status == "approved"
                )
                query = query.where(or_(Course.teacher_id == actor.user_id, Course.id.in_(approved)))
            rows = (await db.execute(query.order_by(Course.code, Course.id))).all()
        return [self._course_view(actor, course, name) for course, name in rows]

    def _course_view(self, actor: Identity, course: Course, teacher_name: str) -> CourseView:
        if course.teacher_id == actor.user_id:
            role = "teacher"
        elif actor.is_admin:
            role = "admin"
        else:
            role = "student"
        return CourseView(
            id=course.id,
            code=course.code,
            title=course.title,
            teacher_id=course.teacher_id,
            teacher_name=teacher_name,
            created_at=iso_z(course.created_at) or "",
            my_role=role,
        )

    async def get_course(self, actor: Identity, course_id: str) -> CourseView:
        async with self.database.read() as db:
            access = await self._member_access(db, actor, course_id)
        return self._course_view(actor, access.course, access.teacher_name)

    # ------------------------------------------------------------- enrollments

    async def put_enrollment(
        self,
        actor: Identity,
        course_id: str,
        user_id: str,
        *,
        status: str,
        name: str | None,
        email: str | None,
    ) -> tuple[EnrollmentView, bool]:
        """Add or change an enrollment; returns it and whether it was created."""
        validate_id(user_id, "user id")
        now = self.clock()
        async with self._write() as unit:
            access = await self._manager_access(unit.db, actor, course_id)
            if user_id == access.course.teacher_id:
                raise InvalidInput(f"User {user_id!r} teaches course {course_id!r} and cannot enroll in it")
            user = await unit.db.get(User, user_id)
            if user is None:
                user = User(
                    id=user_id,
                    name=name or user_id,
                    email=email,
                    role="student",
                    created_at=now,
                    updated_at=now,
                )
                unit.db.add(user)
            else:
                if name:
                    user.name = name
                if email:
                    user.email = email
                user.updated_at = now
            enrollment = await unit.db.get(Enrollment, (course_id, user_id))
            created = enrollment is None
            if enrollment is None:
                enrollment = Enrollment(
                    course_id=course_id, user_id=user_id, status=status, created_at=now, updated_at=now
                )
                unit.db.add(enrollment)
            elif enrollment.status != status:
                enrollment.status = status
                enrollment.updated_at = now
            await unit.db.flush()
            unit.events.append(EnrollmentChanged(course_id, user_id, status))
            view = _enrollment_view(enrollment, user)
        self.users.forget(user_id)
        return view, created

    async def put_enrollments(
        self, actor: Identity, course_id: str, items: Sequence[tuple[str, str, str | None, str | None]]
    ) -> tuple[int, int]:
        """Add or change many enrollments in one transaction; returns (created, updated).

        ``items`` are (user id, status, name, email); a name or email left out
        keeps what is stored.
        """
        ids = [user_id for user_id, *_ in items]
        if len(set(ids)) != len(ids):
            raise InvalidInput("Each user may appear once in a batch; remove the duplicates")
        now = self.clock()
        async with self._write() as unit:
            access = await self._manager_access(unit.db, actor, course_id)
            if access.course.teacher_id in ids:
                raise InvalidInput(
                    f"User {access.course.teacher_id!r} teaches course {course_id!r} and cannot enroll in it"
                )
            existing: set[str] = set()
            for start in range(0, len(items), BATCH_ROWS):
                chunk = items[start : start + BATCH_ROWS]
                existing.update(
                    (
                        await unit.db.execute(
                            select(Enrollment.user_id).where(
                                Enrollment.course_id == course_id,
                                Enrollment.user_id.in_([uid for uid, *_ in chunk]),
                            )
                        )
                    ).scalars()
                )
                users = self._upsert(User).values(
                    [
                        {
                            "id": uid,
                            "name": name or uid,
                            "email": email,
                            "role": "student",
                            "created_at": now,
                            "updated_at": now,
                        }
                        for uid, _, name, email in chunk
                    ]
                )
                await unit.db.execute(
                    users.on_conflict_do_update(
                        index_elements=[User.id],
                        set_={
                            # the id stands in for a name left out: keep the stored one
                            "name": case(
                                (users.excluded.name == users.excluded.id, User.name),
                                else_=users.excluded.name,
                            ),
                            "email": func.coalesce(users.excluded.email, User.email),
                            "updated_at": now,
                        },
                    )
                )
                enrollments = self._upsert(Enrollment).values(
                    [
                        {
                            "course_id": course_id,
                            "user_id": uid,
                            "status": status,
                            "created_at": now,
                            "updated_at": now,
                        }
                        for uid, status, _, _ in chunk
                    ]
                )
                await unit.db.execute(
                    enrollments.on_conflict_do_update(
                        index_elements=[Enrollment.course_id, Enrollment.user_id],
                        set_={"status": enrollments.excluded.status, "updated_at": now},
                    )
                )
            unit.events.extend(EnrollmentChanged(course_id, uid, status) for uid, status, _, _ in items)
        for user_id in ids:
            self.users.forget(user_id)
        return len(ids) - len(existing), len(existing)

    async def list_enrollments(self, actor: Identity, course_id: str) -> list[EnrollmentView]:
        async with self.database.read() as db:
            await self._manager_access(db, actor, course_id)
            rows = (
                await db.execute(
                    select(Enrollment, User)
                    .join(User, User.id == Enrollment.user_id)
                    .where(Enrollment.course_id == course_id)
                    .order_by(User.name, User.id)
                )
            ).all()
        return [_enrollment_view(enrollment, user) for enrollment, user in rows]

    async def approved_member(self, actor: Identity, course_id: str) -> bool:
        """Whether the caller may follow the course (teacher, admin, approved student).

        Served from the course directory cache: no query once the course is loaded.
        """
        members = await self.caches.members.get(course_id, lambda: self._load_members(course_id))
        if members is None:
            return False
        return (
            actor.is_admin
            or members.teacher_id == actor.user_id
            or members.statuses.get(actor.user_id) == "approved"
        )

    async def _load_members(self, course_id: str) -> CourseMembers | None:
        return await self.database.run_read(lambda conn: _members_in(conn, course_id))

    # ---------------------------------------------------------------- sessions

    async def start_session(
        self,
        actor: Identity,
        course_id: str,
        *,
        topic: str | None = None,
        max_duration_minutes: int | None = None,
        late_after_minutes: int | None = None,
    ) -> SessionView:
        now = self.clock()
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
        session_id = uuid.uuid4().hex
        async with self._write() as unit:
            access = await self._manager_access(unit.db, actor, course_id)
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
                )
            )
            await unit.db.flush()
            # The roster: every approved enrollment, each absent until it checks in.
            await unit.db.execute(
                insert(AttendanceRecord).from_select(
                    ["session_id", "user_id", "status"],
                    select(
                        literal(session_id, AttendanceRecord.session_id.type),
                        Enrollment.user_id,
                        literal("absent", AttendanceRecord.status.type),
                    ).where(Enrollment.course_id == course_id, Enrollment.status == "approved"),
                )
            )
            unit.events.append(SessionStarted(course_id, session_id))
        # Read after the commit: the announcement goes out while this response,
        # with the whole roster, is being built.
        async with self.database.read() as db:
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

    async def list_sessions(self, actor: Identity, course_id: str) -> list[SessionView]:
        async with self.database.read() as db:
            access = await self._manager_access(db, actor, course_id)
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

    async def check_in(self, actor: Identity, session_id: str) -> RecordView:
        """Check the caller in; idempotent. The hot path of a lecture hall, so it is lean:

        one read answers refusals, repeats and records the teacher already marked
        without a write; otherwise one conditional ``UPDATE … RETURNING`` in a
        short write transaction. Both run as single synchronous units
        (``Database.run_read``/``run_write``) with statements built once
        (``_CheckIn``): per-statement driver round trips, statement building and
        the ORM were most of a check-in's cost.
        """
        now = self.clock()
        q = _CHECK_IN
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
            inserted = conn.execute(q.insert_pg if postgres else q.insert_sqlite, params).first()
            if inserted is None:  # another check-in of this user won the race
                return False, tuple(conn.execute(q.state, params).one()[1:])
            return True, tuple(inserted)

        changed, record = await self.database.run_write(write)
        if changed:
            await self._committed([RecordChanged(course_id, session_id, actor.user_id, True)])
        return view(record)

    async def mark_record(
        self,
        actor: Identity,
        session_id: str,
        user_id: str,
        *,
        status: str,
        remarks: str | None,
    ) -> RecordView:
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
            unit.events.append(
                RecordChanged(
                    attendance.course_id,
                    session_id,
                    user_id,
                    was_counted != (status in PRESENT_STATUSES),
                )
            )
            view = await self._record(unit.db, session_id, user_id)
        return view

    async def end_session(self, actor: Identity, session_id: str) -> SessionView:
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
            async with self._write() as unit:
                if await self._end(unit, course_id, session_id, None, SYSTEM):
                    ended.append(session_id)
        if ended:
            log.info("auto-ended %d session(s) past their maximum duration", len(ended))
        return ended

    async def next_expiry(self) -> datetime | None:
        async with self.database.read() as db:
            value = (
                await db.execute(
                    select(func.min(AttendanceSession.expires_at)).where(AttendanceSession.status == "active")
                )
            ).scalar_one_or_none()
        return value

    async def _end(
        self, unit: _Unit, course_id: str, session_id: str, by_id: str | None, by_name: str
    ) -> bool:
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

    # ---------------------------------------------------------------- snapshots

    async def active_sessions(self, actor: Identity, course_id: str) -> ActiveSessions:
        """The seed's ``activeSessionsData`` body, for a member of the course."""
        async with self.database.read() as db:
            await self._member_access(db, actor, course_id)
            return await self._active_sessions(db, course_id)

    async def active_sessions_snapshot(self, course_id: str) -> ActiveSessions:
        """The same body without an access check (for an authorized subscriber or room).

        Served from the snapshot cache, which every change to the course's
        sessions invalidates before it is announced.
        """

        async def load() -> ActiveSessions:
            return await self.database.run_read(lambda conn: _active_sessions_in(conn, course_id))

        snapshot = await self.caches.snapshots.get(course_id, load)
        assert snapshot is not None
        return snapshot

    async def _active_sessions(self, db: AsyncSession, course_id: str) -> ActiveSessions:
        return await db.run_sync(lambda session: _active_sessions_in(session.connection(), course_id))

    async def session_summary(self, session_id: str) -> SessionView | None:
        """A session without its records, for announcements (no access check): one read."""
        return await self.database.run_read(lambda conn: _summary_in(conn, session_id))

    async def roster(self, actor: Identity, session_id: str) -> SessionView:
        """The whole session with every record, for the course's teacher and admins."""
        async with self.database.read() as db:
            _, access = await self._session_access(db, actor, session_id)
            if not access.manages:
                raise Forbidden("Only the course's teacher or an admin can follow the roster")
            return await self._session_view(db, session_id, access, actor)

    async def record_with_statistics(
        self, session_id: str, user_id: str
    ) -> tuple[RecordView, Statistics] | None:
        async with self.database.read() as db:
            try:
                record = await self._record(db, session_id, user_id)
            except NotFound:
                return None
            return record, await self._statistics(db, session_id)

    async def report_csv(self, actor: Identity, session_id: str) -> tuple[SessionView, str]:
        async with self.database.read() as db:
            _, access = await self._session_access(db, actor, session_id)
            if not access.manages:
                raise Forbidden("Only the course's teacher or an admin can download the report")
            view = await self._session_view(db, session_id, access, actor)
            emails = dict(
                (
                    await db.execute(
                        select(User.id, User.email)
                        .join(AttendanceRecord, AttendanceRecord.user_id == User.id)
                        .where(AttendanceRecord.session_id == session_id)
                    )
                ).all()
            )
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(["user_id", "name", "email", "status", "checked_in_at", "marked_by", "remarks"])
        for record in view.records:
            checked_in = record.marked_at if record.status in PRESENT_STATUSES else ""
            writer.writerow(
                [
                    _csv_safe(record.user_id),
                    _csv_safe(record.name),
                    _csv_safe(emails.get(record.user_id) or ""),
                    record.status,
                    checked_in or "",
                    _csv_safe(record.marked_by or ""),
                    _csv_safe(record.remarks or ""),
                ]
            )
        return view, out.getvalue()

    # ------------------------------------------------------------------- views

    async def _statistics(self, db: AsyncSession, session_id: str) -> Statistics:
        rows = (
            await db.execute(
                select(AttendanceRecord.status, func.count())
                .where(AttendanceRecord.session_id == session_id)
                .group_by(AttendanceRecord.status)
            )
        ).all()
        return Statistics.from_counts({status: int(n) for status, n in rows})

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
        return _record_view(row[0], row[1])

    async def _session_view(
        self,
        db: AsyncSession,
        session_id: str,
        access: _Access,
        actor: Identity,
        *,
        with_records: bool = True,
    ) -> SessionView:
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
            records = [_record_view(r, name) for r, name in (await db.execute(query)).all()]
        return await self._build_view(db, attendance, access.course.teacher_id, access.teacher_name, records)

    async def _build_view(
        self,
        db: AsyncSession,
        attendance: AttendanceSession,
        teacher_id: str,
        teacher_name: str,
        records: Sequence[RecordView],
    ) -> SessionView:
        statistics = await self._statistics(db, attendance.id)
        return _session_view_of(
            lambda column: getattr(attendance, column), teacher_id, teacher_name, statistics, records
        )


def _session_view_of(
    get: Callable[[str], Any],
    teacher_id: str,
    teacher_name: str,
    statistics: Statistics,
    records: Sequence[RecordView],
) -> SessionView:
    """A session body from a session row (``get`` reads one of its columns)."""
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
        statistics=statistics,
        final_statistics=final,
        records=list(records),
    )


class _Reads:
    """Hot reads' statements, built once with bound parameters (``p_cid``)."""

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
                func.count(AttendanceRecord.user_id),
            )
            .join(Course, Course.id == AttendanceSession.course_id)
            .outerjoin(AttendanceRecord, AttendanceRecord.session_id == AttendanceSession.id)
            .where(AttendanceSession.course_id == cid, AttendanceSession.status == "active")
            .group_by(
                AttendanceSession.id, AttendanceSession.started_at, AttendanceSession.topic, Course.teacher_id
            )
            .order_by(AttendanceSession.started_at, AttendanceSession.id)
        )
        self.teacher = select(Course.teacher_id).where(Course.id == cid)
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
        self.statistics = (
            select(AttendanceRecord.status, func.count())
            .where(AttendanceRecord.session_id == sid)
            .group_by(AttendanceRecord.status)
        )
        self.enrollments = select(Enrollment.user_id, Enrollment.status).where(Enrollment.course_id == cid)


_READS = _Reads()


def _active_sessions_in(conn: Connection, course_id: str) -> ActiveSessions:
    """The seed's ``activeSessionsData`` body, read on ``conn``."""
    rows = conn.execute(_READS.active, {"p_cid": course_id}).all()
    return ActiveSessions(
        course_id=course_id,
        activeSessions=[
            ActiveSession(
                sessionId=sid,
                teacherId=teacher_id,
                studentCount=int(count),
                startedAt=iso_z(started_at) or "",
                topic=topic,
                totalStudents=int(total),
            )
            for sid, started_at, topic, teacher_id, count, total in rows
        ],
    )


def _summary_in(conn: Connection, session_id: str) -> SessionView | None:
    row = conn.execute(_READS.summary, {"p_sid": session_id}).first()
    if row is None:
        return None
    m = row._mapping
    counts = {status: n for status, n in conn.execute(_READS.statistics, {"p_sid": session_id})}
    return _session_view_of(
        m.__getitem__, m["teacher_id_"], m["teacher_name_"], Statistics.from_counts(counts), records=[]
    )


def _members_in(conn: Connection, course_id: str) -> CourseMembers | None:
    """The course's teacher and every enrollment's status, or None for no such course."""
    teacher_id = conn.execute(_READS.teacher, {"p_cid": course_id}).scalar_one_or_none()
    if teacher_id is None:
        return None
    rows = conn.execute(_READS.enrollments, {"p_cid": course_id}).all()
    return CourseMembers(teacher_id, {user_id: status for user_id, status in rows})


def _enrollment_view(enrollment: Enrollment, user: User) -> EnrollmentView:
    return EnrollmentView(
        course_id=enrollment.course_id,
        user_id=user.id,
        name=user.name,
        email=user.email,
        status=enrollment.status,
        updated_at=iso_z(enrollment.updated_at) or "",
    )


def _record_view(record: AttendanceRecord, name: str) -> RecordView:
    return RecordView(
        user_id=record.user_id,
        name=name,
        status=record.status,
        marked_at=iso_z(record.marked_at),
        marked_by=record.marked_by,
        remarks=record.remarks,
    )


def _csv_safe(value: str) -> str:
    """Keep spreadsheet programs from running a cell as a formula."""
    return "'" + value if value.startswith(CSV_FORMULA_PREFIXES) else value
