"""A course's co-managers: co-teachers and teaching assistants beside its teacher (the owner).

A co-manager may do everything the course's teacher may (``service.access.manages``); only
the owner and admins add, change and remove co-managers. The owner stays ``teacher_id`` (and
``teacher_name``) in every payload. A co-manager is no student of the course: becoming one
ends the user's enrollment there (their past records stay in the reports), and enrolling a
co-manager is refused. Every change is a :class:`ManagerChanged`: the members cache drops the
course and the user's live sockets follow (``realtime.rooms``).
"""

from __future__ import annotations

from sqlalchemy import delete, select

from attendance_live.auth.tokens import Identity
from attendance_live.db.models import CourseManager, Enrollment, User
from attendance_live.service.access import AccessRules
from attendance_live.service.core import validate_id
from attendance_live.service.errors import InvalidInput, NotFound
from attendance_live.service.events import ManagerChanged
from attendance_live.service.views import ManagerView
from attendance_live.timeutil import iso_z
from attendance_live.vocabulary import ManagerRole

__all__ = ["CourseManagers"]


class CourseManagers(AccessRules):
    """List, add, change and remove a course's co-managers; see the module docstring."""

    async def list_managers(self, actor: Identity, course_id: str) -> list[ManagerView]:
        """The owner first, then the co-managers by name (for anyone who manages the course)."""
        async with self.database.read() as db:
            access = await self.manager_access(db, actor, course_id)
            owner = await db.get(User, access.course.teacher_id)
            rows = (
                await db.execute(
                    select(CourseManager, User)
                    .join(User, User.id == CourseManager.user_id)
                    .where(CourseManager.course_id == course_id)
                    .order_by(User.name, User.id)
                )
            ).all()
        views = [
            ManagerView(
                course_id=course_id,
                user_id=access.course.teacher_id,
                name=access.teacher_name,
                email=owner.email if owner is not None else None,
                role="owner",
                added_at=iso_z(access.course.created_at) or "",
            )
        ]
        views.extend(_view(manager, user) for manager, user in rows)
        return views

    async def get_manager(self, actor: Identity, course_id: str, user_id: str) -> ManagerView:
        for view in await self.list_managers(actor, course_id):
            if view.user_id == user_id:
                return view
        raise NotFound(f"User {user_id!r} is not a teacher of course {course_id!r}")

    async def put_manager(
        self,
        actor: Identity,
        course_id: str,
        user_id: str,
        *,
        role: ManagerRole,
        name: str | None = None,
        email: str | None = None,
    ) -> tuple[ManagerView, bool]:
        """Make ``user_id`` a co-manager (or change their role); returns it and whether it was new."""
        validate_id(user_id, "user id")
        now = self.clock()
        async with self._write() as unit:
            access = await self.owner_access(unit.db, actor, course_id)
            if user_id == access.course.teacher_id:
                raise InvalidInput(
                    f"User {user_id!r} is the teacher who owns course {course_id!r}; "
                    "co-teachers are the other people who manage it"
                )
            user = await unit.db.get(User, user_id)
            if user is None:
                user = User(id=user_id, name=name or user_id, email=email, role="student")
                user.created_at = user.updated_at = now
                unit.db.add(user)
            else:
                if name:
                    user.name = name
                if email:
                    user.email = email
                user.updated_at = now
            manager = await unit.db.get(CourseManager, (course_id, user_id))
            created = manager is None
            if manager is None:
                manager = CourseManager(course_id=course_id, user_id=user_id, role=role, created_at=now)
                unit.db.add(manager)
                # A manager is no student of the course (their records stay in the reports);
                # a session's roster written later still holds them as they were at its start.
                await self._before_enrollment_change(unit, course_id)
                await unit.db.execute(
                    delete(Enrollment).where(Enrollment.course_id == course_id, Enrollment.user_id == user_id)
                )
            moved = created or manager.role != role
            manager.role = role
            await unit.db.flush()
            if moved:
                unit.events.append(ManagerChanged(course_id, user_id, role))
            view = _view(manager, user)
        self.users.forget(user_id)
        return view, created

    async def remove_manager(self, actor: Identity, course_id: str, user_id: str) -> None:
        """Take a co-manager off the course; from this moment they manage nothing of it."""
        async with self._write() as unit:
            access = await self.owner_access(unit.db, actor, course_id)
            if user_id == access.course.teacher_id:
                raise InvalidInput(
                    f"User {user_id!r} owns course {course_id!r} and cannot be removed from its teachers"
                )
            result = await unit.db.execute(
                delete(CourseManager).where(
                    CourseManager.course_id == course_id, CourseManager.user_id == user_id
                )
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                raise NotFound(f"User {user_id!r} is not a co-teacher of course {course_id!r}")
            unit.events.append(ManagerChanged(course_id, user_id, "removed"))

    async def co_managers(self, course_id: str) -> dict[str, ManagerRole]:
        """The course's co-managers and their roles (the LMS roster sync compares with them)."""
        async with self.database.read() as db:
            rows = await db.execute(
                select(CourseManager.user_id, CourseManager.role).where(CourseManager.course_id == course_id)
            )
            return {user_id: role for user_id, role in rows.all()}


def _view(manager: CourseManager, user: User) -> ManagerView:
    return ManagerView(
        course_id=manager.course_id,
        user_id=user.id,
        name=user.name,
        email=user.email,
        role=manager.role,
        added_at=iso_z(manager.created_at) or "",
    )
