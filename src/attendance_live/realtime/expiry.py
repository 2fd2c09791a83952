"""Deadlines for many sockets on one event-loop timer.

Each connection's authentication ends at its token's ``exp``. Rather than a
task (or a loop timer) per socket, :class:`Deadlines` keeps a heap of
``(when, key)`` and arms one ``loop.call_at`` handle for the earliest; moving
or cancelling a deadline leaves a stale heap entry that is skipped when it
comes up (and the heap is compacted when stale entries outnumber live ones).
The callback runs synchronously in the loop at the deadline, so whatever it
does (leaving rooms) happens before any later broadcast is written.

Deadlines are wall-clock times (seconds since the epoch, as ``exp`` is); the
loop timer is re-armed if the wall clock has not reached a deadline when it
fires (clock adjustments).

Also here: the refresh payload check and the ``tokenExpired`` /
``tokenRefreshed`` bodies.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from attendance_live.auth.tokens import MAX_TOKEN_LENGTH
from attendance_live.payloads import PayloadError
from attendance_live.timeutil import iso_z

__all__ = ["TOKEN_EXPIRED_EVENT", "TOKEN_REFRESHED_EVENT", "Deadlines", "expiry_body", "require_token"]

TOKEN_EXPIRED_EVENT: Final = "tokenExpired"  # noqa: S105 - an event name
TOKEN_REFRESHED_EVENT: Final = "tokenRefreshed"  # noqa: S105 - an event name


class Deadlines:
    """``on_due(key)`` is called once when ``key``'s deadline passes, unless moved or cancelled."""

    def __init__(self, on_due: Callable[[str], None], *, clock: Callable[[], float] = time.time) -> None:
        self._on_due = on_due
        self._clock = clock
        self._heap: list[tuple[float, int, str]] = []
        self._live: dict[str, tuple[float, int]] = {}
        self._seq = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._armed_for: float | None = None

    def __len__(self) -> int:
        return len(self._live)

    @property
    def entries(self) -> int:
        """Heap entries, stale ones not yet dropped included (a gauge: it must not grow for ever)."""
        return len(self._heap)

    def __contains__(self, key: object) -> bool:
        return key in self._live

    def set(self, key: str, when: float) -> None:
        """Set (or move) ``key``'s deadline to ``when`` (epoch seconds)."""
        entry = (when, next(self._seq))
        self._live[key] = entry
        heapq.heappush(self._heap, (*entry, key))
        self._compact()
        self._arm()

    def cancel(self, key: str) -> None:
        self._live.pop(key, None)
        self._compact()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._armed_for = None
        self._heap.clear()
        self._live.clear()

    def _stale(self, item: tuple[float, int, str]) -> bool:
        return self._live.get(item[2]) != (item[0], item[1])

    def _compact(self) -> None:
        if len(self._heap) > 64 and len(self._heap) > 2 * len(self._live):
            self._heap = [item for item in self._heap if not self._stale(item)]
            heapq.heapify(self._heap)

    def _arm(self) -> None:
        while self._heap and self._stale(self._heap[0]):
            heapq.heappop(self._heap)
        if not self._heap:
            return
        when = self._heap[0][0]
        if self._armed_for is not None and self._armed_for <= when:
            return  # an earlier (or the same) wake-up is already set
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_at(loop.time() + max(0.0, when - self._clock()), self._fire)
        self._armed_for = when

    def _fire(self) -> None:
        self._timer = None
        self._armed_for = None
        now = self._clock()
        due: list[str] = []
        while self._heap and self._heap[0][0] <= now:
            item = heapq.heappop(self._heap)
            if not self._stale(item):
                del self._live[item[2]]
                due.append(item[2])
        for key in due:
            self._on_due(key)
        self._arm()


def require_token(args: tuple[Any, ...]) -> str:
    """The ``token`` of a ``refreshToken`` payload, or :class:`PayloadError` saying what to send."""
    example = "socket.emit('refreshToken', {token: '...'})"
    payload = args[0] if args else None
    if not isinstance(payload, dict):
        raise PayloadError(f"refreshToken needs a payload {{token}}; send {example}")
    token = payload.get("token")
    if not isinstance(token, str) or not token.strip():
        raise PayloadError(f"token must be a non-empty string; send {example}")
    if len(token) > MAX_TOKEN_LENGTH:
        raise PayloadError(f"token is longer than {MAX_TOKEN_LENGTH} characters")
    return token


def expiry_body(field: str, epoch_seconds: float) -> dict[str, Any]:
    """``{field: ISO 8601 UTC with milliseconds}`` for a token's ``exp``."""
    return {field: iso_z(datetime.fromtimestamp(epoch_seconds, UTC))}
