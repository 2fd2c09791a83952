"""New recovery rows, inserted in batches of our own (a part of ``realtime.recovery``).

Every connection that follows a course gets a ``recovery_sessions`` row before its
subscription is answered. During a reconnect storm the writer is quick enough that each
write group (``Database.run_write_grouped``) held one or two of them, and every group is a
transaction: a thread hop, a commit, and the same index and table pages appended to the WAL
again. That was most of the storm's WAL bytes and a good part of its server CPU (issue 22,
docs/performance.md). So new rows wait for each other here first: while they keep coming (a
batch began less than ``BUSY_SECONDS`` ago), a batch waits ``LINGER_SECONDS`` for the rows
beside it; after a quiet moment the first row goes at once. A batch is still one unit of a
write group, and its callers are answered once it has committed.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections.abc import Callable, Coroutine
from typing import Any, Final

from sqlalchemy.engine import Connection

from attendance_live.db.engine import Database

__all__ = ["BATCH_ROWS", "BUSY_SECONDS", "LINGER_SECONDS", "NewRows"]

LINGER_SECONDS: Final = 0.005
BUSY_SECONDS: Final = 0.05
BATCH_ROWS: Final = 1000

_Row = dict[str, Any]


class NewRows:
    """Rows inserted by ``insert(conn, rows=...)`` in batches; ``spawn`` keeps the writer task
    (so that a shutdown waits for it)."""

    def __init__(
        self,
        database: Database,
        insert: Callable[..., None],
        spawn: Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]],
    ) -> None:
        self.database = database
        self._insert = insert
        self._spawn = spawn
        self._waiting: list[tuple[_Row, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._last_batch = -math.inf

    async def insert(self, row: _Row) -> None:
        """Insert ``row``; returns once it has committed, or raises what its batch raised."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((row, future))
        if self._writer is None:
            self._writer = self._spawn(self._write())
        await future

    async def _write(self) -> None:
        try:
            while self._waiting:
                if time.monotonic() - self._last_batch < BUSY_SECONDS:
                    await asyncio.sleep(LINGER_SECONDS)  # the storm's next rows join this batch
                batch = self._waiting[:BATCH_ROWS]
                del self._waiting[:BATCH_ROWS]
                self._last_batch = time.monotonic()
                unit: Callable[[Connection], None] = functools.partial(
                    self._insert, rows=[row for row, _ in batch]
                )
                try:
                    await self.database.run_write_grouped(unit)
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)
        finally:
            self._writer = None
            for _, future in self._waiting:  # cancelled (shutdown) while rows waited
                if not future.done():
                    future.set_exception(RuntimeError("the server is shutting down; connect again"))
            self._waiting.clear()
