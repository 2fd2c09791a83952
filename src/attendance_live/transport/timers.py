"""One timer for every connection's deadlines.

Each kind of deadline (the next ping, the pong that must answer it, the
Socket.IO CONNECT that must follow the handshake) has one delay shared by all
connections, so the deadlines of a kind fall due in the order they were set: a
FIFO lane per kind, appended at the tail, served from the head. A single
``loop.call_at`` handle is armed for the earliest head of all lanes. Setting a
deadline is an append; cancelling one marks it dead, and the timer drops it
when it reaches the head. No task and no timer handle per connection.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

__all__ = ["Deadline", "Lane", "TimerWheel"]


class Deadline:
    __slots__ = ("action", "due", "live")

    def __init__(self, due: float, action: Callable[[], None]) -> None:
        self.due = due
        self.action = action
        self.live = True

    def cancel(self) -> None:
        self.live = False


class Lane:
    """Deadlines that all lie ``delay`` seconds after they were set."""

    __slots__ = ("_queue", "_timers", "delay")

    def __init__(self, timers: TimerWheel, delay: float) -> None:
        self._timers = timers
        self._queue: deque[Deadline] = deque()
        self.delay = delay

    def add(self, action: Callable[[], None], since: float | None = None) -> Deadline:
        """``action`` runs ``delay`` seconds after ``since`` (a ``loop.time()``; default now).
        ``since`` must not go back in time from one call to the next."""
        start = self._timers.loop.time() if since is None else since
        deadline = Deadline(start + self.delay, action)
        was_empty = not self._queue
        self._queue.append(deadline)
        if was_empty:
            self._timers.arm(deadline.due)
        return deadline

    def head_due(self) -> float | None:
        queue = self._queue
        while queue and not queue[0].live:
            queue.popleft()
        return queue[0].due if queue else None

    def run_due(self, now: float) -> None:
        queue = self._queue
        while queue and (not queue[0].live or queue[0].due <= now):
            deadline = queue.popleft()
            if deadline.live:
                deadline.live = False
                deadline.action()

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def live(self) -> int:
        """Deadlines not cancelled (a scan: for gauges, not for hot paths)."""
        return sum(1 for deadline in self._queue if deadline.live)


class TimerWheel:
    """The lanes and the one ``call_at`` handle that serves them."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._lanes: list[Lane] = []
        self._handle: asyncio.TimerHandle | None = None
        self._armed_at = float("inf")

    @property
    def entries(self) -> int:
        """Deadlines queued in every lane, cancelled ones not yet dropped included (a gauge)."""
        return sum(len(lane) for lane in self._lanes)

    @property
    def live_entries(self) -> int:
        """Deadlines not cancelled in every lane (a scan: for gauges)."""
        return sum(lane.live for lane in self._lanes)

    def lane(self, delay: float) -> Lane:
        lane = Lane(self, delay)
        self._lanes.append(lane)
        return lane

    def arm(self, when: float) -> None:
        if when >= self._armed_at:
            return
        if self._handle is not None:
            self._handle.cancel()
        self._armed_at = when
        self._handle = self.loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._handle = None
        self._armed_at = float("inf")
        now = self.loop.time()
        for lane in self._lanes:
            lane.run_due(now)
        heads = [due for lane in self._lanes if (due := lane.head_due()) is not None]
        if heads:
            self.arm(min(heads))

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._armed_at = float("inf")
