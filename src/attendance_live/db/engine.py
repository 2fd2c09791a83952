"""Engines and sessions, with the SQLite specifics in one place.

SQLite (the embedded default) runs in WAL mode with foreign keys on. Writers
begin with ``BEGIN IMMEDIATE`` so a read-then-write transaction can never fail
half-way with "database is locked" when another writer commits first; within
one process they queue on a one-connection pool instead of spinning on the
file lock. Readers use a separate pool and never wait for writers.

PostgreSQL uses one pool for both; its row locks do the serialising.

Group commit (``run_write_grouped``, ``run_read_grouped``): units that arrive
while a group is running wait together and then run in one transaction (on
SQLite, on one thread hop), each inside its own savepoint, so one unit's
error undoes only that unit. Each caller is answered only after the
transaction that holds its unit has committed. A unit may name a ``finish``:
it runs once per group, after every unit and before the commit, with the
results of that group's units that succeeded (the outbox rows of a group of
check-ins are written there, so the stream's lock is held only from then to
the commit). A lecture hall's burst of
check-ins becomes a few dozen transactions instead of a thousand: a few dozen
thread hops on SQLite, a few dozen connection checkouts and WAL flushes on
PostgreSQL (docs/performance.md).

Two nodes on PostgreSQL run their groups at the same time, so a unit may
name an ``order``: a group runs its units sorted by it (check-ins name their
session and user), so every node takes the rows' locks in the same order and
two groups wait for each other instead of deadlocking. A unit that still fails
with a deadlock or a serialization failure (SQLSTATE 40P01, 40001: PostgreSQL
undid it, nothing of it is kept) runs again in the next group, up to
``GROUP_ATTEMPTS`` times in all, before its caller sees the error.

``Database.upsert`` builds ``INSERT … ON CONFLICT`` in the dialect in use, the
one statement SQLAlchemy spells differently for each.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Dialect, Engine, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.sql import ColumnCollection
from sqlalchemy.sql.dml import Insert

__all__ = ["GROUP_ATTEMPTS", "GROUP_MAX_UNITS", "SQLITE_BUSY_TIMEOUT_MS", "Database", "is_retryable"]

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 15_000
# Most units in one grouped transaction (a bound on how long the first of them waits).
GROUP_MAX_UNITS = 200
# How often a grouped unit runs when PostgreSQL undoes it for a deadlock or a serialization failure.
GROUP_ATTEMPTS = 4
# SQLSTATEs after which running the same unit again is right: PostgreSQL undid it.
_RETRYABLE_STATES = frozenset({"40P01", "40001"})

log = logging.getLogger(__name__)


def is_retryable(exc: BaseException) -> bool:
    """Whether ``exc`` is a deadlock or serialization failure, after which the same work may run again."""
    orig = getattr(exc, "orig", None)
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return isinstance(exc, DBAPIError) and state in _RETRYABLE_STATES


def _sqlite_engine(url: str, *, begin: str, pool_size: int) -> AsyncEngine:
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=60,
        connect_args={"check_same_thread": False},
    )
    _configure_sqlite(engine.sync_engine, begin)
    return engine


def _sqlite_sync_engine(url: str, *, begin: str, pool_size: int) -> Engine:
    engine = create_engine(
        url.replace("sqlite+aiosqlite:", "sqlite+pysqlite:", 1),
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=60,
        connect_args={"check_same_thread": False},
    )
    _configure_sqlite(engine, begin)
    return engine


def _configure_sqlite(engine: Engine, begin: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us emit BEGIN ourselves (pysqlite's implicit BEGIN is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # NORMAL in WAL mode survives a killed process; only an OS crash or power
        # loss can drop the last commits (use PostgreSQL where that matters).
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)


class Database:
    """The application's handle on storage: ``write()`` and ``read()`` sessions."""

    def __init__(
        self, url: str, *, pool_size: int = 10, observe: Callable[[str, float], None] | None = None
    ) -> None:
        self.url = url
        # Told (kind, seconds) after every transaction: "read" or "write".
        self._observe = observe or (lambda kind, seconds: None)
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite:
            database = parsed.database or ""
            if database and database != ":memory:":
                Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
            self.write_engine = _sqlite_engine(url, begin="BEGIN IMMEDIATE", pool_size=1)
            self.read_engine = _sqlite_engine(url, begin="BEGIN", pool_size=4)
            # For run_read/run_write: a whole transaction on a thread of its own,
            # one hop instead of one per statement (aiosqlite's hops cost ~1 ms each).
            self._sync_writer = _sqlite_sync_engine(url, begin="BEGIN IMMEDIATE", pool_size=1)
            self._sync_reader = _sqlite_sync_engine(url, begin="BEGIN", pool_size=2)
            self._write_thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
            self._read_threads = ThreadPoolExecutor(2, thread_name_prefix="sqlite-reader")
            self._write_group = _Group(self._sqlite_batch(self._write_thread, self._sync_writer, write=True))
            self._read_group = _Group(self._sqlite_batch(self._read_threads, self._sync_reader, write=False))
        else:
            self.write_engine = create_async_engine(
                url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
            )
            self.read_engine = self.write_engine
            self._write_group = _Group(self._postgres_batch(write=True))
            self._read_group = _Group(self._postgres_batch(write=False))
        self._writer = async_sessionmaker(self.write_engine, expire_on_commit=False)
        self._reader = async_sessionmaker(self.read_engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.write_engine.dialect.name

    @property
    def sync_dialect(self) -> Dialect:
        """The dialect the synchronous units run with (``run_write``, ``run_write_grouped``)."""
        return self._sync_writer.dialect if self.is_sqlite else self.write_engine.sync_engine.dialect

    def upsert(
        self,
        table: Any,
        rows: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        *,
        key: Sequence[Any],
        update: Callable[[ColumnCollection[str, Any]], Mapping[str, Any]] | None = None,
    ) -> Insert:
        """``INSERT rows … ON CONFLICT (key)``: ``DO NOTHING``, or ``DO UPDATE SET update(excluded)``.

        ``update`` receives the ``excluded`` pseudo-table (the row that was not
        inserted) and returns the columns to set. Add ``.returning(...)`` as needed.
        """
        if self.dialect == "postgresql":
            pg = postgresql.insert(table).values(rows)
            if update is None:
                return pg.on_conflict_do_nothing(index_elements=key)
            return pg.on_conflict_do_update(index_elements=key, set_=update(pg.excluded))
        lite = sqlite.insert(table).values(rows)
        if update is None:
            return lite.on_conflict_do_nothing(index_elements=key)
        return lite.on_conflict_do_update(index_elements=key, set_=update(lite.excluded))

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session in one write transaction: committed on success, rolled back on error."""
        started = time.perf_counter()
        try:
            async with self._writer() as session, session.begin():
                yield session
        finally:
            self._observe("write", time.perf_counter() - started)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reading; its transaction is rolled back at the end."""
        started = time.perf_counter()
        try:
            async with self._reader() as session:
                yield session
        finally:
            self._observe("read", time.perf_counter() - started)

    async def run_write(self, work: Callable[[Connection], T]) -> T:
        """Run ``work(connection)`` in one write transaction, committed if it returns.

        ``work`` is plain synchronous SQLAlchemy Core. On SQLite it runs on the
        writer thread (writers queue there, as SQLite wants); on PostgreSQL in
        the event loop through ``run_sync``, with no thread at all.
        """
        started = time.perf_counter()
        try:
            if self.is_sqlite:
                return await asyncio.get_running_loop().run_in_executor(
                    self._write_thread, _in_transaction, self._sync_writer, work
                )
            async with self.write_engine.begin() as conn:
                return await conn.run_sync(work)
        finally:
            self._observe("write", time.perf_counter() - started)

    async def run_read(self, work: Callable[[Connection], T]) -> T:
        """Run ``work(connection)`` for reading (see ``run_write``)."""
        started = time.perf_counter()
        try:
            if self.is_sqlite:
                return await asyncio.get_running_loop().run_in_executor(
                    self._read_threads, _in_transaction, self._sync_reader, work
                )
            async with self.read_engine.connect() as conn:
                return await conn.run_sync(work)
        finally:
            self._observe("read", time.perf_counter() - started)

    def _sqlite_batch(self, executor: ThreadPoolExecutor, engine: Engine, *, write: bool) -> _Batch:
        async def batch(works: Sequence[_Work]) -> list[_Outcome]:
            each = functools.partial(_each_unit, works=works, savepoints=write)
            return await asyncio.get_running_loop().run_in_executor(executor, _in_transaction, engine, each)

        return batch

    def _postgres_batch(self, *, write: bool) -> _Batch:
        async def batch(works: Sequence[_Work]) -> list[_Outcome]:
            each = functools.partial(_each_unit, works=works, savepoints=write)
            if write:
                async with self.write_engine.begin() as conn:
                    return await conn.run_sync(each)
            async with self.read_engine.connect() as conn:
                return await conn.run_sync(each)

        return batch

    async def run_write_grouped(
        self,
        work: Callable[[Connection], T],
        *,
        finish: Callable[[Connection, list[T]], None] | None = None,
        order: str = "",
    ) -> T:
        """``run_write``, grouped with the writes waiting beside it (see the module docstring).

        ``work`` runs in a savepoint of a shared transaction: what it raises
        undoes its own statements only, and reaches only its own caller.
        ``finish`` (the same callable for every unit that shares it) runs once
        after all the group's units, before the commit, with the results of
        those that succeeded, in order; if it raises, the whole group fails.
        ``order`` places the unit in its group (sorted, stable; units that lock
        rows name them here so every node locks them in the same order). A unit
        may run more than once (after a deadlock): it must do all its work on
        ``conn``.
        """
        started = time.perf_counter()
        try:
            return await self._write_group.run(work, finish, order)
        finally:
            self._observe("write", time.perf_counter() - started)

    async def run_read_grouped(self, work: Callable[[Connection], T]) -> T:
        """``run_read``, grouped with the reads waiting beside it (on one connection)."""
        started = time.perf_counter()
        try:
            return await self._read_group.run(work, None, "")
        finally:
            self._observe("read", time.perf_counter() - started)

    async def ping(self) -> None:
        async with self.read_engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self._write_group.idle()
        await self._read_group.idle()
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()
        if self.is_sqlite:
            self._write_thread.shutdown(wait=True)
            self._read_threads.shutdown(wait=True)
            self._sync_writer.dispose()
            self._sync_reader.dispose()


def _in_transaction(engine: Engine, work: Callable[[Connection], T]) -> T:
    with engine.connect() as conn:
        try:
            with conn.begin():
                return work(conn)
        finally:
            # A connection must never go back to the pool inside a transaction: a
            # reader would keep serving the snapshot it began with.
            raw = conn.connection.dbapi_connection
            if raw is not None and raw.in_transaction:
                conn.invalidate()


_Outcome = tuple[bool, Any]  # (True, result) or (False, the exception)
_Finish = Callable[[Connection, list[Any]], None]
_Work = tuple[Callable[[Connection], Any], _Finish | None]
_Batch = Callable[[Sequence[_Work]], Awaitable[list[_Outcome]]]


def _each_unit(conn: Connection, *, works: Sequence[_Work], savepoints: bool) -> list[_Outcome]:
    """Run each unit on ``conn`` (in its own savepoint when writing), then the finishes; what each
    unit returned or raised."""
    outcomes: list[_Outcome] = []
    # Plain SAVEPOINT statements (SQLAlchemy's begin_nested() compiles its own
    # afresh each time, a tenth of a millisecond per unit); on SQLite straight to
    # the driver, as the check-in's statements go (db/driver.py).
    raw = conn.connection.dbapi_connection if conn.dialect.name == "sqlite" else None
    execute = raw.execute if raw is not None else conn.exec_driver_sql
    finishes: dict[_Finish, list[Any]] = {}
    for work, finish in works:
        if savepoints:
            execute("SAVEPOINT grouped_unit")
        try:
            result = work(conn)
            outcomes.append((True, result))
            if finish is not None:
                finishes.setdefault(finish, []).append(result)
        except Exception as exc:
            if savepoints:
                execute("ROLLBACK TO SAVEPOINT grouped_unit")
            outcomes.append((False, exc))
        if savepoints:
            execute("RELEASE SAVEPOINT grouped_unit")
    for finish, results in finishes.items():
        finish(conn, results)  # raising here fails the whole transaction, as it must
    return outcomes


@dataclass
class _Waiting:
    """A unit waiting for its group, and its caller's future."""

    work: _Work
    order: str
    future: asyncio.Future[Any]
    attempts: int = 0


class _Group:
    """Units waiting for one batch runner: whoever arrives while a group runs joins the next one."""

    def __init__(self, batch: _Batch) -> None:
        self._batch = batch
        self._waiting: list[_Waiting] = []
        self._runner: asyncio.Task[None] | None = None

    async def run(self, work: Callable[[Connection], T], finish: _Finish | None, order: str) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting((work, finish), order, future))
        if self._runner is None:
            self._runner = asyncio.create_task(self._drain(), name="database-group")
        return await future

    async def idle(self) -> None:
        if self._runner is not None:
            await asyncio.gather(self._runner, return_exceptions=True)

    async def _drain(self) -> None:
        try:
            while self._waiting:
                group = sorted(self._waiting[:GROUP_MAX_UNITS], key=lambda unit: unit.order)
                del self._waiting[:GROUP_MAX_UNITS]
                try:
                    outcomes = await self._batch([unit.work for unit in group])
                except Exception as exc:  # the transaction itself failed: nothing of it was kept
                    outcomes = [(False, exc)] * len(group)
                again: list[_Waiting] = []
                for unit, (ok, value) in zip(group, outcomes, strict=True):
                    if unit.future.done():  # its caller was cancelled
                        continue
                    if ok:
                        unit.future.set_result(value)
                    elif is_retryable(value) and unit.attempts + 1 < GROUP_ATTEMPTS:
                        unit.attempts += 1
                        again.append(unit)
                    else:
                        unit.future.set_exception(value)
                if again:
                    log.info(
                        "running %d grouped unit(s) again after a deadlock or serialization failure",
                        len(again),
                    )
                    self._waiting[:0] = again
        finally:
            self._runner = None
            if self._waiting:  # cancelled while units waited: they must not hang
                for unit in self._waiting:
                    if not unit.future.done():
                        unit.future.set_exception(RuntimeError("the database is closing; try again"))
                self._waiting.clear()
