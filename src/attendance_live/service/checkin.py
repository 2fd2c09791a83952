"""The check-in: the hot path of a lecture hall, so it is lean; and the rules that guard it.

One unit of work: a probe that answers refusals, repeats and records the
teacher already marked without writing; otherwise one conditional
``UPDATE … RETURNING`` and its audit row (``service.audit``). The unit runs
grouped with the check-ins beside it (``Database.run_write_grouped``: group
commit, each unit in a savepoint); the group's outbox rows (``service.outbox``,
one ``record`` row per changed record) are appended in its ``finish``, after
every unit, so the stream's lock is held only from there to the commit.

The session's rules, checked in this order after the caller's right to check
in (404/403) and the session being active (409): the client address must be
in ``allowed_networks`` when the session has them (``network_not_allowed``);
in ``code`` mode the body must carry the code in force, or the previous one
within the grace period (``code_required``, ``code_invalid``; ``service.codes``).
A refusal writes nothing. A repeat with a good code returns the record
unchanged, as in ``open`` mode. The unit is plain synchronous SQLAlchemy
Core, with statements built once per database
(``CheckInStatements``): per-statement driver round trips, statement building
and the ORM were most of a check-in's cost (docs/performance.md).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any
from urllib.parse import quote

from sqlalchemy import String, and_, bindparam, exists, select, update
from sqlalchemy.engine import Connection

from attendance_live.auth.tokens import Identity
from attendance_live.db.driver import DriverStatement
from attendance_live.db.engine import Database
from attendance_live.db.models import (
    AttendanceRecord,
    AttendanceSession,
    Course,
    CourseManager,
    Enrollment,
    User,
)
from attendance_live.networks import IPNetwork, in_networks, parse_address, parse_networks
from attendance_live.service.access import AccessRules, manages
from attendance_live.service.audit import AuditStatements
from attendance_live.service.codes import code_at, verify_code
from attendance_live.service.errors import CheckInRefused, Conflict, Forbidden, NotFound
from attendance_live.service.events import RecordChanged
from attendance_live.service.outbox import OutboxRow, record_row
from attendance_live.service.views import CheckInCodeView, RecordAudit, RecordView
from attendance_live.timeutil import iso_z

__all__ = ["CheckInStatements", "CheckIns", "check_in_path"]


def check_in_path(session_id: str, code: str) -> str:
    """The dashboard's check-in page for ``session_id`` with ``code`` filled in (the QR code's link)."""
    return f"/check-in/{quote(session_id, safe='')}?code={quote(code, safe='')}"


class CheckInStatements:
    """The check-in's statements, with bound parameters (``p_sid``, ``p_uid``, …)."""

    def __init__(self, database: Database) -> None:
        S, R = AttendanceSession, AttendanceRecord  # noqa: N806
        sid, uid = bindparam("p_sid", type_=String()), bindparam("p_uid", type_=String())
        now = bindparam("p_now", type_=R.marked_at.type)
        status = bindparam("p_status", type_=R.status.type)
        self.probe = (
            select(
                S.course_id,
                S.status,
                S.started_at,
                S.late_after_minutes,
                Course.teacher_id,
                Enrollment.status,
                R.status,
                R.marked_at,
                R.marked_by,
                R.remarks,
                User.name,
                S.check_in_mode,
                S.code_period_seconds,
                S.code_secret,
                S.allowed_networks,
                R.code_attempts_blocked_at,
                exists().where(CourseManager.course_id == S.course_id, CourseManager.user_id == uid),
            )
            .join(Course, Course.id == S.course_id)
            .outerjoin(Enrollment, and_(Enrollment.course_id == S.course_id, Enrollment.user_id == uid))
            .outerjoin(R, and_(R.session_id == S.id, R.user_id == uid))
            .outerjoin(User, User.id == uid)
            .where(S.id == sid)
        )
        self.lock = select(S.status).where(S.id == sid).with_for_update(read=True)
        # On PostgreSQL the probe takes that lock itself: one round trip a check-in fewer.
        self.probe_locked = self.probe.with_for_update(read=True, of=S)
        returning = (R.status, R.marked_at, R.marked_by, R.remarks)
        self.update = (
            update(R)
            .where(
                R.session_id == sid,
                R.user_id == uid,
                R.status == "absent",
                R.marked_by.is_(None),
                exists().where(S.id == sid, S.status == "active"),
            )
            .values(status=status, marked_at=now, marked_by=uid, checked_in_at=now)
            .returning(*returning)
        )
        self.state = (
            select(S.status, *returning)
            .select_from(S)
            .outerjoin(R, and_(R.session_id == S.id, R.user_id == uid))
            .where(S.id == sid)
        )
        row = {
            "session_id": sid,
            "user_id": uid,
            "status": status,
            "marked_at": now,
            "marked_by": uid,
            "checked_in_at": now,
        }
        self.insert = database.upsert(R, row, key=["session_id", "user_id"]).returning(*returning)
        self.audit = AuditStatements()
        self.code_source = select(
            S.course_id, S.status, S.check_in_mode, S.started_at, S.code_period_seconds, S.code_secret
        ).where(S.id == sid)
        self._statements: dict[str, Any] = {
            "probe": self.probe if database.is_sqlite else self.probe_locked,
            "lock": self.lock,
            "update": self.update,
            "state": self.state,
            "insert": self.insert,
            "audit": self.audit.check_in,
        }
        # On SQLite the unit's statements run on the driver's cursor (db/driver.py says why).
        self._driver = (
            {
                key: DriverStatement(s, database.sync_dialect)
                for key, s in self._statements.items()
                if key != "lock"
            }
            if database.is_sqlite
            else None
        )

    def rows(self, conn: Connection, key: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """The rows of statement ``key``: probe, lock, update, state, insert or audit."""
        if self._driver is not None:
            return self._driver[key].rows(conn, params)
        return [tuple(row) for row in conn.execute(self._statements[key], params)]


@dataclass(slots=True)
class _CheckedIn:
    """A check-in unit's result: the record, the change to announce, and (after the group's
    finish) its committed outbox row."""

    record: RecordView
    change: RecordChanged | None
    rows: list[OutboxRow]


class CheckIns(AccessRules):
    """The check-in and the check-in code; see the module docstring."""

    @cached_property
    def _check_in_statements(self) -> CheckInStatements:
        return CheckInStatements(self.database)

    @cached_property
    def _parsed_networks(self) -> dict[str, tuple[IPNetwork, ...]]:
        return {}

    def _networks(self, stored: str) -> tuple[IPNetwork, ...]:
        """A session's ``allowed_networks`` column, parsed once per distinct value."""
        networks = self._parsed_networks.get(stored)
        if networks is None:
            if len(self._parsed_networks) > 1000:
                self._parsed_networks.clear()
            networks = self._parsed_networks[stored] = parse_networks(json.loads(stored), "stored network")
        return networks

    async def check_in(
        self,
        actor: Identity,
        session_id: str,
        *,
        code: str | None = None,
        address: str | None = None,
        device_id: str | None = None,
    ) -> RecordView:
        """Check the caller in: present, or late after the session's late threshold; idempotent.

        ``address`` is the client's (``api.client_address``), ``device_id`` what
        the client sent to name its device; both go to the audit trail.
        """
        now = self.clock()
        q = self._check_in_statements
        params: dict[str, object] = {"p_sid": session_id, "p_uid": actor.user_id}

        def unit(conn: Connection) -> _CheckedIn:
            """The record, and the change to announce when there was one.

            Raises the refusals before anything is written (the unit's savepoint undoes nothing).
            """
            found = q.rows(conn, "probe", params)
            row = found[0] if found else None
            if row is None:
                raise NotFound(f"Session {session_id!r} not found")
            (
                course_id,
                session_status,
                started_at,
                late_minutes,
                teacher_id,
                enrollment,
                record_status,
                marked_at,
                marked_by,
                remarks,
                stored_name,
                mode,
                period,
                secret,
                networks,
                blocked_at,
                co_manager,
            ) = row
            if manages(actor, teacher_id, bool(co_manager)):
                raise Forbidden("Only approved students of the course can check in")
            if enrollment == "pending":
                raise Forbidden(
                    "Your enrollment in this course is pending; ask the course's teacher to approve it"
                )
            if enrollment != "approved":
                raise NotFound(f"Session {session_id!r} not found")
            if session_status != "active":
                raise Conflict(f"Session {session_id!r} has ended; check-in is closed")
            if networks is not None:
                self._require_network(address, self._networks(networks))
            if mode == "code":
                self._require_code(code, secret, started_at, period, now)
            name = stored_name or actor.name

            def checked_in(audit: RecordAudit | None, record: Sequence[Any]) -> _CheckedIn:
                status, at, by, note = record
                view = RecordView(
                    user_id=actor.user_id,
                    name=name,
                    status=status,
                    marked_at=iso_z(at),
                    marked_by=by,
                    remarks=note,
                    audit=audit,
                    code_attempts_blocked_at=iso_z(blocked_at),
                )
                change = None
                if audit is not None:
                    change = RecordChanged(course_id, session_id, actor.user_id, True, record=view)
                return _CheckedIn(view, change, [])

            if record_status is not None and not (record_status == "absent" and marked_by is None):
                # A repeat, or the teacher's mark: the record as it is.
                return checked_in(None, (record_status, marked_at, marked_by, remarks))

            params["p_status"] = "late" if now - started_at > timedelta(minutes=late_minutes) else "present"
            params["p_now"] = now
            params["p_addr"] = address
            params["p_dev"] = device_id
            # On PostgreSQL the probe's share lock on the session row (``probe_locked``) holds off
            # a concurrent end until this commits, so the end's final statistics count this
            # check-in, and the status it read is the committed one (SQLite's writers are
            # serialised already).
            changed = q.rows(conn, "update", params)
            if not changed:
                # Raced with another check-in or a mark, or not on the roster yet.
                (state,) = q.rows(conn, "state", params)
                if state[0] != "active":
                    raise Conflict(f"Session {session_id!r} has ended; check-in is closed")
                if state[1] is not None:
                    return checked_in(None, state[1:])
                # Approved after the session started: joins the roster now.
                changed = q.rows(conn, "insert", params)
                if not changed:  # another check-in of this user won the race
                    return checked_in(None, q.rows(conn, "state", params)[0][1:])
            return checked_in(self._audit_check_in(conn, params), changed[0])

        # Ordered by session and student, so two nodes' groups lock the records
        # in the same order (db/engine.py): they wait for each other, never deadlock.
        done = await self.database.run_write_grouped(
            unit, finish=self._append_check_ins, order=f"check-in {session_id} {actor.user_id}"
        )
        if done.change is not None:
            await self._committed([done.change], done.rows)
        return done.record.model_copy(update={"audit": None})  # the trail is the teacher's

    def _append_check_ins(self, conn: Connection, results: list[_CheckedIn]) -> None:
        """The group's outbox rows, after all its units (``Database.run_write_grouped``'s finish)."""
        changed = [r for r in results if r.change is not None]
        if not changed:
            return
        rows = self.outbox.append(
            conn,
            [record_row(r.change, r.record) for r in changed if r.change is not None],
            self.clock(),
        )
        for result, row in zip(changed, rows, strict=True):
            result.rows.append(row)

    def _audit_check_in(self, conn: Connection, params: dict[str, Any]) -> RecordAudit:
        """Write the check-in's audit row, flagged when its address or device checked in another student."""
        ((same_address, same_device),) = self._check_in_statements.rows(conn, "audit", params)
        at: datetime = params["p_now"]
        return RecordAudit(
            how="check_in",
            by=params["p_uid"],
            at=iso_z(at) or "",
            address=params["p_addr"],
            device_id=params["p_dev"],
            same_address_as=same_address,
            same_device_as=same_device,
        )

    @staticmethod
    def _require_network(address: str | None, networks: Sequence[IPNetwork]) -> None:
        parsed = parse_address(address) if address is not None else None
        if parsed is None or not in_networks(parsed, networks):
            raise CheckInRefused(
                "network_not_allowed",
                "This session accepts check-ins only from the classroom's network"
                + (f" (your address is {address})" if address else "")
                + "; connect to the campus network (Wi-Fi) in the room and try again",
            )

    def _require_code(
        self, code: str | None, secret: str, started_at: datetime, period: int, now: datetime
    ) -> None:
        if code is None or not code.strip():
            raise CheckInRefused(
                "code_required",
                "This session needs the check-in code shown in the room; "
                "scan the QR code or type the code, then check in",
            )
        if not verify_code(secret, started_at, period, self.check_in_code_grace_seconds, now, code):
            raise CheckInRefused(
                "code_invalid",
                "That check-in code is wrong or has expired (codes change every "
                f"{period} s); type the code shown in the room now, or scan the QR code again",
            )

    async def check_in_code(self, actor: Identity, session_id: str) -> CheckInCodeView:
        """The code in force, for the course's teacher and admins; Conflict when ended or open."""
        async with self.database.read() as db:
            _, access = await self._session_access(db, actor, session_id)
        if not access.manages:
            raise Forbidden("Only the course's teacher or an admin can show the check-in code")
        view = await self.current_code(session_id)
        if view is None:
            raise Conflict(
                f"Session {session_id!r} has ended or checks students in without a code (open mode); "
                'start a session with check_in_mode "code" to get codes'
            )
        return view

    async def current_code(self, session_id: str) -> CheckInCodeView | None:
        """The code in force now (no access check: for an authorized teacher); None if ended or open."""
        q = self._check_in_statements
        params = {"p_sid": session_id}
        row = await self.database.run_read(lambda conn: conn.execute(q.code_source, params).first())
        if row is None:
            raise NotFound(f"Session {session_id!r} not found")
        _, status, mode, started_at, period, secret = row
        if status != "active" or mode != "code":
            return None
        current = code_at(secret, started_at, period, self.clock())
        return CheckInCodeView(
            session_id=session_id,
            code=current.code,
            period_seconds=period,
            expires_at=iso_z(current.expires_at) or "",
            check_in_url=check_in_path(session_id, current.code),
        )
