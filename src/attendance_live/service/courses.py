"""Courses and enrollments: create, edit, archive and list courses; add, change and remove
enrollments one at a time (many at once: ``service.roster``).

``approved_member`` answers the real-time side's "may this socket follow the
course?" from the members cache (``service.cache``), with no query once the
course is loaded; every enrollment change invalidates it.
"""

from __future__ import annotations

import uuid

from sqlalchemy import String, bindparam, delete, exists, or_, select
from sqlalchemy.engine import Connection

from attendance_live.auth.tokens import Identity
from attendance_live.db.models import AttendanceSession, Course, CourseManager, Enrollment, User
from attendance_live.service.access import AccessRules, managed_by, manages
from attendance_live.service.cache import CourseMembers
from attendance_live.service.core import validate_id
from attendance_live.service.errors import Conflict, Forbidden, InvalidInput, NotFound
from attendance_live.service.events import EnrollmentChanged
from attendance_live.service.views import CourseView, EnrollmentView
from attendance_live.timeutil import iso_z
from attendance_live.vocabulary import EnrollmentStatus, ManagerRole

__all__ = ["Courses"]


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
            manager_role="owner",
        )

    async def list_courses(self, actor: Identity, *, include_archived: bool = False) -> list[CourseView]:
        """The caller's courses; archived ones only for their managers, and only when asked."""
        async with self.database.read() as db:
            query = (
                select(Course, User.name, CourseManager.role)
                .join(User, User.id == Course.teacher_id)
                .outerjoin(
                    CourseManager,
                    (CourseManager.course_id == Course.id) & (CourseManager.user_id == actor.user_id),
                )
            )
            if not actor.is_admin:
                approved = select(Enrollment.course_id).where(
                    Enrollment.user_id == actor.user_id, Enrollment.status == "approved"
                )
                as_student = Course.id.in_(approved) & Course.archived_at.is_(None)
                query = query.where(or_(managed_by(actor.user_id), as_student))
            if not include_archived:
                query = query.where(Course.archived_at.is_(None))
            rows = (await db.execute(query.order_by(Course.code, Course.id))).all()
        return [_course_view(actor, course, name, role) for course, name, role in rows]

    async def get_course(self, actor: Identity, course_id: str) -> CourseView:
        async with self.database.read() as db:
            access = await self.member_access(db, actor, course_id)
        return _course_view(actor, access.course, access.teacher_name, access.manager_role)

    async def update_course(
        self, actor: Identity, course_id: str, *, code: str | None, title: str | None
    ) -> CourseView:
        """Change a course's code or title (a value left out stays)."""
        async with self._write() as unit:
            access = await self.manager_access(unit.db, actor, course_id)
            if code is not None:
                access.course.code = code
            if title is not None:
                access.course.title = title
            await unit.db.flush()
            view = _course_view(actor, access.course, access.teacher_name, access.manager_role)
        return view

    async def archive_course(self, actor: Identity, course_id: str, *, archived: bool) -> CourseView:
        """Archive (no new session, hidden from students and the default list) or bring it back.

        Refused while a session runs: end it first, so nobody is left checking in to a course
        they can no longer see. Idempotent.
        """
        now = self.clock()
        async with self._write() as unit:
            access = await self.manager_access(unit.db, actor, course_id)
            course = access.course
            if archived and course.archived_at is None:
                running = await unit.db.scalar(
                    select(
                        exists().where(
                            AttendanceSession.course_id == course_id, AttendanceSession.status == "active"
                        )
                    )
                )
                if running:
                    raise Conflict(
                        f"Course {course_id!r} has a session running; end it before archiving the course"
                    )
                course.archived_at = now
            elif not archived:
                course.archived_at = None
            await unit.db.flush()
            view = _course_view(actor, course, access.teacher_name, access.manager_role)
        # Students may no longer follow it (or may again): the members cache says so.
        self.caches.members.invalidate(course_id)
        return view

    async def remove_enrollment(self, actor: Identity, course_id: str, user_id: str) -> None:
        """Remove an enrollment; the student's past attendance records stay in the reports."""
        async with self._write() as unit:
            await self.manager_access(unit.db, actor, course_id)
            await self._before_enrollment_change(unit, course_id)
            result = await unit.db.execute(
                delete(Enrollment).where(Enrollment.course_id == course_id, Enrollment.user_id == user_id)
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                raise NotFound(f"User {user_id!r} is not enrolled in course {course_id!r}")
            unit.events.append(EnrollmentChanged(course_id, user_id, "removed"))

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
            access = await self.manager_access(unit.db, actor, course_id)
            if user_id == access.course.teacher_id:
                raise InvalidInput(f"User {user_id!r} teaches course {course_id!r} and cannot enroll in it")
            if await self._manager_role(unit.db, course_id, user_id) is not None:
                raise InvalidInput(
                    f"User {user_id!r} is a co-teacher of course {course_id!r} and cannot enroll in it; "
                    "remove them from its co-teachers first "
                    f"(DELETE /api/courses/{course_id}/managers/{user_id})"
                )
            await self._before_enrollment_change(unit, course_id)
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
            moved = created
            if enrollment is None:
                enrollment = Enrollment(
                    course_id=course_id, user_id=user_id, status=status, created_at=now, updated_at=now
                )
                unit.db.add(enrollment)
            elif enrollment.status != status:
                enrollment.status = status
                enrollment.updated_at = now
                moved = True
            await unit.db.flush()
            if moved:  # an unchanged status moves no socket and invalidates nothing
                unit.events.append(EnrollmentChanged(course_id, user_id, status))
            view = _enrollment_view(enrollment, user)
        self.users.forget(user_id)
        return view, created

    async def list_enrollments(self, actor: Identity, course_id: str) -> list[EnrollmentView]:
        async with self.database.read() as db:
            await self.manager_access(db, actor, course_id)
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
        """Whether the caller may follow the course (a manager, an approved student).

        Served from the members cache: no query once the course is loaded.
        """
        members = await self.caches.members.get(course_id, lambda: self._load_members(course_id))
        if members is None:
            return False
        return _manages(actor, members) or (
            not members.archived and members.statuses.get(actor.user_id) == "approved"
        )

    async def manages_course(self, actor: Identity, course_id: str) -> bool:
        """Whether the caller manages the course (``service.access.manages``, from the members cache)."""
        if actor.is_admin:
            return True
        members = await self.caches.members.get(course_id, lambda: self._load_members(course_id))
        return members is not None and _manages(actor, members)

    async def _load_members(self, course_id: str) -> CourseMembers | None:
        return await self.database.run_read(lambda conn: _members_in(conn, course_id))


def _manages(actor: Identity, members: CourseMembers) -> bool:
    return manages(actor, members.teacher_id, actor.user_id in members.managers)


def _course_view(
    actor: Identity, course: Course, teacher_name: str, manager_role: ManagerRole | None
) -> CourseView:
    if course.teacher_id == actor.user_id or manager_role is not None:
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
        manager_role="owner" if course.teacher_id == actor.user_id else manager_role,
        archived_at=iso_z(course.archived_at),
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
_TEACHER = select(Course.teacher_id, Course.archived_at).where(Course.id == _COURSE_ID)
_ENROLLMENTS = select(Enrollment.user_id, Enrollment.status).where(Enrollment.course_id == _COURSE_ID)
_MANAGERS = select(CourseManager.user_id).where(CourseManager.course_id == _COURSE_ID)


def _members_in(conn: Connection, course_id: str) -> CourseMembers | None:
    """The course's teacher, co-managers and every enrollment's status, or None for no such course."""
    course = conn.execute(_TEACHER, {"p_cid": course_id}).first()
    if course is None:
        return None
    rows = conn.execute(_ENROLLMENTS, {"p_cid": course_id}).all()
    managers = frozenset(conn.execute(_MANAGERS, {"p_cid": course_id}).scalars())
    return CourseMembers(
        course[0], {user_id: status for user_id, status in rows}, course[1] is not None, managers
    )
