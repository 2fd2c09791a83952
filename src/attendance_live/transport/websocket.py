"""One websocket, driven over ASGI: the fallback to :mod:`.ws_protocol`.

The ASGI task that runs :meth:`AsgiWebSocket.run` is the connection's reader:
it receives messages and hands each to the Engine.IO session. Writing has no
task of its own while nothing waits: :meth:`wake` starts a drain task only
when frames are queued and none is running, and the task ends when the outbox
is empty. ASGI's ``send`` awaits the server's flow control, so a client that
stops reading holds its own drain task, never the broadcaster; its frames pile
up in its outbox until the limit closes it.

Served this way with ``uvicorn_options(engine, below_asgi=False)``, or under
any ASGI server. The default is the protocol class in :mod:`.ws_protocol`,
which implements the same :class:`~.engine.WebSocketChannel` with a
synchronous ``transport.write`` (docs/transport.md, "where the cut lies").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .eio_packets import Frame, PacketError, PacketType, decode_frame
from .engine import EngineServer, EngineSocket
from .outbox import Outbox

__all__ = ["AsgiWebSocket", "Receive", "Send"]

logger = logging.getLogger(__name__)

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_PROBE = "probe"
# How long an aborted websocket may take to accept its close frame.
_CLOSE_FRAME_TIMEOUT = 1.0


class AsgiWebSocket:
    """A :class:`~.engine.WebSocketChannel` over an accepted ASGI websocket."""

    def __init__(self, server: EngineServer, receive: Receive, send: Send) -> None:
        self.server = server
        self.outbox = Outbox(server.settings.outgoing_buffer_bytes)
        self._receive = receive
        self._send = send
        self._drainer: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[Any] | None = None
        self._close_after_flush = False
        self._aborted = False
        self._ended = False
        self._peer_gone = False

    # -- WebSocketChannel ---------------------------------------------------------------

    def write_now(self, frame: Frame) -> bool:
        return False  # every frame goes through the drain task and ASGI's send

    def wake(self) -> None:
        if self._drainer is None and not self._ended:
            self._drainer = asyncio.get_running_loop().create_task(self._drain())

    def close(self, flush: bool) -> None:
        if self._ended:
            return
        if flush:
            self._close_after_flush = True
            self.wake()
            return
        # Abort: drop what waits. A drain task blocked on a stalled client is cancelled, and the
        # reader is stopped so that the ASGI call returns and the server closes the socket.
        self._aborted = True
        self.outbox.clear()
        if self._drainer is not None:
            self._drainer.cancel()
        if self._reader is not None and self._reader is not asyncio.current_task():
            self._reader.cancel()
        else:
            self._ended = True

    async def _drain(self) -> None:
        send = self._send
        outbox = self.outbox
        try:
            while outbox:
                frame = outbox.popleft()
                if isinstance(frame, bytes):
                    await send({"type": "websocket.send", "bytes": frame})
                else:
                    await send({"type": "websocket.send", "text": frame})
            if self._close_after_flush and not self._ended:
                self._ended = True
                await send({"type": "websocket.close", "code": 1000})
        except OSError:
            # The peer is gone (uvicorn raises ClientDisconnected, an OSError); the reader sees it.
            pass
        finally:
            self._drainer = None

    # -- the reader: the ASGI task ---------------------------------------------------------

    async def run(self, socket: EngineSocket | None, probing: EngineSocket | None) -> None:
        """Read until the websocket ends. ``socket``: a session that starts on this websocket;
        ``probing``: a polling session this websocket tries to upgrade."""
        self._reader = asyncio.current_task()
        try:
            if probing is not None:
                # The upgrade must finish within pingTimeout (Node's upgradeTimeout, bounded alike).
                try:
                    async with asyncio.timeout(self.server.settings.ping_timeout_ms / 1000):
                        socket = await self._probe(probing)
                except TimeoutError:
                    logger.info(
                        "engine.io session %s: the websocket upgrade did not finish in time", probing.label
                    )
                    socket = None
            if socket is not None:
                await self._read(socket)
        except asyncio.CancelledError:
            # Our own abort() cancels the reader; any other cancellation goes on.
            task = self._reader
            if not self._aborted or task is None or task.uncancel() > 0:
                raise
        finally:
            self._ended = True
            if self._drainer is not None:
                self._drainer.cancel()
            if probing is not None:
                probing.abandon_upgrade(self)
            if socket is not None:
                socket.websocket_closed(self)
        if self._aborted and not self._peer_gone:
            await self._try_close_frame()

    async def _try_close_frame(self) -> None:
        """A close frame after an abort, unless a write is stuck on a client that stopped reading
        (then the ASGI call just returns and the server closes the TCP connection)."""
        try:
            async with asyncio.timeout(_CLOSE_FRAME_TIMEOUT):
                await self._send({"type": "websocket.close", "code": 1000})
        except (OSError, RuntimeError, TimeoutError):
            pass  # closed already, or not writable

    async def _read(self, socket: EngineSocket) -> None:
        max_payload = self.server.settings.max_payload
        while not socket.closed:
            message = await self._receive()
            if message["type"] != "websocket.receive":
                self._peer_gone = True
                return
            data = message.get("text")
            if data is None:
                data = message.get("bytes") or b""
            if len(data) > max_payload:
                logger.info(
                    "engine.io session %s: message over %d bytes; closing it", socket.label, max_payload
                )
                socket.abort("transport error")
                return
            socket.receive_frame(data)

    async def _probe(self, session: EngineSocket) -> EngineSocket | None:
        """The upgrade handshake: ``2probe`` → ``3probe``, then ``5``; None if it fails."""
        while True:
            message = await self._receive()
            if message["type"] != "websocket.receive":
                self._peer_gone = True
                return None
            try:
                packet = decode_frame(message.get("text") or message.get("bytes") or b"")
            except PacketError:
                return None
            if packet.type is PacketType.PING and packet.data == _PROBE:
                if not session.begin_upgrade(self):
                    return None
                self.outbox.push("3probe")
                self.wake()
            elif packet.type is PacketType.UPGRADE:
                return session if session.complete_upgrade(self) else None
            elif packet.type is not PacketType.NOOP:
                return None
