"""Join codes: a course's managers hand out a code (or its link); students ask to join with it.

A code is ``CODE_LENGTH`` characters drawn with :mod:`secrets` from an
alphabet without look-alikes (no 0/O, 1/I/L), so it can be read off a
projector and typed. A course has at most one code in force: creating one
revokes the previous (kept, so a student who types the old one is told it was
revoked), ``DELETE`` revokes it. Joining:

* an unknown code is 404; a revoked or expired one, or one of an archived
  course, 403 with what to do; every such failure counts against the caller
  (``attendance_live.limits``, shared by every node with Redis: ``JOIN_CODE_ATTEMPTS``
  failures per ``JOIN_CODE_WINDOW_SECONDS``), past which the answer is 429
  (``too_many_attempts``), whatever the code;
* otherwise the caller's enrollment becomes ``pending`` (manual approval) or
  ``approved`` (auto), once: joining again changes nothing, and a rejected
  student stays rejected until a manager changes it (403 saying so);
* a new request is an ``enrollment`` row with ``requested``: the course's
  managers' sockets get ``enrollmentRequested``, an approval moves the
  student's sockets into the course's room (``realtime.relay``).
"""

from __future__ import annotations

import math
import secrets
from datetime import datetime
from typing import Final

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from attendance_live.auth.tokens import Identity
from attendance_live.db.models import Course, Enrollment, JoinCode, User
from attendance_live.service.access import AccessRules
from attendance_live.service.errors import Forbidden, InvalidInput, NotFound, RateLimited
from attendance_live.service.events import EnrollmentChanged
from attendance_live.service.views import JoinCodeView, JoinView
from attendance_live.timeutil import iso_z
from attendance_live.vocabulary import EnrollmentStatus, JoinApproval

__all__ = [
    "CODE_ALPHABET",
    "CODE_LENGTH",
    "JoinCodes",
    "join_path",
    "new_join_code",
    "normalize_code",
    "seconds_text",
]

# 31 symbols, none that reads as another (0/O, 1/I/L); 31^10 is about 8 * 10^14 codes.
CODE_ALPHABET: Final = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH: Final = 10


def new_join_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(typed: str) -> str:
    """What a student typed, as stored: upper case, without spaces or dashes."""
    return typed.upper().replace(" ", "").replace("-", "")


def join_path(code: str) -> str:
    """The dashboard's join page for ``code``, relative to the server's origin."""
    return f"/join/{code}"


class JoinCodes(AccessRules):
    """Join codes and join requests; see the module docstring."""

    async def create_join_code(
        self, actor: Identity, course_id: str, *, approval: JoinApproval, expires_at: datetime | None
    ) -> JoinCodeView:
        now = self.clock()
        if expires_at is not None and expires_at <= now:
            raise InvalidInput("expires_at is in the past; give a time in the future, or none")
        code = new_join_code()
        async with self._write() as unit:
            access = await self.manager_access(unit.db, actor, course_id)
            if access.course.archived_at is not None:
                raise Forbidden(f"Course {course_id!r} is archived; unarchive it before inviting students")
            if self.database.dialect == "postgresql":
                # Two managers creating codes at once: one after the other, so one code stays in force.
                await unit.db.execute(select(Course.id).where(Course.id == course_id).with_for_update())
            await self._revoke(unit.db, course_id, now)
            unit.db.add(
                JoinCode(
                    code=code,
                    course_id=course_id,
                    approval=approval,
                    expires_at=expires_at,
                    created_at=now,
                    created_by=actor.user_id,
                )
            )
        return _code_view(course_id, code, approval, expires_at)

    async def get_join_code(self, actor: Identity, course_id: str) -> JoinCodeView | None:
        async with self.database.read() as db:
            await self.manager_access(db, actor, course_id)
            row = (
                await db.execute(
                    select(JoinCode)
                    .where(JoinCode.course_id == course_id, JoinCode.revoked_at.is_(None))
                    .order_by(JoinCode.created_at.desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
        if row is None:
            return None
        return _code_view(course_id, row.code, row.approval, row.expires_at)

    async def revoke_join_code(self, actor: Identity, course_id: str) -> None:
        async with self._write() as unit:
            await self.manager_access(unit.db, actor, course_id)
            if not await self._revoke(unit.db, course_id, self.clock()):
                raise NotFound(f"Course {course_id!r} has no join code to revoke")

    async def _revoke(self, db: AsyncSession, course_id: str, now: datetime) -> bool:
        result = await db.execute(
            update(JoinCode)
            .where(JoinCode.course_id == course_id, JoinCode.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def join(self, actor: Identity, typed_code: str) -> JoinView:
        """Ask to join the course of ``typed_code``; see the module docstring."""
        key = f"join-code:{actor.user_id}"
        verdict = await self.limiter.peek(key, self.join_attempts)
        if not verdict.allowed:
            raise RateLimited(
                "too_many_attempts",
                f"Too many wrong join codes; try again in {seconds_text(verdict.retry_after)}, "
                "and check the code with your teacher",
                verdict.retry_after,
            )
        code = normalize_code(typed_code)
        now = self.clock()
        try:
            return await self._join(actor, code, now)
        except (NotFound, Forbidden):
            await self.limiter.hit(key, self.join_attempts)
            raise

    async def _join(self, actor: Identity, code: str, now: datetime) -> JoinView:
        async with self._write() as unit:
            row = (
                await unit.db.execute(
                    select(JoinCode, Course)
                    .join(Course, Course.id == JoinCode.course_id)
                    .where(JoinCode.code == code)
                )
            ).first()
            if row is None:
                raise NotFound(
                    f"No course has the join code {code[:16]!r}; check it (letters and digits, "
                    "no 0, O, 1, I or L) or ask your teacher for the current one"
                )
            join_code, course = row
            if join_code.revoked_at is not None:
                raise Forbidden(
                    "This join code was revoked by the course's teacher; ask them for the current one"
                )
            if join_code.expires_at is not None and join_code.expires_at <= now:
                raise Forbidden(
                    f"This join code expired at {iso_z(join_code.expires_at)}; "
                    "ask the course's teacher for a new one"
                )
            if course.archived_at is not None:
                raise Forbidden("This course is archived and takes no new students; ask its teacher")
            if await self._is_manager(unit.db, course, actor):
                raise InvalidInput(f"You manage course {course.id!r} already; joining is for students")
            await self.users.ensure(unit.db, actor)
            await self._before_enrollment_change(unit, course.id)
            enrollment = await unit.db.get(Enrollment, (course.id, actor.user_id))
            if enrollment is not None and enrollment.status == "rejected":
                raise Forbidden(
                    f"The teacher of {course.code} declined your enrollment; "
                    "ask them if you think this is a mistake"
                )
            if enrollment is None:
                status: EnrollmentStatus = "approved" if join_code.approval == "auto" else "pending"
                enrollment = Enrollment(
                    course_id=course.id, user_id=actor.user_id, status=status, created_at=now, updated_at=now
                )
                unit.db.add(enrollment)
                user = await unit.db.get(User, actor.user_id)
                unit.events.append(
                    EnrollmentChanged(
                        course.id,
                        actor.user_id,
                        status,
                        requested=True,
                        name=(user.name if user is not None else None) or actor.name,
                        email=(user.email if user is not None else None) or actor.email,
                    )
                )
            view = JoinView(
                course_id=course.id,
                course_code=course.code,
                course_title=course.title,
                user_id=actor.user_id,
                status=enrollment.status,
            )
        return view


def _code_view(
    course_id: str, code: str, approval: JoinApproval, expires_at: datetime | None
) -> JoinCodeView:
    return JoinCodeView(
        course_id=course_id, code=code, url=join_path(code), approval=approval, expires_at=iso_z(expires_at)
    )


def seconds_text(seconds: float) -> str:
    """``seconds`` rounded up, in words (``"1 minute"``, ``"40 seconds"``)."""
    whole = max(1, math.ceil(seconds))
    if whole >= 120:
        return f"{math.ceil(whole / 60)} minutes"
    return "1 second" if whole == 1 else f"{whole} seconds"
