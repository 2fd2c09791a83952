"""Namespaces and their sockets: the handler API the application programs against.

A :class:`Namespace` holds the handlers (``on_connect``, ``on(event)``,
``on_disconnect``), its connected :class:`Socket` objects and an
:class:`~.adapter.Adapter` for rooms. A handler is a function or a coroutine
function; coroutines run in a task, so a slow handler never blocks the
connection's reading. With ``handlers_in_order`` (the default) one socket's
events are handled one after the other, each after the previous one finished
(a client that subscribes and then unsubscribes ends unsubscribed); at most
``max_pending_events`` may wait, beyond that the connection is closed. An
event handler's return value answers the client's ack, when it asked for
one: ``None`` → no arguments, a tuple → those arguments, anything else → that
one argument.

Client events named like Socket.IO's reserved ones (:data:`RESERVED_EVENTS`)
are unknown events: no handler may be registered for them and none runs.

This module sits between the adapter (below) and the server (above) and knows
the server only through two small protocols: :class:`Host`, what a namespace
needs from the server that runs it (settings, a place to run handler tasks),
and :class:`Link`, what a socket needs from the connection it came on (its
Engine.IO session, ack ids, being told the socket left). ``server.Connection``
feeds a socket's life in through :meth:`Namespace.admit`,
:meth:`Namespace.receive_event`, :meth:`Socket.receive_ack` and
:meth:`Namespace.remove`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import secrets
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, NamedTuple, Protocol, overload

from .adapter import Adapter, InMemoryAdapter
from .eio_packets import EncodedPacket, message_frame
from .engine import EngineSocket
from .settings import TransportSettings
from .sio_packets import SocketPacket, SocketPacketType, encode_packet

__all__ = [
    "RESERVED_EVENTS",
    "ConnectHandler",
    "ConnectRefused",
    "DisconnectHandler",
    "EncodedPacket",
    "EventCheck",
    "EventHandler",
    "Host",
    "Link",
    "Namespace",
    "Socket",
    "encode",
    "encode_event",
]

logger = logging.getLogger(__name__)

RESERVED_EVENTS = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
)

ConnectHandler = Callable[["Socket", dict[str, Any]], Awaitable[None] | None]
EventHandler = Callable[..., Any]
DisconnectHandler = Callable[["Socket", str], Awaitable[None] | None]
#: ``check(socket, event, args)``, run as each event arrives: ``None`` lets the event through;
#: anything else drops it and answers its ack.
EventCheck = Callable[["Socket", str, list[Any]], Any]


class Host(Protocol):
    """What a namespace needs from the server that runs it (``server.SocketServer`` is one)."""

    @property
    def settings(self) -> TransportSettings: ...

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run a handler's coroutine as a task the server keeps (and cancels on close)."""


class Link(Protocol):
    """What a socket needs from its connection (``server.Connection`` is one)."""

    @property
    def engine(self) -> EngineSocket: ...

    def next_ack_id(self) -> int:
        """A fresh id for a server-to-client event that waits for its ack."""

    def socket_left(self, namespace: str) -> None:
        """The connection's socket in ``namespace`` is no longer connected."""


class _Call(NamedTuple):
    handler: EventHandler
    event: str
    args: list[Any]
    ack_id: int | None


# What _invoke returns for a handler that raised: no ack is sent.
_FAILED: Any = object()
# _complete's default: the handler is still to be called.
_NOT_CALLED: Any = object()


class ConnectRefused(Exception):
    """Raised by a connect handler: the client gets CONNECT_ERROR ``{"message": message}``
    (plus ``data``, when given, as Node's ``err.data``)."""

    def __init__(self, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data

    def payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"message": self.message}
        if self.data is not None:
            payload["data"] = self.data
        return payload


def encode(packet: SocketPacket) -> EncodedPacket:
    return tuple(message_frame(part) for part in encode_packet(packet))


def encode_event(namespace: str, event: str, *args: Any) -> EncodedPacket:
    """``event`` with ``args`` in ``namespace``, encoded once for any number of recipients."""
    return encode(SocketPacket(SocketPacketType.EVENT, namespace, [event, *args]))


class Socket:
    """One client's membership of one namespace."""

    __slots__ = (
        "_acks",
        "_backlog",
        "_pending",
        "auth",
        "connected",
        "connection",
        "data",
        "namespace",
        "pid",
        "rooms",
        "sid",
    )

    def __init__(self, namespace: Namespace, connection: Link, auth: dict[str, Any]) -> None:
        self.namespace = namespace
        self.connection = connection
        self.sid = secrets.token_urlsafe(15)
        #: The CONNECT packet's payload (the client's ``auth``).
        self.auth = auth
        #: Free for the application's per-connection state.
        self.data: Any = None
        self.rooms: set[str] = set()
        #: Connection state recovery (socket.io 4.6+): a connect handler that sets this private
        #: session id gets it into the CONNECT reply, ``{"sid", "pid"}``.
        self.pid: str | None = None
        self.connected = False
        self._acks: dict[int, asyncio.Future[list[Any]]] = {}
        # Packets emitted by the connect handler, sent right after the CONNECT reply.
        self._pending: list[EncodedPacket] | None = []
        # Events waiting for this socket's running handler (None: no handler is running).
        self._backlog: deque[_Call] | None = None

    def __repr__(self) -> str:
        return f"<Socket {self.sid} {self.namespace.name}>"

    # -- sending -------------------------------------------------------------------------

    def send_encoded(self, packet: EncodedPacket) -> None:
        """Write an already encoded packet (a broadcast's) to this socket; never waits."""
        if self._pending is not None:
            self._pending.append(packet)
            return
        engine = self.connection.engine
        for frame in packet:
            engine.send(frame)

    def emit(self, event: str, *args: Any) -> None:
        self.send_encoded(encode_event(self.namespace.name, event, *args))

    async def call(self, event: str, *args: Any) -> list[Any]:
        """Emit ``event`` and wait for the client's acknowledgement; its arguments.
        Bound the wait with ``asyncio.timeout``; a disconnect cancels it."""
        ack_id = self.connection.next_ack_id()
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._acks[ack_id] = future
        packet = SocketPacket(SocketPacketType.EVENT, self.namespace.name, [event, *args], ack_id)
        self.send_encoded(encode(packet))
        try:
            return await future
        finally:
            self._acks.pop(ack_id, None)

    def _ack(self, ack_id: int, args: list[Any]) -> None:
        self.send_encoded(encode(SocketPacket(SocketPacketType.ACK, self.namespace.name, args, ack_id)))

    # -- rooms -------------------------------------------------------------------------------

    def join(self, room: str) -> None:
        self.namespace.adapter.join(self, room)

    def leave(self, room: str) -> None:
        self.namespace.adapter.leave(self, room)

    # -- leaving -----------------------------------------------------------------------------

    def disconnect(self) -> None:
        """Take this socket out of its namespace, telling the client (DISCONNECT)."""
        if self.connected:
            self.send_encoded(encode(SocketPacket(SocketPacketType.DISCONNECT, self.namespace.name)))
            self.namespace.remove(self, "server namespace disconnect")

    def receive_ack(self, ack_id: int | None, args: list[Any]) -> None:
        """The client's ACK for :meth:`call` ``ack_id`` (an unknown id is ignored)."""
        future = self._acks.get(ack_id) if ack_id is not None else None
        if future is not None and not future.done():
            future.set_result(args)


class Namespace:
    """A Socket.IO namespace: handlers, connected sockets, rooms."""

    def __init__(self, server: Host, name: str, adapter: Adapter | None = None) -> None:
        self.server = server
        self.name = name
        self.adapter = adapter or InMemoryAdapter()
        self.sockets: dict[str, Socket] = {}
        self._connect: ConnectHandler | None = None
        self._check: EventCheck | None = None
        self._disconnect: DisconnectHandler | None = None
        self._events: dict[str, EventHandler] = {}

    # -- registering handlers ----------------------------------------------------------

    def on_connect(self, handler: ConnectHandler) -> ConnectHandler:
        """``handler(socket, auth)``: raise :class:`ConnectRefused` to refuse. What it emits is
        sent after the CONNECT reply."""
        self._connect = handler
        return handler

    def on_disconnect(self, handler: DisconnectHandler) -> DisconnectHandler:
        """``handler(socket, reason)``; ``socket.rooms`` still names the rooms it was in."""
        self._disconnect = handler
        return handler

    def use(self, check: EventCheck) -> EventCheck:
        """Run ``check(socket, event, args)`` as each event arrives, before it waits for the
        socket's running handler (Node's ``socket.use``, but synchronous). It returns ``None``
        to let the event through, or drops it: then its return value answers the client's ack,
        as a handler's would (``()`` for no arguments). A rate limit belongs here: a flood is
        refused as it arrives instead of piling up behind a slow handler."""
        self._check = check
        return check

    @overload
    def on(self, event: str) -> Callable[[EventHandler], EventHandler]: ...

    @overload
    def on(self, event: str, handler: EventHandler) -> EventHandler: ...

    def on(
        self, event: str, handler: EventHandler | None = None
    ) -> EventHandler | Callable[[EventHandler], EventHandler]:
        """Register ``handler(socket, *args)`` for ``event`` (or use as a decorator)."""
        if event in RESERVED_EVENTS:
            raise ValueError(
                f"{event!r} is a reserved Socket.IO event name: use on_connect/on_disconnect for the "
                "connection's life, and another name for a client event"
            )

        def register(function: EventHandler) -> EventHandler:
            self._events[event] = function
            return function

        return register if handler is None else register(handler)

    # -- sending to many -----------------------------------------------------------------

    def encode(self, event: str, *args: Any) -> EncodedPacket:
        return encode_event(self.name, event, *args)

    def broadcast(self, packet: EncodedPacket, to: str | Iterable[str], skip: Socket | None = None) -> int:
        """Write one encoded packet to the members of ``to`` (a room or several); recipients."""
        rooms = [to] if isinstance(to, str) else list(to)
        return self.adapter.broadcast(packet, rooms, skip)

    def emit(self, event: str, *args: Any, to: str | Iterable[str] | None = None) -> int:
        """``event`` to a room (rooms), or to every socket of the namespace when ``to`` is None."""
        packet = self.encode(event, *args)
        if to is not None:
            return self.broadcast(packet, to)
        sockets = list(self.sockets.values())
        for socket in sockets:
            socket.send_encoded(packet)
        return len(sockets)

    # -- the life of a socket (called by the server's Connection) ------------------------

    async def admit(self, socket: Socket) -> bool:
        """Run the connect handler for a socket asking to connect; True when the socket is in
        (the CONNECT reply is sent), False when it was refused (CONNECT_ERROR is sent)."""
        try:
            if self._connect is not None:
                result = self._connect(socket, socket.auth)
                if inspect.isawaitable(result):
                    await result
        except ConnectRefused as refused:
            socket._pending = None
            self._send_connect_error(socket.connection, refused.payload())
            return False
        except Exception:
            logger.exception("connect handler of namespace %s failed", self.name)
            socket._pending = None
            self._send_connect_error(socket.connection, {"message": "Internal server error"})
            return False
        if socket.connection.engine.closed:
            # The connection went away while the connect handler ran: what the handler did (rooms,
            # the application's own state) is undone through the disconnect handler, as for any
            # socket that leaves.
            socket._pending = None
            socket.connected = True
            self.remove(socket, "transport close")
            return False
        self.sockets[socket.sid] = socket
        socket.connected = True
        pending, socket._pending = socket._pending or [], None
        reply = {"sid": socket.sid} if socket.pid is None else {"sid": socket.sid, "pid": socket.pid}
        socket.send_encoded(encode(SocketPacket(SocketPacketType.CONNECT, self.name, reply)))
        for packet in pending:
            socket.send_encoded(packet)
        return True

    def _send_connect_error(self, connection: Link, payload: dict[str, Any]) -> None:
        for frame in encode(SocketPacket(SocketPacketType.CONNECT_ERROR, self.name, payload)):
            connection.engine.send(frame)

    def receive_event(self, socket: Socket, data: list[Any], ack_id: int | None) -> None:
        """A client's EVENT ``data`` (``[name, *args]``): checked, then handled in turn."""
        event, args = data[0], data[1:]
        handler = self._events.get(event) if event not in RESERVED_EVENTS else None
        if handler is None:
            return
        if self._check is not None:
            try:
                answer = self._check(socket, event, args)
            except Exception:
                logger.exception("event check of namespace %s failed; %r dropped", self.name, event)
                return
            if answer is not None:
                if ack_id is not None:
                    socket._ack(ack_id, _ack_args(answer))
                return
        call = _Call(handler, event, args, ack_id)
        backlog = socket._backlog
        if backlog is None:
            self._start(socket, call)
        elif len(backlog) < self.server.settings.max_pending_events:
            backlog.append(call)  # in line behind the handler still running for this socket
        else:
            logger.warning(
                "socket %s sent more than %d events while its handlers were busy; closing it",
                socket.sid,
                self.server.settings.max_pending_events,
            )
            socket.connection.engine.abort("transport error")

    def _start(self, socket: Socket, call: _Call) -> None:
        if inspect.iscoroutinefunction(call.handler):
            # The coroutine is made inside its task: cancelled before it starts (shutdown), the
            # task leaves no coroutine behind that was never awaited.
            if self.server.settings.handlers_in_order:
                socket._backlog = deque()
                self.server.spawn(self._run_in_order(socket, call))
            else:
                self.server.spawn(self._complete(socket, call))
            return
        result = self._invoke(socket, call)
        if inspect.isawaitable(result):  # a plain function that returned an awaitable
            self.server.spawn(self._complete(socket, call, result))
        elif result is not _FAILED and call.ack_id is not None:
            socket._ack(call.ack_id, _ack_args(result))

    def _invoke(self, socket: Socket, call: _Call) -> Any:
        try:
            return call.handler(socket, *call.args)
        except Exception:
            logger.exception("handler of %r in namespace %s failed", call.event, self.name)
            return _FAILED

    async def _complete(self, socket: Socket, call: _Call, result: Any = _NOT_CALLED) -> None:
        """Run (or finish) one handler, then answer the client's ack if it asked for one."""
        if result is _NOT_CALLED:
            result = self._invoke(socket, call)
        if result is _FAILED:
            return
        if inspect.isawaitable(result):
            try:
                result = await result
            except Exception:
                logger.exception("handler of %r in namespace %s failed", call.event, self.name)
                return
        if call.ack_id is not None and socket.connected:
            socket._ack(call.ack_id, _ack_args(result))

    async def _run_in_order(self, socket: Socket, call: _Call) -> None:
        """One task per busy socket: this handler, then every event that queued behind it."""
        try:
            await self._complete(socket, call)
            backlog = socket._backlog
            while backlog and socket.connected:
                await self._complete(socket, backlog.popleft())
        finally:
            socket._backlog = None

    async def _run_disconnect(self, handler: DisconnectHandler, socket: Socket, reason: str) -> None:
        try:
            result = handler(socket, reason)
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception("disconnect handler of namespace %s failed", self.name)

    def remove(self, socket: Socket, reason: str) -> None:
        """Take a connected socket out: the disconnect handler runs, it leaves its rooms, its
        pending acks are cancelled (a socket already out is left alone)."""
        if not socket.connected:
            return
        socket.connected = False
        try:
            handler = self._disconnect
            if inspect.iscoroutinefunction(handler):
                self.server.spawn(self._run_disconnect(handler, socket, reason))
            elif handler is not None:
                result = handler(socket, reason)
                if inspect.isawaitable(result):
                    self.server.spawn(self._run_disconnect(lambda *_: result, socket, reason))
        except Exception:
            logger.exception("disconnect handler of namespace %s failed", self.name)
        finally:
            rooms = set(socket.rooms)
            self.adapter.leave_all(socket)
            socket.rooms = rooms
            self.sockets.pop(socket.sid, None)
            socket.connection.socket_left(self.name)
            for future in socket._acks.values():
                future.cancel()


def _ack_args(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, tuple):
        return list(value)
    return [value]
