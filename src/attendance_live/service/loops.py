"""A background loop that runs one pass, sleeps as long as the pass asks, and can be woken early.

The timers (the auto-end timer, the webhook sender, the timetable scheduler) are such loops: a
pass in progress is never cancelled mid-query on stop (it would abandon its database connection)
unless it outlasts a grace period, and a failing pass is logged and retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

__all__ = ["MIN_SLEEP_SECONDS", "STOP_GRACE_SECONDS", "Loop"]

log = logging.getLogger(__name__)

MIN_SLEEP_SECONDS = 0.05
STOP_GRACE_SECONDS = 5.0


class Loop:
    """Runs ``run_pass`` (which returns the seconds to sleep; 0 or less: go again at once) until
    stopped; ``wake`` cuts a sleep short."""

    def __init__(self, name: str, run_pass: Callable[[], Awaitable[float]], *, retry_seconds: float) -> None:
        self.name = name
        self.run_pass = run_pass
        self.retry_seconds = retry_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        # Passes begun and finished (failed ones too), for ``settled``.
        self._begun = 0
        self._finished = 0
        self._progress = asyncio.Condition()

    @property
    def passes(self) -> int:
        """Passes begun since the loop was made."""
        return self._begun

    @property
    def running(self) -> bool:
        """Started and not stopped."""
        return self._task is not None

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=self.name)

    def wake(self) -> None:
        self._wake.set()

    async def settled(self) -> None:
        """Wake the loop and wait until a pass that began after this call has finished (so every
        effect of what happened before the call has been acted on)."""
        target = self._begun + 1
        self.wake()
        async with self._progress:
            await self._progress.wait_for(lambda: self._finished >= target)

    async def stop(self) -> None:
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

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            self._begun += 1
            try:
                delay = await self.run_pass()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s pass failed; retrying in %.0f s", self.name, self.retry_seconds)
                delay = self.retry_seconds
            async with self._progress:
                self._finished = self._begun
                self._progress.notify_all()
            if delay <= 0:
                await asyncio.sleep(0)  # more to do: let the others run, then go on
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(MIN_SLEEP_SECONDS, delay))
