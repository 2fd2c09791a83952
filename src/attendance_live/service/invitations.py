"""Roster invitations: students imported by email who have not signed in yet.

A roster row given only an ``email`` that no user has becomes an invitation
(``service.roster``); ``link_invitations`` turns it into an enrollment when a user
first signs in with a token whose email claim matches, unless several users share
that email (then nobody is linked and a manager adds the student by ``user_id``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import func, select

from attendance_live.auth.tokens import Identity
from attendance_live.db.models import Course, Enrollment, RosterInvite, User
from attendance_live.service.access import AccessRules
from attendance_live.service.events import EnrollmentChanged
from attendance_live.service.views import InvitationView
from attendance_live.timeutil import iso_z

__all__ = ["Invitations"]

log = logging.getLogger(__name__)


class Invitations(AccessRules):
    """Listing and linking a course's roster invitations (a part of ``Roster``)."""

    async def list_invitations(self, actor: Identity, course_id: str) -> list[InvitationView]:
        """Students imported by email who have not signed in yet."""
        async with self.database.read() as db:
            await self.manager_access(db, actor, course_id)
            rows = (
                await db.execute(
                    select(RosterInvite)
                    .where(RosterInvite.course_id == course_id)
                    .order_by(RosterInvite.email)
                )
            ).scalars()
            return [
                InvitationView(
                    course_id=course_id,
                    email=r.email,
                    name=r.name,
                    status=r.status,
                    updated_at=iso_z(r.updated_at) or "",
                )
                for r in rows
            ]

    # --------------------------------------------------------------- linking

    async def link_invitations(self, actors: Iterable[Identity]) -> int:
        """Turn the invitations of these users' emails into their enrollments; returns how many.

        Called when users first sign in (``UserDirectory.on_written``). An email
        stored for two users or more links nobody (logged; a manager adds the
        student by user id); an enrollment that exists already wins over the
        invitation, which is dropped.
        """
        by_email: dict[str, Identity] = {}
        for actor in actors:
            if actor.email:
                by_email.setdefault(actor.email.strip().lower(), actor)
        if not by_email:
            return 0
        async with self.database.read() as db:
            invited = set(
                (
                    await db.execute(
                        select(RosterInvite.email).where(RosterInvite.email.in_(list(by_email))).distinct()
                    )
                ).scalars()
            )
        if not invited:
            return 0
        linked = 0
        now = self.clock()
        async with self._write() as unit:
            owners: dict[str, set[str]] = {}
            found = await unit.db.execute(
                select(func.lower(User.email), User.id).where(func.lower(User.email).in_(sorted(invited)))
            )
            for email, user_id in found:
                owners.setdefault(email, set()).add(user_id)
            for email in sorted(invited):
                actor = by_email[email]
                others = owners.get(email, set()) - {actor.user_id}
                if others:
                    log.warning(
                        "not linking roster invitations: %d other user(s) have the same email", len(others)
                    )
                    continue
                rows = (
                    await unit.db.execute(
                        select(RosterInvite, Course)
                        .join(Course, Course.id == RosterInvite.course_id)
                        .where(RosterInvite.email == email)
                        .order_by(RosterInvite.course_id)  # course locks in one order (roster_fill)
                    )
                ).all()
                await self.users.ensure(unit.db, actor)
                for invite, course in rows:
                    if not await self._is_manager(unit.db, course, actor):
                        existing = await unit.db.get(Enrollment, (invite.course_id, actor.user_id))
                        if existing is None:
                            await self._before_enrollment_change(unit, invite.course_id)
                            unit.db.add(
                                Enrollment(
                                    course_id=invite.course_id,
                                    user_id=actor.user_id,
                                    status=invite.status,
                                    created_at=now,
                                    updated_at=now,
                                )
                            )
                            unit.events.append(
                                EnrollmentChanged(invite.course_id, actor.user_id, invite.status)
                            )
                            linked += 1
                    await unit.db.delete(invite)
        return linked
