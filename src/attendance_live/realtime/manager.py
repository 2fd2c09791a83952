"""python-socketio's client manager, with the per-recipient and per-room costs taken out.

Two changes, both measured by the benchmarks (docs/performance.md):

**Broadcasts without per-recipient tasks.**

python-socketio's ``AsyncManager.emit`` encodes a room broadcast once, then
starts one asyncio task per recipient, each of which calls
``eio.send_packet`` (a socket lookup, a ping-timeout check, a log call) before
queueing the packet for that socket's writer. At 10,000 recipients the tasks
are most of the cost of a fan-out (see docs/performance.md). Here the encoded
Engine.IO packet goes straight onto each open socket's send queue, which is
exactly where ``send_packet`` would have put it; the writer tasks, transports
and ordering are python-engineio's own. Emits with a callback, and anything
that is not a room or single-recipient emit, take the library's path.

**Disconnects in constant time.** The library finds a leaving socket's rooms
by scanning every room of the namespace, and every socket has rooms of its own
(its sid's, its user's), so N disconnects cost O(N²): at 10,000 sockets, tens
of seconds of CPU. Here each socket's rooms are indexed, and the pending
connect/disconnect lists are sets.

``FastRedisManager`` puts the same manager under python-socketio's Redis
manager (its pub/sub layer calls ``super()`` for local delivery, which the
method resolution order routes here).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet as sio_packet

from attendance_live.realtime.lean import LeanSocket

__all__ = ["FastEmitManager", "FastRedisManager"]

log = logging.getLogger(__name__)


class _SidSet(dict[str, None]):
    """The list interface python-socketio uses for pending sids, in O(1)."""

    def append(self, sid: str) -> None:
        self[sid] = None

    def remove(self, sid: str) -> None:
        del self[sid]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.keys()))


class FastEmitManager(socketio.AsyncManager):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rooms_of: dict[tuple[str, str], set[Any]] = {}

    # ---------------------------------------------------- rooms, indexed by sid

    def pre_connect(self, eio_sid: str, namespace: str) -> Any:
        self.pending_connect.setdefault(namespace, _SidSet())
        return super().pre_connect(eio_sid, namespace)

    def pre_disconnect(self, sid: str, namespace: str) -> Any:
        self.pending_disconnect.setdefault(namespace, _SidSet())
        return super().pre_disconnect(sid, namespace)

    def basic_enter_room(self, sid: str, namespace: str, room: Any, eio_sid: str | None = None) -> None:
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        self._rooms_of.setdefault((namespace, sid), set()).add(room)

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        super().basic_leave_room(sid, namespace, room)
        rooms = self._rooms_of.get((namespace, sid))
        if rooms is not None:
            rooms.discard(room)
            if not rooms:
                del self._rooms_of[(namespace, sid)]

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        # The library's version scans every room of the namespace.
        for room in list(self._rooms_of.get((namespace, sid), ())):
            self.basic_leave_room(sid, namespace, room)
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            sids = pending.get(namespace)
            if sids is not None and sid in sids:
                sids.remove(sid)
                if not sids:
                    del pending[namespace]

    def get_rooms(self, sid: str, namespace: str) -> list[Any]:
        return [room for room in self._rooms_of.get((namespace, sid), ()) if room is not None]

    # --------------------------------------------------------------- broadcasts

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        room = to or room
        if callback is not None or skip_sid is not None or not isinstance(data, dict) or room is None:
            await super().emit(
                event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, **kwargs
            )
            return
        participants = self.rooms.get(namespace, {}).get(room)
        if not participants:
            return
        encoded = self.server.packet_class(sio_packet.EVENT, namespace=namespace, data=[event, data]).encode()
        if not isinstance(encoded, str):  # binary attachments: the library's path
            await super().emit(event, data, namespace, room=room, **kwargs)
            return
        message = eio_packet.Packet(eio_packet.MESSAGE, encoded)
        frame = message.encode()
        sockets = self.server.eio.sockets
        for eio_sid in list(participants._fwdm.values()):
            socket = sockets.get(eio_sid)
            if socket is None or socket.closing or socket.closed:
                continue
            if isinstance(socket, LeanSocket) and socket.can_write_now():
                # Straight to the websocket: no queue, no writer wake-up (usually no
                # suspension either, so a broadcast is one pass over its recipients).
                await socket.write_now(frame)
            else:
                socket.queue.put_nowait(message)


class FastRedisManager(socketio.AsyncRedisManager, FastEmitManager):  # type: ignore[misc]
    """python-socketio's Redis manager, delivering locally through ``FastEmitManager``.

    Its listener is replaced for two reasons. The library retries a lost Redis
    with a delay doubling up to 60 s, so events from other nodes could stay away
    for a minute after Redis is back while /readyz already said ok; here the
    delay stays under a second and ``listening`` tells /readyz the truth. And
    events published while this node was not listening are lost for its
    clients (Redis pub/sub keeps nothing), so after a gap ``on_resubscribed``
    runs: the application sends every local course room a fresh snapshot.
    """

    listening = False
    on_resubscribed: Callable[[], Coroutine[Any, Any, None]] | None = None
    _resync: asyncio.Task[None] | None = None

    async def _redis_listen_with_retries(self) -> AsyncIterator[Any]:
        delay = 0.25
        gap = False
        while True:
            try:
                self._redis_connect()
                await self.pubsub.subscribe(self.channel)
                self.listening = True
                delay = 0.25
                if gap and self.on_resubscribed is not None:
                    log.info("Redis is back: events from other nodes flow again; resending snapshots")
                    self._resync = asyncio.create_task(self.on_resubscribed())
                gap = False
                async for message in self.pubsub.listen():
                    yield message
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.listening = False
                if not gap:
                    log.warning("lost Redis (%s): this node serves its own clients only", type(exc).__name__)
                gap = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
