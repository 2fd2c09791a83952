"""Read caches for the hot Socket.IO paths, invalidated by the domain events.

Subscribing and asking for active sessions happen far more often than the
data behind them changes (a lecture hall reconnecting after a Wi-Fi blip is
hundreds of subscribes to one course). Two caches serve them:

* ``members`` (:class:`CourseMembers`): per course, its teacher, its co-managers
  and every enrollment's status, loaded in one query, so a subscribe's authorization
  needs no query at all;
* ``snapshots``: the course's active sessions (:class:`ActiveSessionsView`).

Each course has a version that every invalidation bumps; a load stores its
result only if the version did not move while it ran, so a change that
commits during a load is never hidden by it. Lookups that miss while a load
of the same version runs share it: a burst of subscribes to a course that is
not loaded yet (a restart, the cluster's time-to-live running out) reads its
members once, not once a socket. With several nodes the other
nodes' invalidations arrive with their outbox rows (``realtime.relay``, on
every node); a time-to-live bounds how long a late one could cost
(``Caches.for_cluster``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from attendance_live.service.events import (
    DomainEvent,
    EnrollmentChanged,
    ManagerChanged,
    RecordChanged,
    SessionEnded,
    SessionStarted,
)
from attendance_live.service.views import ActiveSessionsView
from attendance_live.vocabulary import EnrollmentStatus

__all__ = ["MAX_COURSES", "Caches", "CourseMembers"]

T = TypeVar("T")
MAX_COURSES = 20_000


@dataclass(frozen=True, slots=True)
class CourseMembers:
    teacher_id: str
    statuses: dict[str, EnrollmentStatus]  # user id -> enrollment status
    archived: bool = False  # students may not follow an archived course
    managers: frozenset[str] = frozenset()  # the co-managers' user ids (``service.access.manages``)


class _PerCourse(Generic[T]):
    def __init__(self, ttl: float | None) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[T, float]] = {}
        self._versions: dict[str, int] = {}
        self._loading: dict[str, tuple[int, asyncio.Task[T | None]]] = {}

    def invalidate(self, course_id: str) -> None:
        self._entries.pop(course_id, None)
        self._versions[course_id] = self._versions.get(course_id, 0) + 1

    def clear(self) -> None:
        for course_id in list(self._entries):
            self.invalidate(course_id)

    async def get(self, course_id: str, load: Callable[[], Awaitable[T | None]]) -> T | None:
        now = time.monotonic()
        entry = self._entries.get(course_id)
        if entry is not None and (self.ttl is None or now - entry[1] < self.ttl):
            return entry[0]
        version = self._versions.get(course_id, 0)
        running = self._loading.get(course_id)
        if running is None or running[0] != version:
            task = asyncio.ensure_future(self._load(course_id, version, now, load))
            running = self._loading[course_id] = (version, task)
            task.add_done_callback(lambda done: self._loaded(course_id, done))
        # Shielded: one waiter cancelled does not cancel the load the others wait for.
        return await asyncio.shield(running[1])

    async def _load(
        self, course_id: str, version: int, now: float, load: Callable[[], Awaitable[T | None]]
    ) -> T | None:
        value = await load()
        if value is not None and self.ttl != 0 and self._versions.get(course_id, 0) == version:
            if len(self._entries) >= MAX_COURSES:
                self._entries.clear()
            self._entries[course_id] = (value, now)
        return value

    def _loaded(self, course_id: str, done: asyncio.Task[T | None]) -> None:
        running = self._loading.get(course_id)
        if running is not None and running[1] is done:
            del self._loading[course_id]
        if not done.cancelled():
            done.exception()  # retrieved here too: its waiters may all have been cancelled


class Caches:
    """The service's read caches. A ttl of None means "until invalidated"; 0 means off."""

    def __init__(self, *, members_ttl: float | None = None, snapshots_ttl: float | None = None) -> None:
        self.members: _PerCourse[CourseMembers] = _PerCourse(members_ttl)
        self.snapshots: _PerCourse[ActiveSessionsView] = _PerCourse(snapshots_ttl)

    @classmethod
    def for_cluster(cls) -> Caches:
        """Several nodes: the other nodes' invalidations come with their outbox rows, which can
        be a poll late (Redis down), while a subscriber must get the true snapshot at once. So
        snapshots are not cached; memberships are, for a few seconds at most."""
        return cls(members_ttl=5.0, snapshots_ttl=0.0)

    def apply(self, event: DomainEvent) -> None:
        """Drop what ``event`` made stale (called for this node's and other nodes' events)."""
        if isinstance(event, EnrollmentChanged | ManagerChanged):
            self.members.invalidate(event.course_id)
        elif isinstance(event, SessionStarted | SessionEnded) or (
            isinstance(event, RecordChanged) and event.count_changed
        ):
            self.snapshots.invalidate(event.course_id)

    def clear(self) -> None:
        """Forget everything (after a gap in the invalidations, e.g. Redis was away)."""
        self.members.clear()
        self.snapshots.clear()
