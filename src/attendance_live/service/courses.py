"""Courses and enrollments: create and list courses, add and change enrollments.

``approved_member`` answers the real-time side's "may this socket follow the
course?" from the members cache (``service.cache``), with no query once the
course is loaded; every enrollment change invalidates it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import String, bindparam, or_, select
from sqlalchemy.engine import Connection

from attendance_live.auth.tokens import Identity
from attendance_live.db.models import Course, Enrollment, User
from attendance_live.service.access import AccessRules
from attendance_live.service.cache import CourseMembers
from attendance_live.service.core import BATCH_ROWS, validate_id
from attendance_live.service.errors import Conflict, Forbidden, InvalidInput
from attendance_live.service.events import EnrollmentChanged
from attendance_live.service.users import name_and_email
from attendance_live.service.views import CourseView, EnrollmentView
from attendance_live.timeutil import iso_z
from attendance_live.vocabulary import EnrollmentStatus

__all__ = ["Courses", "EnrollmentItem"]

# (user id, status, name, email) of one enrollment in a batch.
EnrollmentItem = tuple[str, EnrollmentStatus, str | None, str | None]


class Courses(AccessRules):
    """Courses and their enrollments; see the module docstring."""

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
        return [_course_view(actor, course, name) for course, name in rows]

    async def get_course(self, actor: Identity, course_id: str) -> CourseView:
        async with self.database.read() as db:
            access = await self._member_access(db, actor, course_id)
        return _course_view(actor, access.course, access.teacher_name)

    async def put_enrollment(
        self,
        actor: Identity,
        course_id: str,
        user_id: str,
        *,
        status: EnrollmentStatus,
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
        self, actor: Identity, course_id: str, items: Sequence[EnrollmentItem]
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
                users = [
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
                await unit.db.execute(
                    self.database.upsert(
                        User,
                        users,
                        key=[User.id],
                        update=lambda excluded: {**name_and_email(excluded), "updated_at": now},
                    )
                )
                enrollments = [
                    {
                        "course_id": course_id,
                        "user_id": uid,
                        "status": status,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for uid, status, _, _ in chunk
                ]
                await unit.db.execute(
                    self.database.upsert(
                        Enrollment,
                        enrollments,
                        key=[Enrollment.course_id, Enrollment.user_id],
                        update=lambda excluded: {"status": excluded.status, "updated_at": now},
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

        Served from the members cache: no query once the course is loaded.
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


def _course_view(actor: Identity, course: Course, teacher_name: str) -> CourseView:
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


def _enrollment_view(enrollment: Enrollment, user: User) -> EnrollmentView:
    return EnrollmentView(
        course_id=enrollment.course_id,
        user_id=user.id,
        name=user.name,
        email=user.email,
        status=enrollment.status,
        updated_at=iso_z(enrollment.updated_at) or "",
    )


_COURSE_ID = bindparam("p_cid", type_=String())
_TEACHER = select(Course.teacher_id).where(Course.id == _COURSE_ID)
_ENROLLMENTS = select(Enrollment.user_id, Enrollment.status).where(Enrollment.course_id == _COURSE_ID)


def _members_in(conn: Connection, course_id: str) -> CourseMembers | None:
    """The course's teacher and every enrollment's status, or None for no such course."""
    teacher_id = conn.execute(_TEACHER, {"p_cid": course_id}).scalar_one_or_none()
    if teacher_id is None:
        return None
    rows = conn.execute(_ENROLLMENTS, {"p_cid": course_id}).all()
    return CourseMembers(teacher_id, {user_id: status for user_id, status in rows})
