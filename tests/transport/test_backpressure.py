"""A slow client never slows the others: bounded outgoing buffers.

One subscriber of a room stops reading. Every broadcast still reaches every
other subscriber (each round waits for them, never for the stalled one); the
stalled one's outgoing buffer overflows, it is disconnected, and the overflow
is counted and reported to the hook the application's metrics use.
"""

from __future__ import annotations

import asyncio
from typing import Any

import socketio

from attendance_live.transport import EngineSocket, Socket, SocketServer, TransportSettings
from tests.transport.conftest import Serve
from tests.transport.raw import GUARD, raw_socket

ROUNDS = 200
PAD = "x" * 64 * 1024  # 64 KiB per event: 12.5 MiB in all, far past what the stalled socket absorbs


async def test_a_stalled_subscriber_is_cut_off_and_the_others_get_every_event(serve: Serve) -> None:
    overflowed: list[str] = []
    reasons: dict[str, str] = {}
    server = SocketServer(
        TransportSettings(ping_interval_ms=60_000, ping_timeout_ms=60_000, outgoing_buffer_bytes=256 * 1024),
        on_overflow=lambda engine_socket: overflowed.append(engine_socket.sid),
    )
    course = server.namespace("/")

    @course.on("join")
    def join(socket: Socket, room: str) -> str:
        socket.join(room)
        return room

    @course.on_disconnect
    def gone(socket: Socket, reason: str) -> None:
        reasons[socket.sid] = reason

    live = await serve(server)

    readers: list[socketio.AsyncClient] = []
    received: list[asyncio.Queue[int]] = []
    for _ in range(3):
        client = socketio.AsyncClient(reconnection=False)
        inbox: asyncio.Queue[int] = asyncio.Queue()

        def on_tick(payload: dict[str, Any], inbox: asyncio.Queue[int] = inbox) -> None:
            inbox.put_nowait(payload["seq"])

        client.on("tick", on_tick)
        await client.connect(live.url, transports=["websocket"])
        assert await client.call("join", "course-1", timeout=GUARD) == "course-1"
        readers.append(client)
        received.append(inbox)

    async with raw_socket(live.ws_url, receive_buffer=4096) as stalled:
        stalled_sid = await stalled.join_namespace()
        await stalled.send('420["join","course-1"]')
        assert await stalled.receive() == '430["course-1"]'
        stalled_engine: EngineSocket = course.sockets[stalled_sid].connection.engine
        # From here on the stalled client reads nothing.

        for seq in range(ROUNDS):
            assert course.broadcast(course.encode("tick", {"seq": seq, "pad": PAD}), to="course-1") >= 3
            for inbox in received:
                async with asyncio.timeout(GUARD):
                    assert await inbox.get() == seq

        assert overflowed == [stalled_engine.sid]
        assert server.engine.overflow_count == 1
        assert reasons == {stalled_sid: "buffer overflow"}
        assert stalled_sid not in course.sockets
        assert len(list(course.adapter.members("course-1"))) == 3

    for client in readers:
        assert client.connected
        await client.disconnect()
