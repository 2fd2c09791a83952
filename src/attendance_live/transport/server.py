"""The Socket.IO v5 server on our Engine.IO server.

:class:`SocketServer` is the Engine.IO handler: each Engine.IO session gets a
:class:`Connection`, which decodes its packets (collecting binary
attachments), enforces the connect timeout, and hands CONNECT, DISCONNECT,
EVENT and ACK packets to the namespace they name. A packet that breaks the
specification closes the Engine.IO session (``parse error``), as the official
test suite expects.

Typical use::

    server = SocketServer(TransportSettings(...))
    chat = server.namespace("/")

    @chat.on_connect
    async def admit(socket, auth):
        if auth.get("token") is None:
            raise ConnectRefused("Authentication required")

    @chat.on("join")
    def join(socket, room):
        socket.join(room)
        return "ok"              # the client's ack, if it asked for one

    app = server.asgi_app(other_app=fastapi_app)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from .adapter import Adapter
from .asgi import ASGIApp, EngineApp
from .engine import EngineServer, EngineSocket
from .namespace import Namespace, Socket, encode
from .settings import TransportSettings
from .sio_packets import (
    BinaryAssembler,
    SocketPacket,
    SocketPacketError,
    SocketPacketType,
    decode_packet,
)
from .timers import Deadline, Lane

__all__ = ["Connection", "SocketServer"]

logger = logging.getLogger(__name__)


class Connection:
    """The Socket.IO side of one Engine.IO session: its sockets, one per namespace joined."""

    __slots__ = ("_ack_ids", "_assembler", "_connect_deadline", "_connecting", "engine", "server", "sockets")

    def __init__(self, server: SocketServer, engine: EngineSocket) -> None:
        self.server = server
        self.engine = engine
        self.sockets: dict[str, Socket] = {}
        self._connecting: set[str] = set()
        self._assembler: BinaryAssembler | None = None
        self._ack_ids = 0
        self._connect_deadline: Deadline | None = server.connect_lane.add(self._connect_timeout)

    def socket_left(self, namespace: str) -> None:
        self.sockets.pop(namespace, None)

    def next_ack_id(self) -> int:
        self._ack_ids += 1
        return self._ack_ids

    def _connect_timeout(self) -> None:
        if not self.sockets:
            logger.info("socket.io connection %s joined no namespace in time; closing it", self.engine.label)
            self.engine.abort("forced close")

    # -- incoming --------------------------------------------------------------------------

    def receive(self, data: str | bytes) -> None:
        try:
            if isinstance(data, bytes):
                if self._assembler is None:
                    raise SocketPacketError("a binary message that no binary packet announced")
                packet = self._assembler.add(data)
                if packet is None:
                    return
                self._assembler = None
            else:
                if self._assembler is not None:
                    raise SocketPacketError("a text packet while binary attachments were expected")
                packet = decode_packet(data)
                if packet.attachments:
                    self._assembler = BinaryAssembler(packet)
                    return
        except SocketPacketError as exc:
            logger.info("socket.io connection %s: %s; closing it", self.engine.label, exc)
            self.engine.abort("parse error")
            return
        self._dispatch(packet)

    def _dispatch(self, packet: SocketPacket) -> None:
        kind = packet.type
        if kind is SocketPacketType.CONNECT:
            self._connect(packet)
            return
        socket = self.sockets.get(packet.namespace)
        if socket is None:
            return  # not (yet) connected to that namespace: ignored, as Node does
        if kind in (SocketPacketType.EVENT, SocketPacketType.BINARY_EVENT):
            socket.namespace.receive_event(socket, packet.data, packet.ack_id)
        elif kind in (SocketPacketType.ACK, SocketPacketType.BINARY_ACK):
            socket.receive_ack(packet.ack_id, packet.data)
        elif kind is SocketPacketType.DISCONNECT:
            socket.namespace.remove(socket, "client namespace disconnect")

    def _connect(self, packet: SocketPacket) -> None:
        name = packet.namespace
        namespace = self.server.namespaces.get(name)
        if namespace is None:
            namespace_error = SocketPacket(
                SocketPacketType.CONNECT_ERROR, name, {"message": "Invalid namespace"}
            )
            for frame in encode(namespace_error):
                self.engine.send(frame)
            return
        if name in self.sockets or name in self._connecting:
            return  # already connected (or connecting) there
        socket = Socket(namespace, self, packet.data or {})
        self._connecting.add(name)
        self.server.spawn(self._admit(namespace, socket))

    async def _admit(self, namespace: Namespace, socket: Socket) -> None:
        try:
            admitted = await namespace.admit(socket)
        finally:
            self._connecting.discard(namespace.name)
        if not admitted:
            return
        self.sockets[namespace.name] = socket
        if self._connect_deadline is not None:
            self._connect_deadline.cancel()
            self._connect_deadline = None

    def closed(self, reason: str) -> None:
        if self._connect_deadline is not None:
            self._connect_deadline.cancel()
            self._connect_deadline = None
        for socket in list(self.sockets.values()):
            socket.namespace.remove(socket, reason)


class SocketServer:
    """Namespaces on an Engine.IO server; also the Engine.IO handler."""

    def __init__(
        self,
        settings: TransportSettings | None = None,
        *,
        adapter_factory: Callable[[str], Adapter] | None = None,
        on_overflow: Callable[[EngineSocket], None] | None = None,
    ) -> None:
        self.settings = settings or TransportSettings()
        self.engine = EngineServer(self, self.settings, on_overflow=on_overflow)
        self.namespaces: dict[str, Namespace] = {}
        self._adapter_factory = adapter_factory
        self._connect_lane: Lane | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def namespace(self, name: str = "/") -> Namespace:
        """The namespace called ``name``, created on first use."""
        if not name.startswith("/"):
            raise ValueError(f"namespace {name!r}: a namespace starts with '/', e.g. '/' or '/admin'")
        namespace = self.namespaces.get(name)
        if namespace is None:
            adapter = self._adapter_factory(name) if self._adapter_factory is not None else None
            namespace = self.namespaces[name] = Namespace(self, name, adapter)
        return namespace

    def asgi_app(self, other_app: ASGIApp | None = None) -> EngineApp:
        """The ASGI application: Engine.IO at ``settings.path``, ``other_app`` elsewhere."""
        return EngineApp(self.engine, other_app)

    @property
    def connect_lane(self) -> Lane:
        if self._connect_lane is None:
            self._connect_lane = self.engine.timers.lane(self.settings.connect_timeout_ms / 1000)
        return self._connect_lane

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run a handler's coroutine as a task the server keeps (and cancels on close)."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Close every connection, then cancel the handlers still running."""
        self.engine.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- EngineHandler -----------------------------------------------------------------

    def on_open(self, socket: EngineSocket) -> None:
        socket.data = Connection(self, socket)

    def on_message(self, socket: EngineSocket, data: str | bytes) -> None:
        connection: Connection = socket.data
        connection.receive(data)

    def on_close(self, socket: EngineSocket, reason: str) -> None:
        connection: Connection | None = socket.data
        if connection is not None:
            connection.closed(reason)
