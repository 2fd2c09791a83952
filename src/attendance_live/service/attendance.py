"""``AttendanceService``: the service layer's one entry point, the only code that changes state.

Every operation is one transaction; transitions are conditional updates or
primary keys, so races give one result; domain events are published only
after the commit (``service.core``). The service is assembled from one module
per concern, each readable alone:

* ``service.core``     the dependencies and the unit of work (transaction + events)
* ``service.access``   who may see and manage a course (from data)
* ``service.reads``    session bodies, the roster, statistics, a course's live snapshot
* ``service.courses``  courses and enrollments
* ``service.managers`` a course's co-managers (co-teachers, teaching assistants)
* ``service.joining``  join codes and students' join requests
* ``service.roster``   roster imports (CSV, bulk JSON), the roster CSV, email invitations
* ``service.sessions`` start, end, auto-end, teacher marks
* ``service.checkin``  the check-in hot path

Reports over ended sessions are read-only and live apart, in ``service.reports``
(``CourseReports``). HTTP routes, socket handlers, the auto-end timer and the
CLI call these classes only.
"""

from __future__ import annotations

import logging
from typing import Any

from attendance_live.auth.tokens import Identity
from attendance_live.service.access import Relation
from attendance_live.service.checkin import CheckIns
from attendance_live.service.core import validate_id
from attendance_live.service.courses import Courses
from attendance_live.service.errors import CheckInRefused, RateLimited
from attendance_live.service.joining import JoinCodes
from attendance_live.service.managers import CourseManagers
from attendance_live.service.roster import Roster
from attendance_live.service.sessions import Sessions
from attendance_live.service.views import RecordView, UserView
from attendance_live.vocabulary import SYSTEM

__all__ = ["SYSTEM", "AttendanceService", "Relation", "validate_id"]

log = logging.getLogger(__name__)


class AttendanceService(Courses, CourseManagers, JoinCodes, Roster, Sessions, CheckIns):
    """Courses, enrollments and attendance sessions; see the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A user's first sign-in with an email some roster invited: enroll them (service.roster).
        self.users.on_written = self.link_invitations

    async def check_in(
        self,
        actor: Identity,
        session_id: str,
        *,
        code: str | None = None,
        address: str | None = None,
        device_id: str | None = None,
    ) -> RecordView:
        """``CheckIns.check_in``, with wrong codes counted per student and session: past
        ``code_attempts`` in its window, ``RateLimited`` (``too_many_attempts``) until the window
        ends, whatever the code; the attempt that reaches the limit flags the student's record
        for the teacher (``flag_code_attempts``)."""
        key = f"check-in-code:{session_id}:{actor.user_id}"
        rate = self.code_attempts
        if code is not None:  # no code, no guess (an open session, or code_required)
            verdict = await self.limiter.peek(key, rate)
            if not verdict.allowed:
                raise RateLimited(
                    "too_many_attempts",
                    f"Too many wrong check-in codes: at most {rate.count} in {rate.seconds:g} s "
                    f"(CHECK_IN_CODE_ATTEMPTS); wait {verdict.retry_after_header} s, then type the code "
                    "shown in the room",
                    verdict.retry_after,
                )
        try:
            return await super().check_in(actor, session_id, code=code, address=address, device_id=device_id)
        except CheckInRefused as exc:
            if exc.reason == "code_invalid":
                verdict = await self.limiter.hit(key, rate)
                if verdict.count == rate.count:  # exactly one attempt reaches it, on any node
                    try:
                        await self.flag_code_attempts(session_id, actor.user_id)
                    except Exception:
                        log.exception("could not flag a student stopped for wrong check-in codes")
            raise

    async def remember_user(self, actor: Identity) -> None:
        """Create or refresh the user's row from its token's claims, now."""
        await self.users.remember(actor)

    def remember_user_later(self, actor: Identity) -> None:
        """Create or refresh the user's row in the next background batch."""
        self.users.remember_later(actor)

    async def me(self, actor: Identity) -> UserView:
        return UserView(id=actor.user_id, name=actor.name, email=actor.email, role=actor.role)
