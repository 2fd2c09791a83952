"""A raw Engine.IO websocket client for tests that need to misbehave on the wire."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import orjson
from websockets.asyncio.client import ClientConnection, connect

GUARD = 10


class RawSocket:
    """One websocket speaking Engine.IO frames directly (no Socket.IO client library)."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.handshake: dict[str, object] = {}

    async def receive(self) -> str | bytes:
        """The next frame that is not a ping (pings are answered)."""
        async with asyncio.timeout(GUARD):
            while True:
                frame = await self.connection.recv()
                if frame == "2":
                    await self.connection.send("3")
                    continue
                return frame

    async def send(self, frame: str | bytes) -> None:
        await self.connection.send(frame)

    async def closed(self) -> None:
        """Wait until the server closes the websocket, skipping what it still sends."""
        async with asyncio.timeout(GUARD):
            await self.connection.wait_closed()

    async def join_namespace(self, namespace: str = "/") -> str:
        """Socket.IO CONNECT; the socket id from the reply."""
        prefix = "40" if namespace == "/" else f"40{namespace},"
        await self.send(prefix)
        reply = await self.receive()
        assert isinstance(reply, str)
        assert reply.startswith(prefix), reply
        sid: str = orjson.loads(reply[len(prefix) :])["sid"]
        return sid


@asynccontextmanager
async def raw_socket(ws_url: str, *, receive_buffer: int | None = None) -> AsyncIterator[RawSocket]:
    """Open an Engine.IO websocket and read its OPEN packet. ``receive_buffer`` shrinks the
    kernel's receive buffer and the client's queue, so that a client that stops reading
    stalls the server quickly."""
    sock = None
    if receive_buffer is not None:
        parts = urlsplit(ws_url)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.connect((parts.hostname, parts.port))
    async with connect(
        ws_url,
        sock=sock,
        compression=None,
        ping_interval=None,
        max_size=None,
        close_timeout=1,
        max_queue=1 if receive_buffer is not None else 16,
    ) as connection:
        raw = RawSocket(connection)
        opening = await raw.receive()
        assert isinstance(opening, str)
        assert opening.startswith("0"), opening
        raw.handshake = orjson.loads(opening[1:])
        yield raw
