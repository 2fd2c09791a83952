"""Socket.IO connection state recovery, kept in the database so that it works on any node.

A connection gets a private session id, its ``pid``, in the CONNECT reply.
The ``recovery_sessions`` row of a pid holds its user and, per course it
follows, the stream position at which it joined the course's room
(:mod:`realtime.stream`). A client that comes back within
``RECOVERY_WINDOW_SECONDS`` with ``auth: {token, pid, offset}`` (what
socket.io-client sends by itself) gets the same pid, its rooms back, and every
course event it missed, replayed from the stream:

* :class:`PidState` is one connection's state. Its writes go one after the
  other (a later write always carries the latest state, so bursts coalesce)
  through ``Database.run_write_grouped``, so a reconnect storm shares
  transactions instead of paying one per subscribe. ``sync()`` returns once
  the current state is committed: a subscription is answered only then, so a
  client never holds a subscription its pid does not know.
* ``updated_at`` doubles as the row's version: every write is a
  compare-and-set on the version its writer last wrote, and every new version
  is above the one it replaces. A claim moves the version on, so whatever the
  previous connection still writes (its node noticed the disconnect late) is
  refused instead of overwriting the recovered state.
* :meth:`RecoveryStore.claim` takes a pid whose connection has ended over, once:
  the row must exist, belong to the token's user, and either be disconnected
  within the window or belong to a node that has died (its row in ``nodes``
  stopped beating: ``NODE_DEAD_SECONDS``). A pid whose connection is live is
  never handed to another connection: on its own node the claim is refused at
  once; held by another node, the claim waits up to ``CLAIM_WAIT_SECONDS`` for
  the disconnect to be stored or the node to be declared dead, then is refused
  (a fresh pid). The claim is one compare-and-set on the row's version, so of
  two simultaneous claims exactly one wins, and the second claim of a pid finds
  it connected again (to the first) and is refused.
* :func:`replay` reads the missed course events and joins the rooms at a
  position the node's relay has reached, so that nothing is missed and nothing
  is sent twice (the loop is described on the function).

Any failure (unknown pid, another user's, window passed, events pruned, a
database error) means a fresh pid and no subscriptions: never a partial
recovery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Literal, cast

import orjson
from sqlalchemy import Connection, Table, bindparam, delete, insert, select, update

from attendance_live.db.engine import Database
from attendance_live.db.models import Node, RecoverySession, UTCDateTime
from attendance_live.realtime.pid_rows import NewRows
from attendance_live.realtime.stream import CourseEvent, CourseStream
from attendance_live.timeutil import Clock
from attendance_live.vocabulary import ID_RE

__all__ = [
    "CATCH_UP_POLL_SECONDS",
    "CLAIM_POLL_SECONDS",
    "CLAIM_WAIT_SECONDS",
    "HEARTBEAT_SECONDS",
    "NODE_DEAD_SECONDS",
    "NODE_FORGET_SECONDS",
    "PID_BYTES",
    "SHARED_READS_KEPT",
    "Claimed",
    "PidState",
    "RecoveryStore",
    "SharedReads",
    "replay",
]

log = logging.getLogger(__name__)

PID_BYTES = 24  # 192 random bits, 32 url-safe characters (after a 12-character time prefix)
#: How often each node writes its heartbeat (``nodes.seen_at``).
HEARTBEAT_SECONDS = 2.0
#: A node whose heartbeat is older than this has died, and its connections with it.
NODE_DEAD_SECONDS = 6.0
#: How long a claim of a pid still connected on another node waits for it to end.
CLAIM_WAIT_SECONDS = NODE_DEAD_SECONDS + HEARTBEAT_SECONDS
CLAIM_POLL_SECONDS = 0.1
#: Heartbeat rows of nodes gone this long are deleted.
NODE_FORGET_SECONDS = 86400.0
CATCH_UP_POLL_SECONDS = 0.02
SHARED_READS_KEPT = 256  # recent stream reads kept for the recoveries of a reconnect storm

_STEP = timedelta(microseconds=1)

# The statements, built once: a storm of connections writes thousands of rows (compiled once, no
# ORM bookkeeping per write). The SET clause of _UPDATE comes from the parameters' names.
_TABLE = cast(Table, RecoverySession.__table__)  # a declarative class's table is a Table
_MINE = (_TABLE.c.pid == bindparam("b_pid")) & (
    _TABLE.c.updated_at == bindparam("b_previous", type_=UTCDateTime())
)
_INSERT = insert(_TABLE)
_UPDATE = update(_TABLE).where(_MINE)
_DELETE = delete(_TABLE).where(_MINE)
_READ = select(
    _TABLE.c.user_id, _TABLE.c.courses, _TABLE.c.updated_at, _TABLE.c.disconnected_at, _TABLE.c.node
).where(_TABLE.c.pid == bindparam("b_pid"))
_NODES = cast(Table, Node.__table__)
_NODE_SEEN = select(_NODES.c.seen_at).where(_NODES.c.id == bindparam("b_node"))
_BEAT = update(_NODES).where(_NODES.c.id == bindparam("b_node")).values(seen_at=bindparam("b_seen"))
_FORGET_NODES = delete(_NODES).where(_NODES.c.seen_at < bindparam("b_before", type_=UTCDateTime()))
# A claim's outcome when the pid's connection is live on another node (the claim may wait).
_LIVE: Final = "live"


def _insert_new(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """A batch of new rows in one statement (a reconnect storm writes thousands: one statement
    each was a fifth of the storm's server CPU). Pids are random (``PID_BYTES``), so no row of
    the batch can collide with another."""
    conn.execute(_INSERT, rows)


def _next_version(now: datetime, previous: datetime | None) -> datetime:
    """A version above ``previous`` (``updated_at`` is the compare-and-set version)."""
    return now if previous is None or now > previous else previous + _STEP


def _encode(courses: Mapping[str, int]) -> str:
    return orjson.dumps(dict(courses)).decode()


def _decode(text: str) -> dict[str, int] | None:
    """The stored courses, or None when the row holds anything else."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict):
        return None
    courses: dict[str, int] = {}
    for course_id, position in value.items():
        if not ID_RE.match(course_id) or type(position) is not int or position < 0:
            return None
        courses[course_id] = position
    return courses


@dataclass(frozen=True, slots=True)
class Claimed:
    """A recovery session taken over by a new connection."""

    pid: str
    courses: dict[str, int]  # course id -> position at which the previous connection joined its room
    version: datetime


@dataclass(eq=False, slots=True, weakref_slot=True)
class PidState:
    """One connection's recoverable state and the writes that keep its row up to date."""

    store: RecoveryStore
    pid: str
    user_id: str
    #: Course id -> the stream position at which this connection joined the course's room.
    courses: dict[str, int] = field(default_factory=dict)
    #: The row's ``updated_at`` after our last committed write; None while there is no row.
    version: datetime | None = None
    #: Another connection claimed the pid (or the row vanished): nothing more is written.
    lost: bool = False
    disconnected_at: datetime | None = None
    forget: bool = False  # the row is to be deleted (the connection may not be recovered)
    _waiters: list[asyncio.Future[None]] = field(default_factory=list)
    _writer: asyncio.Task[None] | None = None
    _dirty: bool = False  # changed while a write was running: write again

    async def sync(self) -> None:
        """Return once the state as it is now is committed (raises what the write raised)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        self._start()
        await future

    async def settled(self) -> None:
        """Return once the writes under way are committed (at once when none is)."""
        if self._writer is not None:
            await self.sync()

    def sync_later(self) -> None:
        """Commit the state as it is now, in the background (failures are logged)."""
        self._start()

    def disconnected(self, *, forget: bool) -> None:
        """The connection is gone: start its window (or, with ``forget``, delete its state)."""
        self.disconnected_at = self.store.clock()
        self.forget = forget
        self._start()

    def _start(self) -> None:
        if self._writer is None:
            self._writer = self.store.spawn(self._drain())
        else:
            self._dirty = True

    async def _drain(self) -> None:
        try:
            self._dirty = True
            while self._dirty:
                self._dirty = False
                waiters, self._waiters = self._waiters, []
                try:
                    await self._write_once()
                except Exception as exc:
                    if not waiters:
                        log.warning(
                            "could not store the recovery state of a connection (%s); "
                            "it may not be recoverable",
                            type(exc).__name__,
                        )
                    for future in waiters:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for future in waiters:
                    if not future.done():
                        future.set_result(None)
        finally:
            self._writer = None
            for future in self._waiters:  # cancelled (shutdown) while callers waited
                if not future.done():
                    future.set_exception(RuntimeError("the server is shutting down; connect again"))
            self._waiters.clear()

    async def _write_once(self) -> None:
        if self.lost or (self.version is None and (self.forget or not self.courses)):
            return  # not ours any more, or no row and nothing worth recovering
        store = self.store
        new = _next_version(store.clock(), self.version)
        previous = self.version
        courses = _encode(self.courses)
        disconnected_at = self.disconnected_at
        forget = self.forget
        pid, user_id = self.pid, self.user_id

        values = {"courses": courses, "updated_at": new, "disconnected_at": disconnected_at}
        if previous is None:
            # A new row: inserted with the group's other new rows in one statement (``_insert_new``).
            row: dict[str, Any] = {"pid": pid, "user_id": user_id, "node": store.node_id, **values}

            await store.insert_new(row)
            written = True  # or it raised, with the whole batch
        else:

            def write(conn: Connection) -> bool:
                mine = {"b_pid": pid, "b_previous": previous}
                if forget:
                    return conn.execute(_DELETE, mine).rowcount == 1
                return conn.execute(_UPDATE, {**mine, **values}).rowcount == 1

            written = await store.database.run_write_grouped(write, order=f"recovery {pid}")
        if written:
            self.version = None if forget else new
            if forget:
                self.lost = True
        else:
            self.lost = True
            log.info("a recovery session was claimed by a newer connection; this one no longer writes it")


class RecoveryStore:
    """The ``recovery_sessions`` rows of this node's connections, and claims of others'."""

    def __init__(self, database: Database, clock: Clock, *, window_seconds: float) -> None:
        self.database = database
        self.clock = clock
        self.window = timedelta(seconds=window_seconds)
        #: This process's id in ``nodes`` (new at every start).
        self.node_id = secrets.token_hex(12)
        self._tasks: set[asyncio.Task[None]] = set()
        # This node's states by pid, while a connection or a pending write holds them.
        self._states: weakref.WeakValueDictionary[str, PidState] = weakref.WeakValueDictionary()
        self._heart: asyncio.Task[None] | None = None
        self._new_rows = NewRows(database, _insert_new, self.spawn)

    @staticmethod
    def new_pid() -> str:
        """A time prefix (milliseconds, 12 hex digits), then ``PID_BYTES`` random bytes.

        The secret is the random part. The prefix is for storage: new pids sort after the
        older ones, so a batch of inserts lands at the right edge of the primary key's index
        instead of dirtying an index page each (issue 22, docs/performance.md).
        """
        return f"{time.time_ns() // 1_000_000:012x}{secrets.token_urlsafe(PID_BYTES)}"

    def fresh(self, user_id: str) -> PidState:
        """The state of a new connection, under a new pid (no row until it follows a course)."""
        state = PidState(self, self.new_pid(), user_id)
        self._states[state.pid] = state
        return state

    def resumed(self, claimed: Claimed, user_id: str) -> PidState:
        state = PidState(self, claimed.pid, user_id, dict(claimed.courses), claimed.version)
        self._states[state.pid] = state
        return state

    # -- the heartbeat ---------------------------------------------------------------------

    async def start(self) -> None:
        """Write this node's first heartbeat, then keep beating until :meth:`stop`."""
        await self.beat()
        self._heart = asyncio.get_running_loop().create_task(self._beating(), name="recovery-heartbeat")

    async def stop(self) -> None:
        if self._heart is not None:
            self._heart.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heart
            self._heart = None

    async def beat(self) -> None:
        """``nodes.seen_at`` of this node := now (and forget nodes gone for a day)."""
        now = self.clock()

        def write(conn: Connection) -> None:
            if conn.execute(_BEAT, {"b_node": self.node_id, "b_seen": now}).rowcount == 0:
                conn.execute(insert(_NODES), {"id": self.node_id, "seen_at": now})
                conn.execute(_FORGET_NODES, {"b_before": now - timedelta(seconds=NODE_FORGET_SECONDS)})

        await self.database.run_write(write)

    async def _beating(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                await self.beat()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("could not write this node's heartbeat (%s); retrying", type(exc).__name__)

    # -- claims ----------------------------------------------------------------------------

    async def claim(self, pid: str, user_id: str) -> Claimed | None:
        """Take the recovery session ``pid`` over for a new connection of ``user_id``.

        None when there is none to take: unknown, another user's, past the
        window, still connected (here, or on a live node after
        ``CLAIM_WAIT_SECONDS``), or claimed by someone else first (one recovery
        per disconnect).
        """
        if not isinstance(pid, str) or not 16 <= len(pid) <= 64:
            return None
        local = self._states.get(pid)
        if local is not None:
            if local.disconnected_at is None and not local.lost:
                log.info("recovery refused: that pid's connection is live on this node")
                return None
            with contextlib.suppress(Exception):
                await local.settled()  # its disconnect stored first (a failure is the claim's to find)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CLAIM_WAIT_SECONDS
        while True:
            outcome = await self.database.run_write_grouped(
                lambda conn: self._take(conn, pid, user_id), order=f"recovery {pid}"
            )
            if outcome != _LIVE:
                return outcome if isinstance(outcome, Claimed) else None
            if loop.time() >= deadline:
                log.info("recovery refused: that pid's connection is live on another node")
                return None
            await asyncio.sleep(CLAIM_POLL_SECONDS)

    def _take(self, conn: Connection, pid: str, user_id: str) -> Claimed | Literal["live"] | None:
        now = self.clock()
        row = conn.execute(_READ, {"b_pid": pid}).first()
        if row is None or row.user_id != user_id:
            return None
        if row.disconnected_at is not None:
            if row.disconnected_at < now - self.window:
                return None
        elif row.node == self.node_id:
            return None  # connected here: live, or claimed by another connection a moment ago
        elif row.node is not None:
            seen = conn.execute(_NODE_SEEN, {"b_node": row.node}).scalar()
            if seen is not None and seen >= now - timedelta(seconds=NODE_DEAD_SECONDS):
                return _LIVE  # connected to a node that is alive
        courses = _decode(row.courses)
        if courses is None:
            return None
        version = _next_version(now, row.updated_at)
        mine = {"b_pid": pid, "b_previous": row.updated_at}
        claimed = conn.execute(
            _UPDATE, {**mine, "updated_at": version, "disconnected_at": None, "node": self.node_id}
        )
        # The compare-and-set on the version: of two claims that read the same row, one wins.
        return Claimed(pid, courses, version) if claimed.rowcount == 1 else None

    async def insert_new(self, row: dict[str, Any]) -> None:
        """Insert a new pid's row; returns once it has committed (``realtime.pid_rows``)."""
        await self._new_rows.insert(row)

    def spawn(self, coroutine: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coroutine, name="recovery-write")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def idle(self) -> None:
        """Wait for every pending write (at shutdown, before the database closes)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


_ReadKey = tuple[frozenset[str], int, int]  # courses, after, upto


class SharedReads:
    """A ``CourseStream`` whose reads are shared: one database read for a storm of recoveries.

    After a blip every client of a lecture hall comes back with the same
    course, the same offset and the same relay position: the same read. The
    events at or below the relay's position never change (until pruned, and an
    answer read before its pruning is still true), so a read in flight is
    joined and the last ``SHARED_READS_KEPT`` answers are reused.
    """

    def __init__(self, stream: CourseStream) -> None:
        self.stream = stream
        self._reads: OrderedDict[_ReadKey, asyncio.Future[Sequence[CourseEvent] | None]] = OrderedDict()

    @property
    def position(self) -> int:
        return self.stream.position

    async def read_course_events(
        self, courses: Collection[str], after: int, upto: int
    ) -> Sequence[CourseEvent] | None:
        key = (frozenset(courses), after, upto)
        shared = self._reads.get(key)
        if shared is None or (shared.done() and (shared.cancelled() or shared.exception() is not None)):
            shared = asyncio.ensure_future(self.stream.read_course_events(courses, after, upto))
            self._reads[key] = shared
            while len(self._reads) > SHARED_READS_KEPT:
                self._reads.popitem(last=False)
        else:
            self._reads.move_to_end(key)
        return await asyncio.shield(shared)


async def replay(
    stream: CourseStream,
    courses: Callable[[], Mapping[str, int]],
    offset: int | None,
    join: Callable[[Sequence[str]], None],
    *,
    catch_up_seconds: float,
) -> list[CourseEvent] | None:
    """The course events a recovering connection missed; its rooms joined right after them.

    ``courses()`` gives the recovered courses with the position each was
    joined at (read anew after every await: a course the user was removed
    from meanwhile is gone from it). Per course, the events after
    ``max(offset, joined_at)`` are missed. The relay of this node must have
    delivered at least that far first (else joining now would send again what
    the client already has): we wait for it, for ``catch_up_seconds`` at most.
    Then, in a loop: ``upto = stream.position``, read the events up to it;
    if the relay has not moved meanwhile, ``join(courses)`` in that same
    synchronous step (live delivery to those rooms continues exactly after
    ``upto``), otherwise read on from ``upto``. None when the events are gone
    (pruned) or the relay did not catch up: the caller refuses, never partial.
    """

    def missed_after() -> dict[str, int]:
        return {course: max(offset or 0, joined) for course, joined in courses().items()}

    after = missed_after()
    target = max(after.values(), default=0)
    deadline = asyncio.get_running_loop().time() + catch_up_seconds
    while stream.position < target:
        if asyncio.get_running_loop().time() >= deadline:
            log.info("recovery refused: this node's relay did not reach the client's position in time")
            return None
        await asyncio.sleep(CATCH_UP_POLL_SECONDS)
    events: list[CourseEvent] = []
    start = min(after.values(), default=math.inf)
    while True:
        upto = stream.position
        if after and start < upto:
            chunk = await stream.read_course_events(list(after), int(start), upto)
            if chunk is None:
                log.info("recovery refused: the events after the client's offset are no longer stored")
                return None
            events.extend(chunk)
        if stream.position == upto:
            after = missed_after()  # without the courses the user was removed from meanwhile
            join(list(after))
            return [e for e in events if e.course_id in after and e.position > after[e.course_id]]
        start = upto
