"""The auto-end timer: ends each session that outlives its maximum duration.

It sleeps until the earliest expiry (or ``poll_seconds``, whichever is
sooner), and is woken early when a session starts. It runs on every node;
the service's conditional update makes each session end exactly once. The
sleeping, waking and stopping are the term's ``service.loops.Loop``.
"""

from __future__ import annotations

from attendance_live.service.attendance import AttendanceService
from attendance_live.service.events import DomainEvent, SessionStarted
from attendance_live.service.loops import MIN_SLEEP_SECONDS, Loop

__all__ = ["AutoEnder"]


class AutoEnder:
    def __init__(self, service: AttendanceService, *, poll_seconds: float = 30.0) -> None:
        self.service = service
        self.poll_seconds = poll_seconds
        self._loop = Loop("auto-end", self.run_once, retry_seconds=poll_seconds)

    @property
    def running(self) -> bool:
        return self._loop.running

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        """Stop after the pass in progress, if any (see ``Loop.stop``)."""
        await self._loop.stop()

    def wake(self) -> None:
        """Look again now (a session started, or a test moved the clock)."""
        self._loop.wake()

    async def on_event(self, event: DomainEvent) -> None:
        if isinstance(event, SessionStarted):
            self.wake()

    async def run_once(self) -> float:
        """End what has expired; return how long to sleep before looking again."""
        await self.service.end_expired()
        upcoming = await self.service.next_expiry()
        if upcoming is None:
            return self.poll_seconds
        wait = (upcoming - self.service.clock()).total_seconds()
        return max(MIN_SLEEP_SECONDS, min(wait, self.poll_seconds))
