"""Rosters in bulk: the CSV import, the JSON bulk ``PUT``, the CSV export, and email invitations.

One set of rules for both imports (``import_roster``), all or nothing:

* each row names a student by ``user_id`` or ``email`` (or both), with an
  optional ``name`` and a ``status`` (``approved`` when empty; ``pending``,
  ``rejected``, or ``removed`` to take the student off the roster);
* every bad row is reported with its line and why: a bad id or email, a status
  that is none of these, the course's teacher, the same student twice, an email
  that several users share. One bad row and nothing is written;
* a row given only an ``email`` is the user whose stored email it is (case
  ignored); if no user has it yet, it becomes an *invitation* that is turned
  into an enrollment when a user first signs in with a token whose email claim
  matches (``link_invitations``) — unless two users have that email, then
  nobody is linked (a manager must add the student by ``user_id``);
* ``dry_run`` reads and counts, and writes nothing; otherwise every change is
  written in one transaction, and each enrollment that moved is an
  ``enrollment`` row of the outbox (sockets join or leave the course's room on
  every node, ``realtime.relay``).

At most ``MAX_IMPORT_ROWS`` rows per CSV and ``MAX_BULK_ITEMS`` per JSON call.
"""

from __future__ import annotations

import csv
import functools
import io
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Final, TypeVar

from sqlalchemy import bindparam, delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert

from attendance_live.auth.tokens import Identity
from attendance_live.db.engine import Database
from attendance_live.db.models import CourseManager, Enrollment, RosterInvite, User
from attendance_live.service.core import BATCH_ROWS
from attendance_live.service.errors import InvalidInput
from attendance_live.service.events import EnrollmentChanged
from attendance_live.service.invitations import Invitations
from attendance_live.service.roster_rows import (
    CheckedRow,
    RosterRow,
    check_row,
    parse_roster_csv,
)
from attendance_live.service.users import name_and_email
from attendance_live.service.views import ImportResult, ImportRowError
from attendance_live.timeutil import iso_z
from attendance_live.vocabulary import ENROLLMENT_STATUSES

__all__ = ["ANALYZE_AFTER_ROWS", "MAX_BULK_ITEMS", "Roster", "RosterImportRefused"]

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_BULK_ITEMS: Final = 5_000
# On PostgreSQL, an import that writes this many rows refreshes the planner's statistics.
ANALYZE_AFTER_ROWS: Final = 1_000


class RosterImportRefused(InvalidInput):
    """An import with bad rows (nothing written); ``result`` lists them (the API answers 422)."""

    def __init__(self, result: ImportResult) -> None:
        count = len(result.errors)
        first = result.errors[0]
        super().__init__(
            f"{count} row(s) of the roster are not valid, so nothing was imported "
            f"(line {first.line}: {first.message}); fix them and send the whole file again"
        )
        self.result = result


class _Statements:
    """The import's upserts, one row each with bound parameters, run for many rows at once."""

    def __init__(self, database: Database) -> None:
        def upsert(model: Any, columns: Sequence[str], key: Sequence[Any], update: Any) -> Insert:
            table = model.__table__
            row = {c: bindparam(f"r_{c}", type_=table.c[c].type) for c in columns}
            return database.upsert(table, row, key=key, update=update)

        self.users = upsert(
            User,
            ("id", "name", "email", "role", "created_at", "updated_at"),
            [User.id],
            lambda excluded: {**name_and_email(excluded), "updated_at": excluded.updated_at},
        )
        self.enrollments = upsert(
            Enrollment,
            ("course_id", "user_id", "status", "created_at", "updated_at"),
            [Enrollment.course_id, Enrollment.user_id],
            lambda excluded: {"status": excluded.status, "updated_at": excluded.updated_at},
        )
        self.invitations = upsert(
            RosterInvite,
            ("course_id", "email", "name", "status", "created_at", "updated_at"),
            [RosterInvite.course_id, RosterInvite.email],
            lambda excluded: {
                "status": excluded.status,
                "name": func.coalesce(excluded.name, RosterInvite.name),
                "updated_at": excluded.updated_at,
            },
        )


class Roster(Invitations):
    """Bulk roster changes and email invitations; see the module docstring."""

    async def import_roster(
        self, actor: Identity, course_id: str, rows: Sequence[RosterRow], *, dry_run: bool
    ) -> ImportResult:
        """Check every row, then (unless ``dry_run``) apply them all in one transaction.

        Raises :class:`RosterImportRefused` (nothing written) when a row is bad.
        """
        return await self._import(actor, course_id, rows, [], dry_run=dry_run)

    async def import_roster_csv(
        self, actor: Identity, course_id: str, body: bytes, *, dry_run: bool
    ) -> ImportResult:
        # The caller's right first: a CSV error must not tell a stranger the course exists.
        async with self.database.read() as db:
            await self.manager_access(db, actor, course_id)
        rows, errors = parse_roster_csv(body)
        return await self._import(actor, course_id, rows, errors, dry_run=dry_run)

    async def _import(
        self,
        actor: Identity,
        course_id: str,
        rows: Sequence[RosterRow],
        errors: list[ImportRowError],
        *,
        dry_run: bool,
    ) -> ImportResult:
        now = self.clock()
        if dry_run:
            async with self.database.read() as db:
                managers = await self._managers_of(db, actor, course_id)
                result, _ = await self._plan(db, course_id, managers, rows, errors)
            return result.model_copy(update={"dry_run": True})
        async with self._write() as unit:
            managers = await self._managers_of(unit.db, actor, course_id)
            result, plan = await self._plan(unit.db, course_id, managers, rows, errors)
            if result.errors:
                raise RosterImportRefused(result)  # rolls the transaction back: nothing written
            await self._before_enrollment_change(unit, course_id)
            await self._apply(unit.db, course_id, plan, now)
            if self.database.dialect == "postgresql" and len(plan) >= ANALYZE_AFTER_ROWS:
                # A bulk load leaves the planner's statistics behind until autovacuum comes by
                # (up to a minute): the next import's lookups then scanned whole tables (8 s
                # instead of 0.6 s for 10,000 rows, bench/import_rows.py). PostgreSQL's advice
                # after a bulk load; it sees this transaction's rows, and blocks no reader or writer.
                await unit.db.execute(text("ANALYZE users, enrollments, roster_invites"))
            unit.events.extend(
                EnrollmentChanged(course_id, row.user_id, row.status)
                for row in plan
                if row.user_id is not None and row.moves
            )
        for row in plan:
            if row.user_id is not None:
                self.users.forget(row.user_id)
        return result

    async def _managers_of(self, db: AsyncSession, actor: Identity, course_id: str) -> frozenset[str]:
        """After the caller's manager check: who manages the course (none of them may enroll)."""
        owner = (await self.manager_access(db, actor, course_id)).course.teacher_id
        co = await db.scalars(select(CourseManager.user_id).where(CourseManager.course_id == course_id))
        return frozenset({owner, *co})

    async def _plan(
        self,
        db: AsyncSession,
        course_id: str,
        managers: frozenset[str],
        rows: Sequence[RosterRow],
        errors: list[ImportRowError],
    ) -> tuple[ImportResult, list[CheckedRow]]:
        """Validate and resolve every row; count what would change. The plan holds only rows that
        change something; a row whose status stays (its name or email changes) has ``moves`` off."""
        errors = list(errors)
        checked: list[CheckedRow] = []
        by_user: dict[str, int] = {}
        by_email: dict[str, int] = {}
        for row in rows:
            problem, item = check_row(row, managers)
            if problem is not None:
                errors.append(ImportRowError(line=row.line, message=problem))
                continue
            assert item is not None
            checked.append(item)
        # Email-only rows: the user whose stored email it is, if exactly one.
        wanted = sorted({c.invite for c in checked if c.invite is not None})
        owners: dict[str, list[str]] = {}
        for chunk in _chunks(wanted):
            found = await db.execute(
                select(func.lower(User.email), User.id).where(func.lower(User.email).in_(chunk))
            )
            for email, user_id in found:
                owners.setdefault(email, []).append(user_id)
        resolved: list[CheckedRow] = []
        for item in checked:
            if item.invite is not None and item.invite in owners:
                ids = sorted(owners[item.invite])
                if len(ids) > 1:
                    shown = ", ".join(ids[:3])
                    errors.append(
                        ImportRowError(
                            line=item.line,
                            message=f"the email {item.email} belongs to {len(ids)} users ({shown}); "
                            "add a user_id to say which",
                        )
                    )
                    continue
                item.user_id, item.invite = ids[0], None
                if item.user_id in managers:
                    errors.append(
                        ImportRowError(
                            line=item.line,
                            message=f"{item.email} is a teacher of the course, who cannot enroll in it",
                        )
                    )
                    continue
            key_seen = by_user if item.user_id is not None else by_email
            key = item.user_id if item.user_id is not None else item.invite
            assert key is not None
            if key in key_seen:
                errors.append(
                    ImportRowError(
                        line=item.line,
                        message=f"the same student as line {key_seen[key]}; keep one of the two rows",
                    )
                )
                continue
            key_seen[key] = item.line
            resolved.append(item)
        errors.sort(key=lambda e: e.line)
        # What is stored now: enrollments (with the user's name and email) and invitations.
        user_ids = [i.user_id for i in resolved if i.user_id is not None]
        stored: dict[str, tuple[str, str | None, str | None]] = {}  # id -> (status, name, email)
        users: dict[str, tuple[str, str | None]] = {}
        # The course's whole roster in one query (its primary key's prefix), not IN lists.
        found_statuses = await db.execute(
            select(Enrollment.user_id, Enrollment.status).where(Enrollment.course_id == course_id)
        )
        statuses: dict[str, str] = {uid: status for uid, status in found_statuses}
        for chunk in _chunks([uid for uid in user_ids if uid in statuses]):
            found_users = await db.execute(select(User.id, User.name, User.email).where(User.id.in_(chunk)))
            users.update({uid: (name, email) for uid, name, email in found_users})
        for uid in user_ids:
            if uid in statuses:
                name, email = users.get(uid, (uid, None))
                stored[uid] = (statuses[uid], name, email)
        invites = [i.invite for i in resolved if i.invite is not None]
        stored_invites: dict[str, tuple[str, str | None]] = {}
        for chunk in _chunks(invites):
            found_invites = await db.execute(
                select(RosterInvite.email, RosterInvite.status, RosterInvite.name).where(
                    RosterInvite.course_id == course_id, RosterInvite.email.in_(chunk)
                )
            )
            stored_invites.update({email: (status, name) for email, status, name in found_invites})
        added = changed = unchanged = 0
        plan: list[CheckedRow] = []
        for item in resolved:
            if item.user_id is not None:
                before = stored.get(item.user_id)
                user = users.get(item.user_id)
                if before is None:
                    if item.status == "removed":
                        unchanged += 1
                        continue
                    added += 1
                    plan.append(item)
                    continue
                status_moves = before[0] != item.status
                names_move = user is not None and (
                    (item.name is not None and item.name != user[0])
                    or (item.email is not None and item.email != user[1])
                )
            else:
                assert item.invite is not None
                previous = stored_invites.get(item.invite)
                if previous is None:
                    if item.status == "removed":
                        unchanged += 1
                        continue
                    added += 1
                    plan.append(item)
                    continue
                status_moves = previous[0] != item.status
                names_move = item.name is not None and item.name != previous[1]
            if status_moves:
                changed += 1
                item.names = names_move
                plan.append(item)
            elif names_move and item.status != "removed":
                changed += 1
                item.moves = False
                plan.append(item)
            else:
                unchanged += 1
        result = ImportResult(
            added=added,
            changed=changed,
            unchanged=unchanged,
            errors=errors,
            created=added,
            updated=changed + unchanged,
        )
        return result, plan

    async def _apply(self, db: AsyncSession, course_id: str, plan: list[CheckedRow], now: datetime) -> None:
        """Write the plan: each kind of row with one statement executed for many rows (built
        once: compiling a multi-row ``VALUES`` per chunk cost more than the writes)."""
        conn = await db.connection()
        statements = self._roster_statements
        enrolled = [i for i in plan if i.user_id is not None]
        invited = [i for i in plan if i.invite is not None]
        named = [
            {
                "r_id": i.user_id,
                "r_name": i.name or i.user_id,
                "r_email": i.email,
                "r_role": "student",
                "r_created_at": now,
                "r_updated_at": now,
            }
            for i in enrolled
            if i.names
        ]
        if named:
            await conn.execute(statements.users, named)
        gone = [i.user_id for i in enrolled if i.moves and i.status == "removed"]
        for chunk in _chunks(gone):
            await conn.execute(
                delete(Enrollment).where(Enrollment.course_id == course_id, Enrollment.user_id.in_(chunk))
            )
        enrollments = [
            {
                "r_course_id": course_id,
                "r_user_id": i.user_id,
                "r_status": i.status,
                "r_created_at": now,
                "r_updated_at": now,
            }
            for i in enrolled
            if i.moves and i.status in ENROLLMENT_STATUSES
        ]
        if enrollments:
            await conn.execute(statements.enrollments, enrollments)
        gone_invites = [i.invite for i in invited if i.status == "removed"]
        for chunk in _chunks(gone_invites):
            await conn.execute(
                delete(RosterInvite).where(RosterInvite.course_id == course_id, RosterInvite.email.in_(chunk))
            )
        invitations = [
            {
                "r_course_id": course_id,
                "r_email": i.invite,
                "r_name": i.name,
                "r_status": i.status,
                "r_created_at": now,
                "r_updated_at": now,
            }
            for i in invited
            if i.status != "removed"
        ]
        if invitations:
            await conn.execute(statements.invitations, invitations)

    @functools.cached_property
    def _roster_statements(self) -> _Statements:
        return _Statements(self.database)

    # ------------------------------------------------------------------ reads

    async def roster_csv(self, actor: Identity, course_id: str) -> str:
        """The roster as CSV (enrollments, then invitations), every typed cell formula-safe;
        it reads back with the import as it is."""
        from attendance_live.service.reports import csv_safe  # reports import the service's views

        async with self.database.read() as db:
            await self.manager_access(db, actor, course_id)
            enrolled = (
                await db.execute(
                    select(User.id, User.email, User.name, Enrollment.status, Enrollment.updated_at)
                    .join(User, User.id == Enrollment.user_id)
                    .where(Enrollment.course_id == course_id)
                    .order_by(User.name, User.id)
                )
            ).all()
            invited = (
                await db.execute(
                    select(
                        RosterInvite.email, RosterInvite.name, RosterInvite.status, RosterInvite.updated_at
                    )
                    .where(RosterInvite.course_id == course_id)
                    .order_by(RosterInvite.email)
                )
            ).all()
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(["user_id", "email", "name", "status", "updated_at"])
        for uid, user_email, user_name, status, updated_at in enrolled:
            writer.writerow(
                [csv_safe(uid), csv_safe(user_email or ""), csv_safe(user_name), status, iso_z(updated_at)]
            )
        for invite_email, invite_name, status, updated_at in invited:
            writer.writerow(
                ["", csv_safe(invite_email), csv_safe(invite_name or ""), status, iso_z(updated_at)]
            )
        return out.getvalue()


def _chunks(items: Sequence[T]) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), BATCH_ROWS):
        yield items[start : start + BATCH_ROWS]
