"""A broadcast path without per-recipient tasks.

python-socketio's ``AsyncManager.emit`` encodes a room broadcast once, then
starts one asyncio task per recipient, each of which calls
``eio.send_packet`` (a socket lookup, a ping-timeout check, a log call) before
queueing the packet for that socket's writer. At 10,000 recipients the tasks
are most of the cost of a fan-out (see docs/performance.md). Here the encoded
Engine.IO packet goes straight onto each open socket's send queue, which is
exactly where ``send_packet`` would have put it; the writer tasks, transports
and ordering are python-engineio's own. Emits with a callback, and anything
that is not a room or single-recipient emit, take the library's path.

``FastRedisManager`` puts the same path under python-socketio's Redis manager
(its pub/sub layer calls ``super().emit`` for local delivery, which the method
resolution order routes here).
"""

from __future__ import annotations

from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet as sio_packet

__all__ = ["FastEmitManager", "FastRedisManager"]


class FastEmitManager(socketio.AsyncManager):  # type: ignore[misc]
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
        sockets = self.server.eio.sockets
        for eio_sid in list(participants._fwdm.values()):
            socket = sockets.get(eio_sid)
            if socket is not None and not socket.closing and not socket.closed:
                socket.queue.put_nowait(message)


class FastRedisManager(socketio.AsyncRedisManager, FastEmitManager):  # type: ignore[misc]
    """python-socketio's Redis manager, delivering locally through ``FastEmitManager``."""
