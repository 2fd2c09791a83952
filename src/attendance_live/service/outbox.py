"""The transactional outbox: every domain event as rows of one stream, written in its change's transaction.

Rows are appended just before the commit of the change they describe
(``ServiceCore._write`` for the units of work, the ``finish`` of a group of
check-ins in ``service.checkin``). Positions (``outbox.id``) are the previous
maximum plus one, allocated while holding a lock that lasts until the commit:
SQLite's write lock (writers begin with ``BEGIN IMMEDIATE``), and on
PostgreSQL ``pg_advisory_xact_lock(STREAM_LOCK)`` taken right before. So
positions are gap-free and in commit order: once position ``n`` is visible,
every position below it is. ``course_offset`` counts a course's rows the same
way.

Course events are stored as clients receive them, so a replay is exact:

* a start: ``courseSessionStarted`` (the committed session's
  ``started_payload``), then ``activeSessionsData`` (the course's snapshot,
  read under the lock, so it includes every change committed before it);
* an end: ``courseSessionEnded``, then ``activeSessionsData``;
* ``record`` (a record that changed: the committed view, for the student and
  the roster) and ``enrollment`` (user and status; for a join request also
  ``requested``, ``name``, ``email``) and ``manager`` (a co-manager added, changed or
  removed: user and role): rows of their own kinds,
  for every node's relay, never replayed to clients.

On PostgreSQL the lock and the reads after it run at READ COMMITTED (the
default): each statement after the lock sees everything committed before it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Final, NamedTuple

import orjson
from sqlalchemy import String, bindparam, delete, func, insert, select
from sqlalchemy.engine import Connection

from attendance_live.db.models import OutboxEvent, RecoverySession
from attendance_live.payloads import active_sessions_data, ended_payload, started_payload
from attendance_live.service.events import (
    DomainEvent,
    EnrollmentChanged,
    ManagerChanged,
    RecordChanged,
    SessionEnded,
    SessionStarted,
)
from attendance_live.service.snapshots import active_sessions_in, summary_in
from attendance_live.service.views import RecordView
from attendance_live.timeutil import iso_z

__all__ = [
    "COURSE_EVENTS",
    "ENROLLMENT",
    "MANAGER",
    "PRUNE_CHUNK",
    "RECORD",
    "STREAM_LOCK",
    "Outbox",
    "OutboxRow",
    "PendingRow",
    "event_of",
    "record_row",
]

# The course events, stored as their Socket.IO event names (what recovery replays).
COURSE_EVENTS: Final = ("courseSessionStarted", "courseSessionEnded", "activeSessionsData")
RECORD: Final = "record"
ENROLLMENT: Final = "enrollment"
MANAGER: Final = "manager"
# The key of the PostgreSQL advisory lock that serialises position allocation.
STREAM_LOCK: Final = 0x6174_7465_6E64  # "attend"
# Most outbox rows one prune statement deletes (a short write lock on SQLite).
PRUNE_CHUNK: Final = 5000


class PendingRow(NamedTuple):
    """A row to append: its course, kind, and payload (JSON-serialisable)."""

    course_id: str
    kind: str
    payload: dict[str, Any]


class OutboxRow(NamedTuple):
    """A committed row of the stream."""

    position: int
    course_id: str
    kind: str
    payload: dict[str, Any]


def record_row(event: RecordChanged, record: RecordView) -> PendingRow:
    """The row of a record change: the committed record with its audit (the roster sees it)."""
    return PendingRow(
        event.course_id,
        RECORD,
        {
            "session_id": event.session_id,
            "user_id": event.user_id,
            "count_changed": event.count_changed,
            "record": record.model_dump(),
        },
    )


def event_of(row: OutboxRow) -> DomainEvent | None:
    """The domain event a row stands for (for the caches on every node); None for snapshots."""
    p = row.payload
    if row.kind == "courseSessionStarted":
        return SessionStarted(row.course_id, p["session_id"])
    if row.kind == "courseSessionEnded":
        return SessionEnded(row.course_id, p["session_id"])
    if row.kind == RECORD:
        return RecordChanged(row.course_id, p["session_id"], p["user_id"], bool(p["count_changed"]))
    if row.kind == ENROLLMENT:
        return EnrollmentChanged(
            row.course_id,
            p["user_id"],
            p["status"],
            requested=bool(p.get("requested")),
            name=p.get("name"),
            email=p.get("email"),
        )
    if row.kind == MANAGER:
        return ManagerChanged(row.course_id, p["user_id"], p["role"])
    return None


class Outbox:
    """Appends, reads and prunes the stream (synchronous units: ``Connection`` in, rows out)."""

    def __init__(self, dialect: str) -> None:
        self.postgres = dialect == "postgresql"
        table = OutboxEvent.__table__
        self._lock = select(func.pg_advisory_xact_lock(STREAM_LOCK))
        self._max_id = select(func.max(table.c.id))
        self._min_id = select(func.min(table.c.id))
        self._max_offset = select(func.max(table.c.course_offset)).where(
            table.c.course_id == bindparam("p_cid", type_=String())
        )
        self._insert = insert(OutboxEvent)
        self._after = (
            select(table.c.id, table.c.course_id, table.c.kind, table.c.payload)
            .where(table.c.id > bindparam("p_after"))
            .order_by(table.c.id)
            .limit(bindparam("p_limit"))
        )
        self._course_events = (
            select(table.c.id, table.c.course_id, table.c.kind, table.c.payload)
            .where(
                table.c.id > bindparam("p_after"),
                table.c.id <= bindparam("p_upto"),
                table.c.course_id.in_(bindparam("p_courses", expanding=True)),
                table.c.kind.in_(COURSE_EVENTS),
            )
            .order_by(table.c.id)
        )
        self._prune_bound = select(func.max(table.c.id)).where(
            table.c.created_at < bindparam("p_cutoff", type_=table.c.created_at.type)
        )
        self._prune = delete(OutboxEvent).where(OutboxEvent.id <= bindparam("p_bound"))
        recovery = RecoverySession
        self._prune_recovery = delete(recovery).where(
            (recovery.disconnected_at < bindparam("p_gone", type_=recovery.disconnected_at.type))
            | (recovery.updated_at < bindparam("p_stale", type_=recovery.updated_at.type))
        )

    # ------------------------------------------------------------------ writing

    def lock(self, conn: Connection) -> None:
        """Hold the stream's lock until the commit (PostgreSQL; SQLite's writer holds it already)."""
        if self.postgres:
            conn.execute(self._lock)

    def append(
        self, conn: Connection, rows: Sequence[PendingRow], now: datetime, *, locked: bool = False
    ) -> list[OutboxRow]:
        """Append ``rows`` in order at the end of the stream; call it last in the transaction."""
        if not rows:
            return []
        if not locked:
            self.lock(conn)
        position = conn.execute(self._max_id).scalar() or 0
        offsets: dict[str, int] = {}
        values: list[dict[str, Any]] = []
        committed: list[OutboxRow] = []
        for course_id, kind, payload in rows:
            if course_id not in offsets:
                offsets[course_id] = conn.execute(self._max_offset, {"p_cid": course_id}).scalar() or 0
            position += 1
            offsets[course_id] += 1
            values.append(
                {
                    "id": position,
                    "course_id": course_id,
                    "course_offset": offsets[course_id],
                    "kind": kind,
                    "payload": orjson.dumps(payload).decode(),
                    "created_at": now,
                }
            )
            committed.append(OutboxRow(position, course_id, kind, payload))
        conn.execute(self._insert, values)
        return committed

    def append_events(
        self, conn: Connection, events: Iterable[DomainEvent], now: datetime
    ) -> list[OutboxRow]:
        """The rows of a unit of work's ``events``: locks first, so the snapshots read after it are
        the course's state at this commit."""
        self.lock(conn)
        pending: list[PendingRow] = []
        for event in events:
            if isinstance(event, SessionStarted | SessionEnded):
                # A start's payload carries no statistics: no roster is read under the lock.
                view = summary_in(conn, event.session_id, statistics=isinstance(event, SessionEnded))
                if view is None:  # cannot be: the unit wrote it; say so rather than store nothing
                    raise LookupError(f"session {event.session_id!r} vanished inside its own transaction")
                if isinstance(event, SessionStarted):
                    pending.append(PendingRow(event.course_id, "courseSessionStarted", started_payload(view)))
                else:
                    pending.append(PendingRow(event.course_id, "courseSessionEnded", ended_payload(view)))
                snapshot = active_sessions_data(active_sessions_in(conn, event.course_id))
                pending.append(PendingRow(event.course_id, "activeSessionsData", snapshot))
            elif isinstance(event, RecordChanged):
                if event.record is None:
                    raise ValueError("a RecordChanged from the service carries its committed record")
                pending.append(record_row(event, event.record))
            elif isinstance(event, ManagerChanged):
                pending.append(
                    PendingRow(event.course_id, MANAGER, {"user_id": event.user_id, "role": event.role})
                )
            else:
                payload: dict[str, Any] = {"user_id": event.user_id, "status": event.status}
                if event.requested:  # a join request: what the managers' event shows
                    payload.update(
                        requested=True, name=event.name, email=event.email, requested_at=iso_z(now)
                    )
                pending.append(PendingRow(event.course_id, ENROLLMENT, payload))
        return self.append(conn, pending, now, locked=True)

    # ------------------------------------------------------------------ reading

    def last_position(self, conn: Connection) -> int:
        return int(conn.execute(self._max_id).scalar() or 0)

    def read_after(self, conn: Connection, after: int, limit: int) -> list[OutboxRow]:
        """Up to ``limit`` rows after position ``after``, in order."""
        found = conn.execute(self._after, {"p_after": after, "p_limit": limit})
        return [OutboxRow(int(i), c, k, orjson.loads(p)) for i, c, k, p in found]

    def read_course_events(
        self, conn: Connection, courses: Collection[str], after: int, upto: int
    ) -> list[OutboxRow] | None:
        """The course rows of ``courses`` with ``after < position <= upto``; None if some may be gone."""
        if after > upto:
            return None  # not a position this node has reached (another database, or a node ahead)
        oldest = conn.execute(self._min_id).scalar()
        if oldest is None:
            return [] if after == upto else None
        if after < oldest - 1:
            return None  # pruned
        if after == upto or not courses:
            return []
        found = conn.execute(
            self._course_events, {"p_after": after, "p_upto": upto, "p_courses": list(courses)}
        )
        return [OutboxRow(int(i), c, k, orjson.loads(p)) for i, c, k, p in found]

    # ------------------------------------------------------------------ pruning

    def prune(self, conn: Connection, now: datetime, retention: float, recovery_window: float) -> int:
        """Delete up to ``PRUNE_CHUNK`` rows older than ``retention`` seconds (never the newest row,
        which keeps the next position where it is, and never a hole: rows stay contiguous), and the
        recovery states past their window or left by a dead node; returns the outbox rows deleted."""
        cutoff = now - timedelta(seconds=retention)
        conn.execute(
            self._prune_recovery,
            {"p_gone": now - timedelta(seconds=recovery_window), "p_stale": cutoff},
        )
        bound = conn.execute(self._prune_bound, {"p_cutoff": cutoff}).scalar()
        oldest = conn.execute(self._min_id).scalar()
        newest = conn.execute(self._max_id).scalar()
        if bound is None or oldest is None or newest is None:
            return 0
        bound = min(int(bound), int(newest) - 1, int(oldest) + PRUNE_CHUNK - 1)
        if bound < oldest:
            return 0
        result = conn.execute(self._prune, {"p_bound": bound})
        return int(result.rowcount)
