"""User rows, kept in step with the claims of the tokens users authenticate with.

A write happens only when the claims differ from what this process last wrote.
No request waits for it: the refresh joins a batch written in the background,
so a lecture hall reconnecting (or checking in) at once becomes a few
multi-row upserts instead of hundreds of single-row transactions queued on
SQLite's one writer. The operations that store a reference to the caller
(creating a course, starting or ending a session) ``ensure`` the row inside
their own transaction; a student's row exists from its enrollment.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import bindparam, case, func
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnCollection
from sqlalchemy.sql.dml import Insert

from attendance_live.auth.tokens import Identity
from attendance_live.db.engine import Database
from attendance_live.db.models import User
from attendance_live.timeutil import Clock
from attendance_live.vocabulary import Role

__all__ = ["BATCH_DELAY_SECONDS", "BATCH_ROWS", "Facts", "UserDirectory", "name_and_email"]

log = logging.getLogger(__name__)

BATCH_ROWS = 500
BATCH_DELAY_SECONDS = 0.05

Facts = tuple[str, str | None, Role]
_COLUMNS = ("id", "name", "email", "role", "created_at", "updated_at")


def name_and_email(excluded: ColumnCollection[str, Any]) -> dict[str, Any]:
    """What a user upsert sets of the name and email: each given one wins, one left out keeps
    what is stored (a name left out arrives as the user's id)."""
    return {
        "name": case((excluded.name == excluded.id, User.name), else_=excluded.name),
        "email": func.coalesce(excluded.email, User.email),
    }


def _facts(actor: Identity) -> Facts:
    return (actor.name, actor.email, actor.role)


class UserDirectory:
    def __init__(self, database: Database, clock: Clock) -> None:
        self.database = database
        self.clock = clock
        self._written: dict[str, Facts] = {}
        self._pending: dict[str, Identity] = {}
        self._flusher: asyncio.Task[None] | None = None
        # Told the users whose rows were just written (the roster's email invitations).
        self.on_written: Callable[[Sequence[Identity]], Awaitable[object]] | None = None

    async def remember(self, actor: Identity) -> None:
        """Create or refresh the row now (skipped when this process already wrote these claims)."""
        if self._written.get(actor.user_id) != _facts(actor):
            await self._write([actor])

    def remember_later(self, actor: Identity) -> None:
        """Create or refresh the row in the next background batch."""
        if self._written.get(actor.user_id) == _facts(actor):
            return
        self._pending[actor.user_id] = actor
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_soon(), name="user-rows")

    async def ensure(self, db: AsyncSession, actor: Identity) -> None:
        """Make sure the row exists inside ``db``'s transaction (before a reference to it).

        Cheap when this process has written the row before; otherwise one
        insert that does nothing if the row is there.
        """
        if actor.user_id in self._written:
            return
        now = self.clock()
        row = {
            "id": actor.user_id,
            "name": actor.name,
            "email": actor.email,
            "role": actor.role,
            "created_at": now,
            "updated_at": now,
        }
        await db.execute(self.database.upsert(User, row, key=[User.id]))

    def forget(self, user_id: str) -> None:
        """The row was changed elsewhere (an enrollment named the user): refresh next time."""
        self._written.pop(user_id, None)

    async def flush(self) -> None:
        """Write every pending refresh now (at shutdown, and in tests)."""
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        while self._pending:
            await self._write_pending()

    async def _flush_soon(self) -> None:
        await asyncio.sleep(BATCH_DELAY_SECONDS)
        while self._pending:
            await self._write_pending()

    async def _write_pending(self) -> None:
        batch = list(self._pending.values())[:BATCH_ROWS]
        for actor in batch:
            del self._pending[actor.user_id]
        try:
            await self._write(batch)
        except (SQLAlchemyError, OSError) as exc:
            # The next authentication of each of these users tries again.
            log.warning("could not refresh %d user row(s): %s", len(batch), type(exc).__name__)

    @functools.cached_property
    def _upsert(self) -> Insert:
        """One row's upsert with bound parameters, built once: a batch runs it as an executemany.

        (A multi-row ``VALUES`` statement was compiled afresh for every batch
        size, which a burst of first-time users paid for on every batch.)
        """
        row = {column: bindparam(f"u_{column}", type_=User.__table__.c[column].type) for column in _COLUMNS}
        # A claim the token lacks keeps what is stored (a name set at enrollment,
        # an email); a claim it carries wins.
        return self.database.upsert(
            User,
            row,
            key=[User.id],
            update=lambda excluded: {
                **name_and_email(excluded),
                "role": excluded.role,
                "updated_at": excluded.updated_at,
            },
        )

    async def _write(self, actors: Sequence[Identity]) -> None:
        now = self.clock()
        rows = [
            {
                "u_id": a.user_id,
                "u_name": a.name,
                "u_email": a.email,
                "u_role": a.role,
                "u_created_at": now,
                "u_updated_at": now,
            }
            for a in actors
        ]
        statement = self._upsert
        await self.database.run_write(lambda conn: conn.execute(statement, rows))
        for actor in actors:
            self._written[actor.user_id] = _facts(actor)
        if self.on_written is not None and any(a.email for a in actors):
            try:
                await self.on_written(actors)
            except (SQLAlchemyError, OSError) as exc:
                # Tried again at the user's next sign-in on a process that has not written its row.
                log.warning("could not link roster invitations: %s", type(exc).__name__)
