"""What every part of the service shares: its dependencies and the unit of work.

A unit of work is one write transaction plus the domain events it will
publish. Just before the commit the events become rows of the outbox
(``service.outbox``), in the same transaction; after it, the events are
applied to the read caches, the committed rows are handed to the relay
(``row_sinks``: low latency on this node; every other node reads the same rows)
and the events are published on the bus, never for a rolled-back change.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from attendance_live.db.engine import Database
from attendance_live.limits import Limiter, MemoryLimiter, Rate
from attendance_live.service.cache import Caches
from attendance_live.service.errors import InvalidInput
from attendance_live.service.events import DomainEvent, EventBus
from attendance_live.service.outbox import Outbox, OutboxRow
from attendance_live.service.roster_fill import RosterFill
from attendance_live.service.users import UserDirectory
from attendance_live.timeutil import Clock, utcnow
from attendance_live.vocabulary import ID_RE

__all__ = ["BATCH_ROWS", "RowSink", "ServiceCore", "Unit", "validate_id"]

log = logging.getLogger(__name__)

# Told the rows of every transaction this process commits, in commit order per caller.
RowSink = Callable[[Sequence[OutboxRow]], None]

BATCH_ROWS = 500  # rows per multi-row statement (SQLite allows 32,766 parameters)


def validate_id(value: str, what: str) -> str:
    """``value`` if it is a valid id (``vocabulary.ID_PATTERN``); otherwise InvalidInput naming it."""
    if not ID_RE.match(value):
        raise InvalidInput(
            f"{what} {value[:40]!r} is not valid: use 1 to 128 letters, digits or ._:@- "
            "starting with a letter or digit"
        )
    return value


@dataclass(slots=True)
class Unit:
    """One transaction and the events it will publish once committed."""

    db: AsyncSession
    events: list[DomainEvent] = field(default_factory=list)


class ServiceCore:
    """The service's dependencies and its unit of work; the concerns build on it."""

    def __init__(
        self,
        database: Database,
        bus: EventBus,
        *,
        clock: Clock = utcnow,
        default_max_minutes: int = 180,
        default_late_minutes: int = 10,
        caches: Caches | None = None,
        check_in_code_grace_seconds: float = 5.0,
        kill_after_commit: str | None = None,
        limiter: Limiter | None = None,
        code_attempts: Rate | None = None,
        join_attempts: Rate | None = None,
    ) -> None:
        self.database = database
        self.bus = bus
        self.caches = caches or Caches()
        self.clock = clock
        self.default_max_minutes = default_max_minutes
        self.default_late_minutes = default_late_minutes
        # How long a replaced check-in code is still accepted (service.codes).
        self.check_in_code_grace_seconds = check_in_code_grace_seconds
        self.users = UserDirectory(database, clock)
        self.outbox = Outbox(database.dialect)
        # Roster rows written after a start is announced (issue 22; service.roster_fill).
        self.rosters = RosterFill(database)
        self.row_sinks: list[RowSink] = []
        # Tests only (KILL_AFTER_COMMIT_FOR_TESTS): die right after committing a row of this kind,
        # before any relay saw it, as a node killed between its commit and its broadcast.
        self.kill_after_commit = kill_after_commit
        # Limits (attendance_live.limits): shared by every node when built on Redis. Wrong check-in
        # codes per student and session (CHECK_IN_CODE_ATTEMPTS per CHECK_IN_CODE_WINDOW_SECONDS);
        # refused join codes per user (JOIN_CODE_ATTEMPTS per JOIN_CODE_WINDOW_SECONDS).
        self.limiter: Limiter = limiter or MemoryLimiter()
        self.code_attempts = code_attempts or Rate(5, 60)
        self.join_attempts = join_attempts or Rate(10, 600)

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[Unit]:
        events: list[DomainEvent] = []
        async with self.database.write() as session:
            yield Unit(session, events)
            rows: list[OutboxRow] = []
            if events:
                await session.flush()
                now = self.clock()
                rows = await session.run_sync(
                    lambda sync: self.outbox.append_events(sync.connection(), events, now)
                )
        await self._committed(events, rows)  # reached only when the transaction committed

    async def _before_enrollment_change(self, unit: Unit, course_id: str) -> None:
        """Call before changing an enrollment of ``course_id`` in ``unit``: the pending rosters of
        its sessions are written from the enrollments as they were at their start."""
        await unit.db.run_sync(lambda sync: self.rosters.complete_course(sync.connection(), course_id))

    async def _committed(self, events: Sequence[DomainEvent], rows: Sequence[OutboxRow]) -> None:
        # Caches first, so that whoever reacts to an event reads the new state.
        for event in events:
            self.caches.apply(event)
        if self.kill_after_commit is not None and any(r.kind == self.kill_after_commit for r in rows):
            log.warning("KILL_AFTER_COMMIT_FOR_TESTS: killing this process after its commit")
            os.kill(os.getpid(), signal.SIGKILL)
        for sink in self.row_sinks:
            sink(rows)
        for event in events:
            await self.bus.publish(event)
