"""The relay: delivers the outbox stream to this node's rooms, in position order, each row once.

One per node. ``position`` is the last row delivered here; it advances in the
same synchronous step as that row's local broadcast (never across an
``await``), which is what recovery joins rooms against (``realtime.stream``).
A row at or below ``position`` is dropped; a row beyond ``position + 1`` waits
until the gap is filled from the database.

Rows reach the relay three ways:

* the local commit: the unit of work hands over its committed rows
  (``committed``), which also queues them for the other nodes; they are delivered
  on the event loop's next turn, so the request that committed them answers first;
* Redis: each node publishes its committed rows on a channel of its own
  (``realtime.relay_messages.CHANNEL``, independent of the transport's adapter),
  everything committed since its last publish in one message (at most
  ``relay_messages.PUBLISH_ROWS`` rows): a group of check-ins, whose callers all resume in
  one turn of the loop, is one publish, not one a check-in;
* a poll of the database every ``OUTBOX_POLL_SECONDS`` (and at once after a
  gap or after Redis comes back) for rows after ``position``: rows of a node
  that died between its commit and its publish, and everything missed while
  Redis was away, delivered in order, never replaced by a snapshot.

What a row does on every node:

* course events (``courseSessionStarted``, ``courseSessionEnded``,
  ``activeSessionsData``, stored as clients receive them) go to the course's
  room on this node (``adapter.broadcast_local``: each node encodes once for
  its own sockets), with the row's position as a last argument (the offset)
  unless ``EVENT_OFFSETS=false``;
* ``record``: ``myAttendanceUpdated`` to the student's own room at once; then,
  per course, one worker sends ``attendanceUpdated`` to the roster's room
  (statistics read only when this node has a roster follower) and, when the
  count moved, a count-only ``activeSessionsData`` that waits until
  ``count_interval`` after the course's previous snapshot, so a burst of
  check-ins shares one (it carries the relay's ``position`` when sent, and is
  not sent when a stored snapshot of the course went out after those records:
  that one already counts them);
* ``enrollment``: an approved user's sockets on this node join the course's
  room (they follow it from that row on), a pending, rejected or removed
  user's leave it; the user's sockets get ``enrollmentChanged``, and for a
  student's own join request the course's managers get ``enrollmentRequested``;
* ``manager``: a co-manager's sockets join or leave the course's rooms (``realtime.rooms``);
* every row drops the cache entries it made stale, on every node.

At start ``position`` is the stream's end: nobody is connected yet, and
clients that reconnect get what they missed through recovery. Pruning
(``OUTBOX_RETENTION_SECONDS``; recovery states past their window) runs from
the poll loop; the deletes are idempotent, so every node may run it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections import deque
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from attendance_live.metrics import Metrics
from attendance_live.payloads import (
    active_sessions_data,
    enrollment_changed_data,
    enrollment_requested_data,
    record_data,
    roster_update_data,
)
from attendance_live.realtime.relay_messages import CHANNEL, Publisher, decode_rows
from attendance_live.realtime.server import RealtimeServer
from attendance_live.realtime.stream import CourseEvent
from attendance_live.service.alerts import ABSENCE_ALERT_KIND
from attendance_live.service.attendance import AttendanceService
from attendance_live.service.outbox import COURSE_EVENTS, ENROLLMENT, MANAGER, RECORD, OutboxRow, event_of
from attendance_live.service.views import RecordView, Statistics
from attendance_live.vocabulary import course_room, managers_room, session_room, user_room

__all__ = ["DRAIN_SECONDS", "GAP_GRACE_SECONDS", "PRUNE_EVERY_SECONDS", "READ_BATCH", "Relay"]

log = logging.getLogger(__name__)

# Rows read from the database at a time while catching up.
READ_BATCH: Final = 500
# How long a gap may wait for the missing rows' Redis message before the database is asked.
GAP_GRACE_SECONDS: Final = 0.02
# How often one node prunes (at most).
PRUNE_EVERY_SECONDS: Final = 60.0
# How long a shutdown may spend delivering and publishing what is still pending.
DRAIN_SECONDS: Final = 5.0


@dataclass(slots=True)
class _Deferred:
    """A course's record rows waiting for the worker, and whether a count snapshot is due."""

    records: list[OutboxRow] = field(default_factory=list)
    count: bool = False
    # The course's stored-snapshot generation when its latest record row was delivered.
    generation: int = 0


class Relay:
    """This node's delivery of the stream; implements ``realtime.stream.CourseStream``."""

    def __init__(
        self,
        realtime: RealtimeServer,
        service: AttendanceService,
        metrics: Metrics,
        *,
        redis_url: str | None,
        offsets: bool = True,
        count_interval: float = 0.1,
        poll_seconds: float = 1.0,
        retention_seconds: float = 86400.0,
        recovery_window_seconds: float = 120.0,
    ) -> None:
        self.realtime = realtime
        self.service = service
        self.metrics = metrics
        self.redis_url = redis_url
        self.offsets = offsets
        self.count_interval = count_interval
        self.poll_seconds = poll_seconds
        self.retention_seconds = retention_seconds
        self.recovery_window_seconds = recovery_window_seconds
        self.node_id = uuid.uuid4().hex
        self._position = 0
        self._pending: dict[int, OutboxRow] = {}  # rows beyond a gap
        self._deferred: dict[str, _Deferred] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._generation: dict[str, int] = {}  # per course: stored snapshots delivered
        self._last_count_snapshot: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._local: deque[Sequence[OutboxRow]] = deque()  # this node's commits, for the next turn
        self._tasks: list[asyncio.Task[None]] = []
        self._redis: aioredis.Redis | None = None
        self._publisher: Publisher | None = None
        self._last_prune = -1e9
        #: Set while this node hears the other nodes' rows over Redis.
        self.subscribed = asyncio.Event()

    # ------------------------------------------------------------ CourseStream

    @property
    def position(self) -> int:
        return self._position

    async def read_course_events(
        self, courses: Collection[str], after: int, upto: int
    ) -> Sequence[CourseEvent] | None:
        outbox = self.service.outbox
        rows = await self.service.database.run_read(
            lambda conn: outbox.read_course_events(conn, courses, after, upto)
        )
        if rows is None:
            return None
        return [CourseEvent(r.position, r.course_id, r.kind, r.payload) for r in rows]

    # --------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Start at the stream's end, then listen (Redis) and poll."""
        outbox = self.service.outbox
        self._position = await self.service.database.run_read(outbox.last_position)
        self.service.row_sinks.append(self.committed)
        self._spawn(self._poll(), "outbox-poll")
        if self.redis_url is not None:
            self._redis = aioredis.Redis.from_url(
                self.redis_url, socket_connect_timeout=2, health_check_interval=15
            )
            self._spawn(self._listen(), "outbox-listen")
            self._publisher = Publisher(self._redis, self.node_id, self.metrics)
            self._spawn(self._publisher.run(), "outbox-publish")

    async def idle(self) -> None:
        """Wait until every row this node knows of is delivered and every worker is done."""
        while self._workers or self._pending or self._local:
            if self._workers:
                await asyncio.gather(*list(self._workers.values()), return_exceptions=True)
                continue
            self._progress.clear()
            self._wake.set()
            await self._progress.wait()

    async def close(self) -> None:
        """Drain (deliver what is pending, publish what is queued; bounded), then stop."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DRAIN_SECONDS):
                await self.idle()
                if self._publisher is not None:
                    await self._publisher.flush()
        with contextlib.suppress(ValueError):
            self.service.row_sinks.remove(self.committed)
        for task in [*self._tasks, *self._workers.values()]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._workers.values(), return_exceptions=True)
        if self._redis is not None:
            await self._redis.aclose()

    async def redis_state(self) -> str:
        """``ok`` or ``down: <why>``, for /readyz."""
        if self._redis is None:
            return "disabled"
        try:
            await asyncio.wait_for(self._redis.ping(), 2)
        except (RedisError, OSError, TimeoutError) as exc:
            self.metrics.redis_up.set(0)
            return f"down: {type(exc).__name__}"
        # Answering pings is not enough: events flow only once both listeners are back.
        if not self.subscribed.is_set() or not self.realtime.listening:
            self.metrics.redis_up.set(0)
            return "down: reconnecting (events from other nodes are not flowing yet)"
        self.metrics.redis_up.set(1)
        return "ok"

    # --------------------------------------------------------------- ingestion

    def committed(self, rows: Sequence[OutboxRow]) -> None:
        """This node's committed rows (``ServiceCore.row_sinks``): for the other nodes, and here."""
        if not rows:
            return
        if self._publisher is not None:
            self._publisher.put(rows)
        # Delivered on the loop's next turn, in commit order: the request that committed them
        # answers first (a start's 201 does not wait for N sockets), then they go out at once.
        self._local.append(rows)
        if len(self._local) == 1:
            asyncio.get_running_loop().call_soon(self._offer_local)

    def _offer_local(self) -> None:
        while self._local:
            self.offer(self._local.popleft())

    def offer(self, rows: Iterable[OutboxRow]) -> None:
        """Deliver ``rows`` and whatever they complete, in position order; hold what lies past a gap."""
        for row in rows:
            if row.position > self._position:
                self._pending[row.position] = row
        while self._position + 1 in self._pending:
            row = self._pending.pop(self._position + 1)
            try:
                self._deliver(row)
            except Exception:
                log.exception("delivering outbox row %d (%s) failed; skipping it", row.position, row.kind)
            self._position = row.position
        if self._pending:
            self._wake.set()  # a gap: fill it from the database
        self._progress.set()

    async def catch_up(self) -> None:
        """Deliver every row after ``position`` that is in the database now."""
        outbox = self.service.outbox
        while True:
            rows = await self.service.database.run_read(
                functools.partial(outbox.read_after, after=self._position, limit=READ_BATCH)
            )
            self.offer(rows)
            if len(rows) < READ_BATCH:
                return

    # ---------------------------------------------------------------- delivery

    def _deliver(self, row: OutboxRow) -> None:
        """One row's local effects; synchronous, so ``position`` moves with the broadcast."""
        event = event_of(row)
        if event is not None:
            self.service.caches.apply(event)
        if row.kind in COURSE_EVENTS:
            course = row.course_id
            self._generation[course] = self._generation.get(course, 0) + 1
            if row.kind == "activeSessionsData":
                self._last_count_snapshot[course] = time.monotonic()
            elif row.kind == "courseSessionStarted":  # its roster, should its node die before writing it
                self.service.rosters.expect(row.payload["session_id"])
            self._broadcast(row.kind, row.payload, course_room(course), row.position)
        elif row.kind == RECORD:
            # Only what someone on this node follows costs anything (a lecture hall's burst).
            session_id, own = row.payload["session_id"], user_room(row.payload["user_id"])
            if self.realtime.room_size(own):
                record = RecordView.model_validate(row.payload["record"])
                self._broadcast("myAttendanceUpdated", record_data(row.course_id, session_id, record), own)
            follows = self.realtime.room_size(session_room(session_id)) > 0
            counts = (
                bool(row.payload["count_changed"]) and self.realtime.room_size(course_room(row.course_id)) > 0
            )
            if follows or counts:
                deferred = self._deferred.setdefault(row.course_id, _Deferred())
                deferred.records.append(row)
                deferred.count = deferred.count or counts
                deferred.generation = self._generation.get(row.course_id, 0)
                if row.course_id not in self._workers:
                    self._workers[row.course_id] = asyncio.create_task(
                        self._drain(row.course_id), name=f"relay:{row.course_id}"
                    )
        elif row.kind == ENROLLMENT:
            user_id, status = row.payload["user_id"], row.payload["status"]
            if status == "approved":
                # Followed from this row on: recovery replays what comes after it.
                self.realtime.add_user_to_course(user_id, row.course_id, row.position)
            else:
                self.realtime.remove_user_from_course(user_id, row.course_id)
            self._broadcast(
                "enrollmentChanged", enrollment_changed_data(row.course_id, status), user_room(user_id)
            )
            if row.payload.get("requested"):
                self._broadcast(
                    "enrollmentRequested",
                    enrollment_requested_data(row.course_id, row.payload),
                    managers_room(row.course_id),
                )
        elif row.kind == MANAGER:
            p = row.payload
            self.realtime.manager_changed(p["user_id"], row.course_id, p["role"], row.position)
        elif row.kind == ABSENCE_ALERT_KIND:
            # The student, the course's teacher and co-managers, on whichever sockets they have.
            p = row.payload
            for user_id in dict.fromkeys((p["user_id"], p["teacher_id"], *p.get("manager_ids", ()))):
                if self.realtime.room_size(user_room(user_id)):
                    self._broadcast(ABSENCE_ALERT_KIND, row.payload, user_room(user_id))
        else:
            log.warning("ignored outbox row %d of unknown kind %r", row.position, row.kind)

    def _broadcast(self, event: str, payload: dict[str, Any], room: str, offset: int | None = None) -> None:
        if self.realtime.room_size(room) == 0:
            return
        namespace = self.realtime.namespace
        args: tuple[Any, ...] = (payload, str(offset)) if self.offsets and offset is not None else (payload,)
        sent = self.realtime.adapter.broadcast_local(namespace.encode(event, *args), [room], None)
        self.metrics.emits.labels(event).inc()
        if sent:
            self.metrics.deliveries.labels(event).inc(sent)

    async def _drain(self, course_id: str) -> None:
        """The course's record rows: roster updates, then one count snapshot for all of them."""
        try:
            while (work := self._deferred.pop(course_id, None)) is not None:
                await self._roster_updates(work.records)
                if work.count:
                    generation = work.generation
                    wait = (
                        self._last_count_snapshot.get(course_id, -1e9)
                        + self.count_interval
                        - time.monotonic()
                    )
                    if wait > 0:
                        await asyncio.sleep(wait)
                        # What arrived meanwhile joins this snapshot.
                        while (more := self._deferred.pop(course_id, None)) is not None:
                            await self._roster_updates(more.records)
                            generation = more.generation
                    await self._count_snapshot(course_id, generation)
        except asyncio.CancelledError:
            self._deferred.pop(course_id, None)
            raise
        except Exception:
            log.exception("relaying course %s failed; its subscribers may need to resubscribe", course_id)
        finally:
            del self._workers[course_id]
            if course_id in self._deferred:  # arrived after the loop ended
                self._workers[course_id] = asyncio.create_task(self._drain(course_id))
            elif len(self._last_count_snapshot) > 10_000:  # forget quiet courses
                horizon = time.monotonic() - self.count_interval
                self._last_count_snapshot = {
                    c: t for c, t in self._last_count_snapshot.items() if t > horizon
                }

    async def _roster_updates(self, rows: list[OutboxRow]) -> None:
        """``attendanceUpdated`` to each roster room with a follower here (statistics read once each)."""
        statistics: dict[str, Statistics] = {}
        for row in rows:
            session_id = row.payload["session_id"]
            room = session_room(session_id)
            if self.realtime.room_size(room) == 0:
                continue
            if session_id not in statistics:
                statistics[session_id] = await self.service.session_statistics(session_id)
            record = RecordView.model_validate(row.payload["record"])
            update = roster_update_data(row.course_id, session_id, record, statistics[session_id])
            self._broadcast("attendanceUpdated", update, room)

    async def _count_snapshot(self, course_id: str, generation: int) -> None:
        """The count-only snapshot after record rows delivered at ``generation``; none if a stored
        snapshot of the course went out since (read under the stream's lock after those records
        committed, it already counts them), before or during this read."""
        room = course_room(course_id)
        if self.realtime.room_size(room) == 0 or self._generation.get(course_id, 0) != generation:
            return
        snapshot = await self.service.active_sessions_snapshot(course_id)
        if self._generation.get(course_id, 0) != generation:
            return
        self._broadcast("activeSessionsData", active_sessions_data(snapshot), room, self._position)
        self._last_count_snapshot[course_id] = time.monotonic()

    # ------------------------------------------------------------- background

    def _spawn(self, coroutine: Any, name: str) -> None:
        self._tasks.append(asyncio.create_task(coroutine, name=name))

    async def _poll(self) -> None:
        while True:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # arrives as the event is set, and the loop would never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await self._wake.wait()
            if self._wake.is_set() and self._pending:
                await asyncio.sleep(GAP_GRACE_SECONDS)  # the missing rows' message may be on its way
            self._wake.clear()
            try:
                await self.catch_up()
                await self._prune_when_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.metrics.errors.labels("outbox_poll").inc()
                log.warning(
                    "reading the outbox failed (%s); events wait until the database answers again",
                    type(exc).__name__,
                )
            self._progress.set()

    async def _prune_when_due(self) -> None:
        now = time.monotonic()
        if now - self._last_prune < min(PRUNE_EVERY_SECONDS, self.retention_seconds / 10):
            return
        self._last_prune = now
        outbox, at = self.service.outbox, self.service.clock()
        while True:
            deleted = await self.service.database.run_write(
                lambda conn: outbox.prune(conn, at, self.retention_seconds, self.recovery_window_seconds)
            )
            if deleted:
                log.info("pruned %d outbox row(s) older than %.0f s", deleted, self.retention_seconds)
            else:
                return

    async def _listen(self) -> None:
        assert self._redis is not None
        delay = 0.25
        gap = False
        while True:
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    self.metrics.redis_up.set(1)
                    self.subscribed.set()
                    delay = 0.25
                    if gap:
                        log.info("Redis is back: catching up from the outbox")
                        gap = False
                    self._wake.set()  # what was published before this subscription: from the database
                    async for message in pubsub.listen():
                        try:
                            node, rows = decode_rows(message.get("data", b""))
                        except ValueError as exc:
                            log.warning("ignored a message on %s: %s", CHANNEL, exc)
                            continue
                        if node != self.node_id:
                            self.offer(rows)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not gap:
                    log.warning(
                        "lost Redis (%s); events from other nodes now come from the outbox every %.1f s",
                        type(exc).__name__,
                        self.poll_seconds,
                    )
                gap = True
                self.subscribed.clear()
                self.metrics.redis_up.set(0)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
