"""The read caches and their invalidation by domain events (``service.cache``)."""

from __future__ import annotations

import asyncio
import time

from attendance_live.service.cache import Caches, CourseMembers
from attendance_live.service.events import EnrollmentChanged, RecordChanged


class TestCaches:
    async def test_a_change_during_a_load_is_not_hidden(self) -> None:
        caches = Caches()
        release = asyncio.Event()

        async def slow_load() -> CourseMembers:
            await release.wait()
            return CourseMembers("t", {"s1": "approved"})

        loading = asyncio.create_task(caches.members.get("c", slow_load))
        await asyncio.sleep(0)
        caches.apply(EnrollmentChanged("c", "s1", "rejected"))  # commits while loading
        release.set()
        assert (await loading) is not None
        # the stale load was not stored: the next lookup loads again
        calls = 0

        async def fresh() -> CourseMembers:
            nonlocal calls
            calls += 1
            return CourseMembers("t", {"s1": "rejected"})

        assert (await caches.members.get("c", fresh)) == CourseMembers("t", {"s1": "rejected"})
        assert calls == 1
        assert (await caches.members.get("c", fresh)) is not None
        assert calls == 1  # cached now

    def test_events_invalidate_what_they_change(self) -> None:
        caches = Caches()
        caches.snapshots._entries["c"] = (object(), time.monotonic())  # type: ignore[assignment]
        caches.apply(RecordChanged("c", "s", "u", False))
        assert "c" in caches.snapshots._entries  # studentCount did not move
        caches.apply(RecordChanged("c", "s", "u", True))
        assert "c" not in caches.snapshots._entries

    async def test_cluster_mode_does_not_cache_snapshots(self) -> None:
        caches = Caches.for_cluster()
        loads = 0

        async def load() -> CourseMembers:
            nonlocal loads
            loads += 1
            return CourseMembers("t", {})

        await caches.snapshots.get("c", load)  # type: ignore[arg-type]
        await caches.snapshots.get("c", load)  # type: ignore[arg-type]
        assert loads == 2
