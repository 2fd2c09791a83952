"""Access rules: who may see and manage a course, decided from data.

The course's teacher and admins manage a course; students with an approved
enrollment are its members; a pending enrollment is a relation without
rights. A caller with no relation to a course gets :class:`NotFound`, the same
as for a course that does not exist (ids cannot be probed); a related caller
without the right gets :class:`Forbidden`. An archived course exists only for
its managers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Select, and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from attendance_live.auth.tokens import Identity
from attendance_live.db.models import AttendanceSession, Course, Enrollment, User
from attendance_live.service.core import ServiceCore
from attendance_live.service.errors import Forbidden, NotFound
from attendance_live.vocabulary import EnrollmentStatus

__all__ = ["Access", "AccessRules", "Relation"]

Relation = Literal["manager", "member", "pending"]


@dataclass(frozen=True, slots=True)
class Access:
    """A course, its teacher's name, and the caller's relation to it."""

    course: Course
    teacher_name: str
    relation: Relation

    @property
    def manages(self) -> bool:
        return self.relation == "manager"


class AccessRules(ServiceCore):
    """The checks every operation on a course or a session starts with."""

    def _relation_query(self, actor: Identity) -> Select[Course, str, EnrollmentStatus]:
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
        self,
        actor: Identity,
        course: Course,
        teacher_name: str,
        enrollment: EnrollmentStatus | None,
        course_id: str,
    ) -> Access:
        if actor.is_admin or course.teacher_id == actor.user_id:
            return Access(course, teacher_name, "manager")
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
        course, teacher_name, enrollment = row
        return self._relation(actor, course, teacher_name, enrollment, course_id)

    async def _member_access(self, db: AsyncSession, actor: Identity, course_id: str) -> Access:
        access = await self._access(db, actor, course_id)
        if access.relation == "pending":
            raise Forbidden(
                f"Your enrollment in course {course_id!r} is pending; ask the course's teacher to approve it"
            )
        return access

    async def _manager_access(self, db: AsyncSession, actor: Identity, course_id: str) -> Access:
        access = await self._member_access(db, actor, course_id)
        if not access.manages:
            raise Forbidden(f"Only the teacher of course {course_id!r} or an admin can do this")
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
        course, teacher_name, enrollment, attendance = row
        try:
            access = self._relation(actor, course, teacher_name, enrollment, course.id)
        except NotFound:
            raise NotFound(f"Session {session_id!r} not found") from None
        return attendance, access
