"""A session's roster rows, written after its start has been announced (issue 22).

A start commits the session row (``roster_pending`` true) and its outbox rows,
and is announced at once; the roster's ``absent`` rows (one per approved
enrollment) follow in a second transaction (``RosterFill.after_start``), so
the announcement never waits for N inserts. Until that transaction commits,
an approved enrollment without a record of the session *is* an ``absent``
record of it: ``missing_count`` and ``missing_rows`` are what every read adds
while ``roster_pending`` holds (statistics, the snapshot's totals, the session
body, the session CSV).

Why "the approved enrollments now" is the roster at the start: every change
of an enrollment first completes the pending rosters of its course, in its
own transaction (``complete_course``). On PostgreSQL that change and a start
of the same course take one advisory lock (``lock_course``), so either the
start commits first (the change then sees it pending and writes its rows
before changing anything) or the change does (it was before the start). On
SQLite writers are serialised anyway. A student approved after the start
therefore never lands in the roster by its completion; as before, it joins
on check-in.

Completion is idempotent and safe to race: it claims the session with
``UPDATE … SET roster_pending = false WHERE roster_pending`` (one winner; a
second completer waits on the row and then finds nothing to do) and inserts
with ``ON CONFLICT DO NOTHING`` (a check-in may have written a row already).
Who completes: the starting node right after the start; any node whose relay
delivers the start and still finds it pending ``grace_seconds`` later (the
starting node died between the two transactions); every node at start-up;
every enrollment change of the course; and an end, in its own transaction
before the end, so final statistics always hold every roster student.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import Select, String, and_, bindparam, cast, exists, func, literal, select, union_all, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from attendance_live.db.engine import Database
from attendance_live.db.models import AttendanceRecord, AttendanceSession, Enrollment, User

__all__ = ["ROSTER_LOCK", "RosterFill", "missing_count", "missing_rows", "roster_query"]

log = logging.getLogger(__name__)

# The first key of the PostgreSQL advisory lock a start and an enrollment change of one course share
# (the second is hashtext(course_id)).
ROSTER_LOCK = 0x726F_7374  # "rost"


def _missing_where(session_id: Any, course_id: Any, pending: Any) -> list[ColumnElement[bool]]:
    """Approved enrollments of the course without a record in the session, while it is pending."""
    record = AttendanceRecord.__table__.alias("roster_record")
    return [
        pending,
        Enrollment.course_id == course_id,
        Enrollment.status == "approved",
        # Correlated to the session and the enrollment of the enclosing queries, never joined anew.
        ~exists()
        .where(record.c.session_id == session_id, record.c.user_id == Enrollment.user_id)
        .correlate_except(record),
    ]


def _missing_number(session_id: Any, course_id: Any, pending: Any) -> ColumnElement[int]:
    """While the roster is pending no enrollment changes (each change completes it first) and
    every record belongs to an approved student, so the rows missing are the approved
    enrollments less the session's records of approved students: two index counts, no
    probe per student (the start's snapshot reads it under the stream's lock)."""
    record = AttendanceRecord.__table__.alias("roster_record")
    enrolled = Enrollment.__table__.alias("roster_enrolled")
    approved = (
        select(func.count())
        .select_from(Enrollment)
        .where(pending, Enrollment.course_id == course_id, Enrollment.status == "approved")
        .correlate_except(Enrollment)
        .scalar_subquery()
    )
    written = (
        select(func.count())
        .select_from(record)
        .join(
            enrolled,
            and_(
                enrolled.c.course_id == course_id,
                enrolled.c.user_id == record.c.user_id,
                enrolled.c.status == "approved",
            ),
        )
        .where(pending, record.c.session_id == session_id)
        .correlate_except(record, enrolled)
        .scalar_subquery()
    )
    return approved - written


def missing_count(session: type[AttendanceSession] | None = None) -> ColumnElement[int]:
    """How many roster students have no row yet (0 once written): correlated to ``session``
    (an outer query's session), or for the session bound as ``p_sid``."""
    if session is not None:
        return _missing_number(session.id, session.course_id, session.roster_pending.is_(True))
    s = AttendanceSession.__table__.alias("roster_session")
    number = _missing_number(s.c.id, s.c.course_id, s.c.roster_pending.is_(True))
    one = select(number).where(s.c.id == bindparam("p_sid", type_=String())).scalar_subquery()
    return func.coalesce(one, 0)


def missing_rows(session_id: str, user_id: str | None = None) -> Select[str, str]:
    """The roster students of ``session_id`` without a row yet (only ``user_id``'s when given),
    with their names: each reads as an unmarked ``absent`` record."""
    s = AttendanceSession.__table__.alias("roster_session")
    query = (
        select(Enrollment.user_id, User.name)
        .join(User, User.id == Enrollment.user_id)
        .join(s, s.c.id == session_id)
        .where(*_missing_where(literal(session_id, String()), s.c.course_id, s.c.roster_pending.is_(True)))
    )
    if user_id is not None:
        query = query.where(Enrollment.user_id == user_id)
    return query


def roster_query(session_id: str, user_id: str | None, *, pending: bool) -> Select[*tuple[Any, ...]]:
    """The session's roster as rows (user_id, name, status, marked_at, marked_by, remarks,
    code_attempts_blocked_at): its records, and while ``pending`` its missing rows (absent,
    unmarked); only ``user_id``'s when given."""
    R = AttendanceRecord  # noqa: N806
    written: Select[*tuple[Any, ...]] = (
        select(
            R.user_id,
            User.name,
            R.status,
            R.marked_at,
            R.marked_by,
            R.remarks,
            R.code_attempts_blocked_at,
        )
        .join(User, User.id == R.user_id)
        .where(R.session_id == session_id)
    )
    if user_id is not None:
        written = written.where(R.user_id == user_id)
    if not pending:
        return written
    unmarked = [
        literal(None, R.marked_at.type),
        literal(None, R.marked_by.type),
        literal(None, R.remarks.type),
        literal(None, R.code_attempts_blocked_at.type),
    ]
    missing = missing_rows(session_id, user_id).add_columns(literal("absent", String()), *unmarked)
    return select(union_all(written, missing).subquery())


class RosterFill:
    """Writes pending rosters; see the module docstring."""

    def __init__(self, database: Database, *, grace_seconds: float = 2.0) -> None:
        self.database = database
        self.grace_seconds = grace_seconds
        #: Tests only: awaited with the session id before the starting node's second transaction.
        self.gate: Callable[[str], Awaitable[None]] | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.postgres = database.dialect == "postgresql"
        S, R, E = AttendanceSession, AttendanceRecord, Enrollment  # noqa: N806
        sid = bindparam("p_sid", type_=String())
        cid = bindparam("p_cid", type_=String())
        self._claim = (
            update(S)
            .where(S.id == sid, S.roster_pending.is_(True))
            .values(roster_pending=False)
            .returning(S.course_id)
        )
        roster = select(cast(sid, String()), E.user_id, literal("absent", String())).where(
            E.course_id == cid, E.status == "approved"
        )
        columns = ["session_id", "user_id", "status"]
        key = [R.session_id, R.user_id]
        insert = postgresql.insert if self.postgres else sqlite.insert
        self._insert = insert(R).from_select(columns, roster).on_conflict_do_nothing(index_elements=key)
        self._pending = select(S.roster_pending).where(S.id == sid)
        self._pending_all = select(S.id).where(S.roster_pending.is_(True)).order_by(S.started_at)
        self._pending_in_course = select(S.id).where(S.course_id == cid, S.roster_pending.is_(True))
        self._lock = select(func.pg_advisory_xact_lock(ROSTER_LOCK, func.hashtext(cid)))

    # ------------------------------------------------------------ in a transaction

    def lock_course(self, conn: Connection, course_id: str) -> None:
        """PostgreSQL: hold the course's roster lock until the commit (a start, an enrollment change)."""
        if self.postgres:
            conn.execute(self._lock, {"p_cid": course_id})

    def complete_in(self, conn: Connection, session_id: str) -> int:
        """Write the session's missing roster rows if it is pending; returns the rows written."""
        course_id = conn.execute(self._claim, {"p_sid": session_id}).scalar()
        if course_id is None:
            return 0  # not pending (any more), or no such session
        result = conn.execute(self._insert, {"p_sid": session_id, "p_cid": course_id})
        return max(int(result.rowcount), 0)

    def complete_course(self, conn: Connection, course_id: str) -> None:
        """Before an enrollment of the course changes (in that change's transaction): lock the
        course, then complete its pending rosters from the enrollments as they were."""
        self.lock_course(conn, course_id)
        for session_id in list(conn.execute(self._pending_in_course, {"p_cid": course_id}).scalars()):
            self.complete_in(conn, session_id)

    # ------------------------------------------------------------------- on its own

    async def complete(self, session_id: str) -> int:
        """The second transaction: write the session's missing roster rows (none if not pending)."""
        pending = await self.database.run_read(
            lambda conn: conn.execute(self._pending, {"p_sid": session_id}).scalar()
        )
        if not pending:
            return 0
        written = await self.database.run_write(lambda conn: self.complete_in(conn, session_id))
        if written:
            log.debug("roster of session %s: %d absent rows written", session_id, written)
        return written

    async def complete_pending(self) -> int:
        """Complete every pending roster (at start-up: a node died between the two transactions)."""
        ids = await self.database.run_read(lambda conn: list(conn.execute(self._pending_all).scalars()))
        for session_id in ids:
            await self.complete(session_id)
        if ids:
            log.info("completed the roster of %d session(s) started before a crash", len(ids))
        return len(ids)

    def after_start(self, session_id: str) -> None:
        """The starting node, once the start is committed and handed to the relay: write it now
        (replacing the relay's later check of the same session)."""
        previous = self._tasks.get(session_id)
        if previous is not None:
            previous.cancel()
        self._spawn(session_id, self._after_start)

    def expect(self, session_id: str) -> None:
        """A start delivered by the relay: complete it ``grace_seconds`` later if still pending."""
        if session_id not in self._tasks:
            self._spawn(session_id, self._later)

    async def close(self) -> None:
        """Stop (a roster left pending is completed by another node or at the next start)."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    async def idle(self) -> None:
        """Wait for the completions under way (tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    def _spawn(self, session_id: str, work: Callable[[str], Awaitable[None]]) -> None:
        task = asyncio.create_task(self._run(session_id, work), name=f"roster:{session_id}")
        self._tasks[session_id] = task

        def forget(done: asyncio.Task[None]) -> None:
            if self._tasks.get(session_id) is done:
                del self._tasks[session_id]

        task.add_done_callback(forget)

    async def _run(self, session_id: str, work: Callable[[str], Awaitable[None]]) -> None:
        try:
            await work(session_id)
        except asyncio.CancelledError:
            raise
        except Exception:  # another node, the next start-up or the end completes it
            log.exception("writing the roster of session %s failed; it stays pending", session_id)

    async def _after_start(self, session_id: str) -> None:
        if self.gate is not None:
            await self.gate(session_id)
        await self.complete(session_id)

    async def _later(self, session_id: str) -> None:
        await asyncio.sleep(self.grace_seconds)
        await self.complete(session_id)
