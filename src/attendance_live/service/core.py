"""What every part of the service shares: its dependencies and the unit of work.

A unit of work is one write transaction plus the domain events it will
publish. The events are applied to the read caches and published only after
the transaction commits (``_write``), never for a rolled-back change.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from attendance_live.db.engine import Database
from attendance_live.service.cache import Caches
from attendance_live.service.errors import InvalidInput
from attendance_live.service.events import DomainEvent, EventBus
from attendance_live.service.users import UserDirectory
from attendance_live.timeutil import Clock, utcnow
from attendance_live.vocabulary import ID_RE

__all__ = ["BATCH_ROWS", "ServiceCore", "Unit", "validate_id"]

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

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[Unit]:
        events: list[DomainEvent] = []
        async with self.database.write() as session:
            yield Unit(session, events)
        await self._committed(events)  # reached only when the transaction committed

    async def _committed(self, events: list[DomainEvent]) -> None:
        # Caches first, so that whoever reacts to an event reads the new state.
        for event in events:
            self.caches.apply(event)
        for event in events:
            await self.bus.publish(event)
