"""User rows, kept in step with the claims of the tokens users authenticate with.

A write happens only when the claims would change what is stored: a
connection or check-in of a known user whose name, email and role are
unchanged costs no write (issue 22). What is stored is known from a cache of
the rows this process has written or read (``stored``); a user it does not
hold is looked up in the background, in one ``IN`` query for the whole batch
of users that authenticated meanwhile, and only the rows that differ are
written, in one grouped write (``Database.run_write_grouped``). No request
waits for it, so a lecture hall reconnecting at once (every student its own
user, each row already written at enrollment) costs a few reads and no write,
where it cost one upsert a user. The operations that store a reference to the
caller (creating a course, starting or ending a session) ``ensure`` the row
inside their own transaction; a student's row exists from its enrollment.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import bindparam, case, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnCollection
from sqlalchemy.sql.dml import Insert

from attendance_live.auth.tokens import Identity
from attendance_live.db.engine import Database
from attendance_live.db.models import User
from attendance_live.timeutil import Clock
from attendance_live.vocabulary import Role

__all__ = [
    "BATCH_DELAY_SECONDS",
    "BATCH_ROWS",
    "STORED_KEPT",
    "Facts",
    "UserDirectory",
    "name_and_email",
    "unchanged",
]

log = logging.getLogger(__name__)

BATCH_ROWS = 500
BATCH_DELAY_SECONDS = 0.05
# Users whose stored claims are kept in memory (about 200 bytes each); beyond, the cache starts over.
STORED_KEPT = 200_000

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


def unchanged(actor: Identity, stored: Facts) -> bool:
    """Whether writing ``actor``'s claims would leave the stored row as it is (``name_and_email``:
    a name that is the user's id, or no email, keeps what is stored)."""
    name, email, role = stored
    return (
        (actor.name == name or actor.name == actor.user_id)
        and (actor.email is None or actor.email == email)
        and actor.role == role
    )


class UserDirectory:
    def __init__(self, database: Database, clock: Clock) -> None:
        self.database = database
        self.clock = clock
        # What the database holds for these users, as this process last wrote or read it.
        self.stored: dict[str, Facts] = {}
        self._pending: dict[str, Identity] = {}
        self._flusher: asyncio.Task[None] | None = None
        # Told the users whose rows were just written (the roster's email invitations).
        self.on_written: Callable[[Sequence[Identity]], Awaitable[object]] | None = None

    def _known_unchanged(self, actor: Identity) -> bool:
        stored = self.stored.get(actor.user_id)
        return stored is not None and unchanged(actor, stored)

    async def remember(self, actor: Identity) -> None:
        """Create or refresh the row now (skipped when the stored row is known to match)."""
        if not self._known_unchanged(actor):
            await self._write([actor])

    def remember_later(self, actor: Identity) -> None:
        """Create or refresh the row in the next background batch, if it differs from the claims.

        No query when the cache holds the user; otherwise the batch reads the
        stored rows first and writes only those that differ."""
        if self._known_unchanged(actor):
            return
        self._pending[actor.user_id] = actor
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_soon(), name="user-rows")

    async def ensure(self, db: AsyncSession, actor: Identity) -> None:
        """Make sure the row exists inside ``db``'s transaction (before a reference to it).

        Cheap when this process has written the row before; otherwise one
        insert that does nothing if the row is there.
        """
        if actor.user_id in self.stored:
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
        self.stored.pop(user_id, None)

    async def flush(self) -> None:
        """Write every pending refresh now (at shutdown, and in tests)."""
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        while self._pending:
            await self._write_pending()

    async def _flush_soon(self) -> None:
        # A pause before every batch, not only the first: a batch that finds nothing to write is
        # a quick read, and without it a storm's users went in batches of one or two (a read
        # transaction each, more server CPU than the upserts they replaced).
        while self._pending:
            await asyncio.sleep(BATCH_DELAY_SECONDS)
            await self._write_pending()

    async def _write_pending(self) -> None:
        batch = list(self._pending.values())[:BATCH_ROWS]
        for actor in batch:
            del self._pending[actor.user_id]
        try:
            unknown = [a.user_id for a in batch if a.user_id not in self.stored]
            if unknown:
                self._keep(await self.database.run_read_grouped(lambda conn: _stored_rows(conn, unknown)))
            changed = [a for a in batch if not self._known_unchanged(a)]
            if changed:
                await self._write(changed, grouped=True)
        except (SQLAlchemyError, OSError) as exc:
            # The next authentication of each of these users tries again.
            log.warning("could not refresh %d user row(s): %s", len(batch), type(exc).__name__)

    def _keep(self, rows: dict[str, Facts]) -> None:
        if len(self.stored) + len(rows) > STORED_KEPT:
            self.stored.clear()
        self.stored.update(rows)

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

    async def _write(self, actors: Sequence[Identity], *, grouped: bool = False) -> None:
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
        # The background batches join the grouped writes (one transaction with the check-ins and
        # recovery rows beside them); ``remember`` is awaited by its request and writes alone.
        run = self.database.run_write_grouped if grouped else self.database.run_write
        written = await run(lambda conn: _upserted(conn, statement, rows, [a.user_id for a in actors]))
        self._keep(written)
        if self.on_written is not None and any(a.email for a in actors):
            try:
                await self.on_written(actors)
            except (SQLAlchemyError, OSError) as exc:
                # Tried again at the user's next sign-in on a process that has not written its row.
                log.warning("could not link roster invitations: %s", type(exc).__name__)


def _stored_rows(conn: Connection, user_ids: Sequence[str]) -> dict[str, Facts]:
    """The stored name, email and role of those of ``user_ids`` that have a row."""
    found = conn.execute(select(User.id, User.name, User.email, User.role).where(User.id.in_(user_ids)))
    return {user_id: (name, email, role) for user_id, name, email, role in found}


def _upserted(
    conn: Connection, statement: Insert, rows: list[dict[str, Any]], user_ids: Sequence[str]
) -> dict[str, Facts]:
    """Run the upsert for ``rows``; what the rows hold after it (a claim left out keeps what was
    stored, so this is read back rather than assumed)."""
    conn.execute(statement, rows)
    return _stored_rows(conn, user_ids)
