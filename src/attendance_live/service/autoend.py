"""The auto-end timer: ends each session that outlives its maximum duration.

It sleeps until the earliest expiry (or ``poll_seconds``, whichever is
sooner), and is woken early when a session starts. It runs on every node;
the service's conditional update makes each session end exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from attendance_live.service.attendance import AttendanceService
from attendance_live.service.events import DomainEvent, SessionStarted

__all__ = ["MIN_SLEEP_SECONDS", "STOP_GRACE_SECONDS", "AutoEnder"]

log = logging.getLogger(__name__)

MIN_SLEEP_SECONDS = 0.05
STOP_GRACE_SECONDS = 5.0


class AutoEnder:
    def __init__(self, service: AttendanceService, *, poll_seconds: float = 30.0) -> None:
        self.service = service
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="auto-end")

    async def stop(self) -> None:
        """Stop after the pass in progress, if any (cancelling a pass mid-query
        would abandon its database connection); cancel if it does not end soon."""
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=STOP_GRACE_SECONDS)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    def wake(self) -> None:
        """Look again now (a session started, or a test moved the clock)."""
        self._wake.set()

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

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                delay = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("auto-end pass failed; retrying in %.0f s", self.poll_seconds)
                delay = self.poll_seconds
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
