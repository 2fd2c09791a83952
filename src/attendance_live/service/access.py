"""Access rules: who may see and manage a course, decided from data.

The course's teacher (its owner), its co-managers (co-teachers and teaching
assistants, ``course_managers``) and admins manage a course: :func:`manages` is
that rule, and every check of it (these queries, the members cache, the
check-in, the reports, the real-time rooms) goes through it or through
:func:`managed_by` (the same rule as SQL, for lists). Students with an approved
enrollment are its members; a pending enrollment is a relation without
rights. A caller with no relation to a course gets :class:`NotFound`, the same
as for a course that does not exist (ids cannot be probed); a related caller
without the right gets :class:`Forbidden`. An archived course exists only for
its managers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from attendance_live.auth.tokens import Identity
from attendance_live.db.models import AttendanceSession, Course, CourseManager, Enrollment, User
from attendance_live.service.core import ServiceCore
from attendance_live.service.errors import Forbidden, NotFound
from attendance_live.vocabulary import EnrollmentStatus, ManagerRole

__all__ = ["Access", "AccessRules", "Relation", "managed_by", "manages"]

Relation = Literal["manager", "member", "pending"]


def manages(actor: Identity, owner_id: str, co_manager: bool) -> bool:
    """The rule: admins, the course's teacher (``owner_id``) and its co-managers manage it."""
    return actor.is_admin or owner_id == actor.user_id or co_manager


def managed_by(user_id: str) -> ColumnElement[bool]:
    """:func:`manages` as SQL on ``courses``, for a non-admin: owned or co-managed by ``user_id``."""
    co_managed = select(CourseManager.course_id).where(CourseManager.user_id == user_id)
    return or_(Course.teacher_id == user_id, Course.id.in_(co_managed))


@dataclass(frozen=True, slots=True)
class Access:
    """A course, its teacher's name, and the caller's relation to it."""

    course: Course
    teacher_name: str
    relation: Relation
    #: The caller's co-manager role (None: not a co-manager; the owner and admins are not).
    manager_role: ManagerRole | None = None

    @property
    def manages(self) -> bool:
        return self.relation == "manager"


class AccessRules(ServiceCore):
    """The checks every operation on a course or a session starts with."""

    def _relation_query(self, actor: Identity) -> Select[Course, str, EnrollmentStatus, ManagerRole]:
        """A course with its teacher's name, the caller's enrollment status and co-manager role."""
        return (
            select(Course, User.name, Enrollment.status, CourseManager.role)
            .join(User, User.id == Course.teacher_id)
            .outerjoin(
                Enrollment,
                and_(Enrollment.course_id == Course.id, Enrollment.user_id == actor.user_id),
            )
            .outerjoin(
                CourseManager,
                and_(CourseManager.course_id == Course.id, CourseManager.user_id == actor.user_id),
            )
        )

    def _relation(
        self,
        actor: Identity,
        course: Course,
        teacher_name: str,
        enrollment: EnrollmentStatus | None,
        course_id: str,
        manager_role: ManagerRole | None = None,
    ) -> Access:
        if manages(actor, course.teacher_id, manager_role is not None):
            return Access(course, teacher_name, "manager", manager_role)
        if course.archived_at is not None:  # for students an archived course is gone
            raise NotFound(f"Course {course_id!r} not found")
        if enrollment == "approved":
            return Access(course, teacher_name, "member")
        if enrollment == "pending":
            return Access(course, teacher_name, "pending")
        raise NotFound(f"Course {course_id!r} not found")

    async def _access(self, db: AsyncSession, actor: Identity, course_id: str) -> Access:
        row = (await db.execute(self._relation_query(actor).where(Course.id == course_id))).first()
        if row is None:
            raise NotFound(f"Course {course_id!r} not found")
        course, teacher_name, enrollment, manager_role = row
        return self._relation(actor, course, teacher_name, enrollment, course_id, manager_role)

    async def member_access(self, db: AsyncSession, actor: Identity, course_id: str) -> Access:
        """The caller's access to a course it belongs to (approved student, manager, admin): a
        pending student is refused, anyone else finds no such course (NotFound)."""
        access = await self._access(db, actor, course_id)
        if access.relation == "pending":
            raise Forbidden(
                f"Your enrollment in course {course_id!r} is pending; ask the course's teacher to approve it"
            )
        return access

    async def manager_access(self, db: AsyncSession, actor: Identity, course_id: str) -> Access:
        """The caller's access to a course it manages (its teacher, a co-manager, an admin)."""
        access = await self.member_access(db, actor, course_id)
        if not access.manages:
            raise Forbidden(
                f"Only the teachers of course {course_id!r} (its teacher, co-teachers and teaching "
                "assistants) or an admin can do this"
            )
        return access

    async def owner_access(self, db: AsyncSession, actor: Identity, course_id: str) -> Access:
        """The course's teacher (its owner) or an admin: who may change who manages it."""
        access = await self.manager_access(db, actor, course_id)
        if not manages(actor, access.course.teacher_id, co_manager=False):  # a co-manager may not
            raise Forbidden(
                f"Only the teacher who owns course {course_id!r} or an admin can change its co-teachers"
            )
        return access

    async def _session_access(
        self, db: AsyncSession, actor: Identity, session_id: str, *, lock: bool = False
    ) -> tuple[AttendanceSession, Access]:
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
        course, teacher_name, enrollment, manager_role, attendance = row
        try:
            access = self._relation(actor, course, teacher_name, enrollment, course.id, manager_role)
        except NotFound:
            raise NotFound(f"Session {session_id!r} not found") from None
        return attendance, access

    async def _manager_role(self, db: AsyncSession, course_id: str, user_id: str) -> ManagerRole | None:
        """``user_id``'s co-manager role in the course (None: not a co-manager)."""
        return await db.scalar(
            select(CourseManager.role).where(
                CourseManager.course_id == course_id, CourseManager.user_id == user_id
            )
        )

    async def _is_manager(self, db: AsyncSession, course: Course, actor: Identity) -> bool:
        """:func:`manages` for a course already loaded."""
        if manages(actor, course.teacher_id, co_manager=False):
            return True
        return await self._manager_role(db, course.id, actor.user_id) is not None
