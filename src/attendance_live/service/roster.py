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
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, TypeVar, cast

from sqlalchemy import bindparam, delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert

from attendance_live.auth.tokens import Identity
from attendance_live.db.engine import Database
from attendance_live.db.models import Course, Enrollment, RosterInvite, User
from attendance_live.service.access import AccessRules
from attendance_live.service.core import BATCH_ROWS
from attendance_live.service.errors import InvalidInput
from attendance_live.service.events import EnrollmentChanged
from attendance_live.service.users import name_and_email
from attendance_live.service.views import ImportResult, ImportRowError, InvitationView
from attendance_live.timeutil import iso_z
from attendance_live.vocabulary import ENROLLMENT_STATUSES, ID_RE, EnrollmentStatus

__all__ = [
    "ANALYZE_AFTER_ROWS",
    "EMAIL_RE",
    "HEADER_NAMES",
    "MAX_BULK_ITEMS",
    "MAX_IMPORT_ROWS",
    "ROW_STATUSES",
    "Roster",
    "RosterImportRefused",
    "RosterRow",
    "RowStatus",
    "parse_roster_csv",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_IMPORT_ROWS: Final = 10_000
MAX_BULK_ITEMS: Final = 5_000
# On PostgreSQL, an import that writes this many rows refreshes the planner's statistics.
ANALYZE_AFTER_ROWS: Final = 1_000
EMAIL_RE: Final = re.compile(r"^[^@\s]+@[^@\s]+$")

RowStatus = EnrollmentStatus | Literal["removed"]
ROW_STATUSES: Final[tuple[str, ...]] = (*ENROLLMENT_STATUSES, "removed")

# Header cells as spreadsheets and student information systems spell them (compared in lower
# case without spaces, dashes, underscores or dots) -> our column.
HEADER_NAMES: Final[dict[str, str]] = {
    **dict.fromkeys(("userid", "user", "id", "uid", "sub", "studentid", "username", "login"), "user_id"),
    **dict.fromkeys(("email", "emailaddress", "mail", "courriel"), "email"),
    **dict.fromkeys(("name", "fullname", "displayname", "studentname"), "name"),
    **dict.fromkeys(("status", "enrollmentstatus", "enrolmentstatus", "state"), "status"),
    **dict.fromkeys(("firstname", "givenname", "first"), "first_name"),
    **dict.fromkeys(("lastname", "familyname", "surname", "last"), "last_name"),
}


@dataclass(slots=True)
class RosterRow:
    """One row of an import as given: its line (CSV) or position (JSON), and its cells."""

    line: int
    user_id: str | None
    email: str | None
    name: str | None
    status: str | None


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


def _header_key(cell: str) -> str:
    return re.sub(r"[\s_\-.]", "", cell.strip().lower())


def parse_roster_csv(body: bytes) -> tuple[list[RosterRow], list[ImportRowError]]:
    """The rows of a roster CSV (UTF-8 with or without BOM; comma or semicolon), or the reasons
    it cannot be read. Line numbers count the header as line 1."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"The file is not UTF-8 (byte {exc.start} cannot be read); "
            "save it as 'CSV UTF-8' and upload it again"
        ) from None
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise InvalidInput(f"Line 1 (the header) cannot be read: {exc}") from None
    if header is None or not any(cell.strip() for cell in header):
        raise InvalidInput(
            "The file is empty; its first line names the columns (user_id, email, name, status)"
        )
    columns: dict[str, int] = {}
    for index, cell in enumerate(header):
        column = HEADER_NAMES.get(_header_key(cell))
        if column is not None and column not in columns:
            columns[column] = index
    if "user_id" not in columns and "email" not in columns:
        raise InvalidInput(
            f"The header (line 1: {first_line[:80]!r}) has neither a user_id nor an email column; "
            "the first line must name the columns, e.g. user_id,email,name,status"
        )
    rows: list[RosterRow] = []
    errors: list[ImportRowError] = []
    line = reader.line_num
    while True:
        start = line + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append(ImportRowError(line=start, message=f"cannot be read as CSV: {exc}"))
            break
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue  # blank lines (a spreadsheet's trailing ones) are not rows
        if len(rows) >= MAX_IMPORT_ROWS:
            errors.append(
                ImportRowError(
                    line=start,
                    message=f"more than {MAX_IMPORT_ROWS:,} rows; split the file and import each part",
                )
            )
            break
        if len(cells) > len(header):
            errors.append(
                ImportRowError(
                    line=start,
                    message=f"has {len(cells)} cells but the header names {len(header)} columns "
                    f"(a {delimiter!r} inside a value must be in double quotes)",
                )
            )
            continue
        name = _value(cells, columns, "name")
        if name is None and ("first_name" in columns or "last_name" in columns):
            parts = (_value(cells, columns, "first_name"), _value(cells, columns, "last_name"))
            name = " ".join(p for p in parts if p) or None
        rows.append(
            RosterRow(
                start,
                _value(cells, columns, "user_id"),
                _value(cells, columns, "email"),
                name,
                _value(cells, columns, "status"),
            )
        )
    return rows, errors


def _value(cells: list[str], columns: dict[str, int], column: str) -> str | None:
    """A row's cell of ``column``, stripped; None when empty or absent."""
    index = columns.get(column)
    value = cells[index].strip() if index is not None and index < len(cells) else ""
    return value or None


@dataclass(slots=True)
class _Checked:
    """A valid row, its student resolved: an enrollment (``user_id``) or an invitation (``invite``)."""

    line: int
    user_id: str | None
    email: str | None  # as given
    invite: str | None  # lower-cased email of an invitation
    name: str | None
    status: RowStatus
    moves: bool = True  # the status changes (an outbox row; sockets join or leave)
    names: bool = True  # the user's row is written (new, or its name or email changes)


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


class Roster(AccessRules):
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
            await self._manager_access(db, actor, course_id)
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
                teacher_id = (await self._manager_access(db, actor, course_id)).course.teacher_id
                result, _ = await self._plan(db, course_id, teacher_id, rows, errors)
            return result.model_copy(update={"dry_run": True})
        async with self._write() as unit:
            teacher_id = (await self._manager_access(unit.db, actor, course_id)).course.teacher_id
            result, plan = await self._plan(unit.db, course_id, teacher_id, rows, errors)
            if result.errors:
                raise RosterImportRefused(result)  # rolls the transaction back: nothing written
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

    async def _plan(
        self,
        db: AsyncSession,
        course_id: str,
        teacher_id: str,
        rows: Sequence[RosterRow],
        errors: list[ImportRowError],
    ) -> tuple[ImportResult, list[_Checked]]:
        """Validate and resolve every row; count what would change. The plan holds only rows that
        change something; a row whose status stays (its name or email changes) has ``moves`` off."""
        errors = list(errors)
        checked: list[_Checked] = []
        by_user: dict[str, int] = {}
        by_email: dict[str, int] = {}
        for row in rows:
            problem, item = _check_row(row, teacher_id)
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
        resolved: list[_Checked] = []
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
                if item.user_id == teacher_id:
                    errors.append(
                        ImportRowError(
                            line=item.line,
                            message=f"{item.email} is the course's teacher, who cannot enroll in it",
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
        plan: list[_Checked] = []
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

    async def _apply(self, db: AsyncSession, course_id: str, plan: list[_Checked], now: datetime) -> None:
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
            await self._manager_access(db, actor, course_id)
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

    async def list_invitations(self, actor: Identity, course_id: str) -> list[InvitationView]:
        """Students imported by email who have not signed in yet."""
        async with self.database.read() as db:
            await self._manager_access(db, actor, course_id)
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
                        select(RosterInvite, Course.teacher_id)
                        .join(Course, Course.id == RosterInvite.course_id)
                        .where(RosterInvite.email == email)
                    )
                ).all()
                await self.users.ensure(unit.db, actor)
                for invite, teacher_id in rows:
                    if teacher_id != actor.user_id:
                        existing = await unit.db.get(Enrollment, (invite.course_id, actor.user_id))
                        if existing is None:
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


def _check_row(row: RosterRow, teacher_id: str) -> tuple[str | None, _Checked | None]:
    """Why the row is bad, or the row checked."""
    if row.user_id is None and row.email is None:
        return "has neither a user_id nor an email; give at least one", None
    if row.user_id is not None and not ID_RE.match(row.user_id):
        return (
            f"user_id {row.user_id[:40]!r} is not valid: use 1 to 128 letters, digits or ._:@- "
            "starting with a letter or digit",
            None,
        )
    if row.email is not None and (len(row.email) > 320 or not EMAIL_RE.match(row.email)):
        return f"email {row.email[:60]!r} is not an email address (name@domain)", None
    if row.name is not None and len(row.name) > 200:
        return f"name is {len(row.name)} characters long; at most 200", None
    status = (row.status or "approved").strip().lower()
    if status not in ROW_STATUSES:
        return (
            f"status {row.status[:20]!r} is not one of {', '.join(ROW_STATUSES)} (empty means approved)"
            if row.status
            else "status is empty",
            None,
        )
    if row.user_id is not None and row.user_id == teacher_id:
        return f"{row.user_id!r} is the course's teacher, who cannot enroll in it", None
    invite = row.email.lower() if row.user_id is None and row.email is not None else None
    return None, _Checked(row.line, row.user_id, row.email, invite, row.name, cast(RowStatus, status))


def _chunks(items: Sequence[T]) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), BATCH_ROWS):
        yield items[start : start + BATCH_ROWS]
