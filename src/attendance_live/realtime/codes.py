"""``checkInCode`` for the teachers following a ``code`` session: at once, then at every rotation.

One timer per node for every code session that has a roster follower on this
node (not a task per session): it sleeps until the earliest rotation, then
sends each session whose code changed its new code, to this node's members of
the session's room only. Codes are derived from the time (``service.codes``),
so every node computes the same code for its own followers and no node needs
to relay anything; a session drops out when its room on this node empties or
the session ends or is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

from attendance_live.payloads import check_in_code_data
from attendance_live.service.attendance import AttendanceService
from attendance_live.service.errors import NotFound
from attendance_live.service.views import CheckInCodeView
from attendance_live.timeutil import Clock
from attendance_live.transport import Namespace
from attendance_live.vocabulary import session_room

__all__ = ["CODE_EVENT", "MAX_SLEEP_SECONDS", "CodeTicker"]

log = logging.getLogger(__name__)

CODE_EVENT = "checkInCode"

# Longest sleep between two looks (the clock may jump; a session may end unseen).
MAX_SLEEP_SECONDS = 30.0


class CodeTicker:
    """The per-node code timer; see the module docstring."""

    def __init__(self, namespace: Namespace, service: AttendanceService, clock: Clock) -> None:
        self.namespace = namespace
        self.service = service
        self.clock = clock
        self._sent: dict[str, CheckInCodeView] = {}
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def watch(self, view: CheckInCodeView) -> None:
        """Follow ``view``'s session from now on (a new follower was just sent ``view``).

        A session followed already keeps what its room was last sent: if the
        code rotated just before this follower came, the next tick still
        brings the others the new one.
        """
        self._sent.setdefault(view.session_id, view)
        self._wake.set()

    @property
    def watched(self) -> frozenset[str]:
        return frozenset(self._sent)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="check-in-codes")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def tick(self) -> None:
        """Send every watched session whose code has changed its new code (to this node's followers)."""
        async with self._lock:
            for session_id, sent in list(self._sent.items()):
                room = session_room(session_id)
                if not self.namespace.adapter.room_size(room):
                    del self._sent[session_id]
                    continue
                try:
                    view = await self.service.current_code(session_id)
                except NotFound:
                    view = None
                if view is None:
                    del self._sent[session_id]
                    continue
                if view.code == sent.code and view.expires_at == sent.expires_at:
                    continue
                self._sent[session_id] = view
                # This node's followers only: every node sends its own (codes come from the clock).
                packet = self.namespace.encode(CODE_EVENT, check_in_code_data(view))
                self.namespace.adapter.broadcast_local(packet, [room], None)

    def _delay(self) -> float | None:
        if not self._sent:
            return None
        soonest = min(datetime.fromisoformat(v.expires_at) for v in self._sent.values())
        # A millisecond past the rotation, so the tick sees the new code.
        seconds = (soonest - self.clock()).total_seconds() + 0.001
        return min(max(seconds, 0.001), MAX_SLEEP_SECONDS)

    async def _run(self) -> None:
        while True:
            delay = self._delay()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            self._wake.clear()
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sending check-in codes failed; retrying at the next rotation")
                await asyncio.sleep(1)
