"""Turns domain events into Socket.IO broadcasts to course and session rooms.

Each event is encoded once (``Namespace.encode``) and written to every member
of the room by the transport's adapter (``Namespace.broadcast``), which never
waits on any one client; with Redis the adapter also hands the same frames to
the other nodes.

Order, per course, is the order in which the service committed the changes:
each course has one worker that handles its events one after another.

* ``SessionStarted`` → ``courseSessionStarted`` then ``activeSessionsData``
* ``SessionEnded``   → ``courseSessionEnded`` then ``activeSessionsData``
* ``RecordChanged``  → ``myAttendanceUpdated`` to the student's own room and
  ``attendanceUpdated`` to the session's roster room (both from the record the
  event carries, as committed), and ``activeSessionsData`` when the session's
  studentCount moved.

Every payload is built by ``realtime.payloads``. Snapshots are read when they
are sent (through the snapshot cache, which the change dropped before it was
announced), so the last one a client receives is always the true state. Consecutive record changes that are
already queued share one snapshot (a burst of 1,000 check-ins does not become
1,000 broadcasts of stale counts), and a count-only snapshot waits until
``count_interval`` (100 ms by default, ``COUNT_UPDATE_INTERVAL_MS``) after the
previous one, gathering what arrives meanwhile. Each change is still followed
by a snapshot that includes it; starts and ends are never held back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

from attendance_live.metrics import Metrics
from attendance_live.realtime.payloads import (
    active_sessions_data,
    ended_payload,
    record_data,
    roster_update_data,
    started_payload,
)
from attendance_live.realtime.server import RealtimeServer
from attendance_live.service.attendance import AttendanceService
from attendance_live.service.events import (
    DomainEvent,
    RecordChanged,
    SessionEnded,
    SessionStarted,
)
from attendance_live.vocabulary import course_of_room, course_room, session_room, user_room

__all__ = ["Notifier"]

log = logging.getLogger(__name__)


class Notifier:
    def __init__(
        self,
        realtime: RealtimeServer,
        service: AttendanceService,
        metrics: Metrics,
        *,
        local_only: bool,
        count_interval: float = 0.1,
    ) -> None:
        self.realtime = realtime
        self.metrics = metrics
        self.namespace = realtime.namespace
        self.service = service
        # With one node, rooms nobody on this node is in need no emit at all.
        self.local_only = local_only
        self.count_interval = count_interval
        self._last_count_snapshot: dict[str, float] = {}
        self._queues: dict[str, deque[DomainEvent]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}

    async def handle(self, event: DomainEvent) -> None:
        """Bus subscriber: queue the event behind the course's earlier ones."""
        queue = self._queues.setdefault(event.course_id, deque())
        queue.append(event)
        if event.course_id not in self._workers:
            self._workers[event.course_id] = asyncio.create_task(
                self._drain(event.course_id), name=f"notify:{event.course_id}"
            )

    async def idle(self) -> None:
        """Wait until every queued event has been sent (for tests and shutdown)."""
        while self._workers:
            await asyncio.gather(*list(self._workers.values()), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._workers.values()):
            task.cancel()
        await asyncio.gather(*list(self._workers.values()), return_exceptions=True)

    async def _drain(self, course_id: str) -> None:
        queue = self._queues[course_id]
        try:
            while queue:
                event = queue.popleft()
                snapshot_due = await self._apply(event)
                while queue and isinstance(queue[0], RecordChanged):
                    snapshot_due = await self._apply(queue.popleft()) or snapshot_due
                if snapshot_due and isinstance(event, RecordChanged):
                    await self._wait_out_count_window(course_id, queue)
                if snapshot_due:
                    await self._snapshot(course_id)
                    self._last_count_snapshot[course_id] = time.monotonic()
        except asyncio.CancelledError:
            queue.clear()
            raise
        except Exception:
            log.exception("notifying course %s failed; its subscribers may need to resubscribe", course_id)
        finally:
            del self._workers[course_id]
            if queue:  # raced with handle() after the loop ended
                self._workers[course_id] = asyncio.create_task(self._drain(course_id))
            else:
                del self._queues[course_id]
                if len(self._last_count_snapshot) > 10_000:  # forget quiet courses
                    horizon = time.monotonic() - self.count_interval
                    self._last_count_snapshot = {
                        c: t for c, t in self._last_count_snapshot.items() if t > horizon
                    }

    async def _wait_out_count_window(self, course_id: str, queue: deque[DomainEvent]) -> None:
        """Hold a count-only snapshot until ``count_interval`` after the last one.

        Record changes arriving meanwhile join it, so a burst of check-ins costs
        a broadcast per interval instead of one per check-in; every change is
        still followed by a snapshot that includes it.
        """
        wait = self._last_count_snapshot.get(course_id, -1e9) + self.count_interval - time.monotonic()
        if wait <= 0:
            return
        await asyncio.sleep(wait)
        while queue and isinstance(queue[0], RecordChanged):
            await self._apply(queue.popleft())

    async def _apply(self, event: DomainEvent) -> bool:
        """Send what ``event`` calls for; return whether a snapshot must follow."""
        if isinstance(event, SessionStarted | SessionEnded):
            view = await self.service.session_summary(event.session_id)
            if view is None:
                return False
            if isinstance(event, SessionStarted):
                await self._emit("courseSessionStarted", started_payload(view), course_room(event.course_id))
            else:
                await self._emit("courseSessionEnded", ended_payload(view), course_room(event.course_id))
            return True
        if isinstance(event, RecordChanged):
            await self._roster_update(event)
            return event.count_changed
        return False  # enrollment changes: handled on every node by realtime.cluster

    async def _roster_update(self, event: RecordChanged) -> None:
        """``attendanceUpdated`` to the roster's followers, ``myAttendanceUpdated`` to the student."""
        roster, own = session_room(event.session_id), user_room(event.user_id)
        to_roster, to_student = self._anyone_in(roster), self._anyone_in(own)
        if not (to_roster or to_student):
            return
        if event.record is None:  # not from this node's service (the notifier sees only those)
            return
        if to_student:
            payload = record_data(event.course_id, event.session_id, event.record)
            await self._emit("myAttendanceUpdated", payload, own)
        if to_roster:
            statistics = await self.service.session_statistics(event.session_id)
            update = roster_update_data(event.course_id, event.session_id, event.record, statistics)
            await self._emit("attendanceUpdated", update, roster)

    async def resync(self) -> None:
        """Send every course room on this node a fresh snapshot, to this node's sockets only.

        For after a gap in cross-node delivery (Redis was away): whatever this
        node's clients missed, the snapshot they get now is the true state.
        """
        courses = [c for c in map(course_of_room, self.realtime.local_rooms()) if c is not None]
        for course_id in courses:
            snapshot = await self.service.active_sessions_snapshot(course_id)
            packet = self.namespace.encode("activeSessionsData", active_sessions_data(snapshot))
            self.namespace.adapter.broadcast_local(packet, [course_room(course_id)], None)

    async def _snapshot(self, course_id: str) -> None:
        room = course_room(course_id)
        if not self._anyone_in(room):
            return
        snapshot = await self.service.active_sessions_snapshot(course_id)
        await self._emit("activeSessionsData", active_sessions_data(snapshot), room)

    def _anyone_in(self, room: str) -> bool:
        return not self.local_only or self.realtime.room_size(room) > 0

    async def _emit(self, event: str, payload: dict[str, object], room: str) -> None:
        # Encoded once, written to every local member without waiting on any, published once.
        local = self.namespace.broadcast(self.namespace.encode(event, payload), to=room)
        self.metrics.emits.labels(event).inc()
        if local:
            self.metrics.deliveries.labels(event).inc(local)
