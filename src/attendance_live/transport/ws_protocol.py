"""Websockets below ASGI: a protocol class for uvicorn's public ``Config(ws=...)`` hook.

``websocket_protocol(engine)`` returns an ``asyncio.Protocol`` class that uvicorn
instantiates for every websocket upgrade request (keyword arguments ``config``,
``server_state``, ``app_state``; then ``connection_made`` and ``data_received``
with the request head). websockets' sans-I/O :class:`~websockets.server.ServerProtocol`
parses the handshake and the frames; the Engine.IO session
(:class:`~.engine.EngineSocket`) is driven directly, without an ASGI message
or a task per connection.

Writing (:class:`~.engine.WebSocketChannel`): ``wake`` writes every queued
frame at once with ``transport.write``. While asyncio has paused writing (the
kernel and the transport's buffer are full: the client is not reading), frames
stay in the session's outbox, whose limit closes a stalled client, here with
``transport.abort()``. Server frames are not masked, so with permessage-deflate
off a frame written to many sockets is serialised once: consecutive writes of
the same frame object (a broadcast) reuse its websocket bytes.

The opening handshake: uvicorn has already parsed and validated the request
head with its HTTP parser, so a plain upgrade (GET, HTTP/1.1, ``Upgrade:
websocket``, ``Connection: upgrade``, a valid ``Sec-WebSocket-Key``, version 13,
no subprotocol offered, the engine's path and query, an accepted origin, and
permessage-deflate off) is answered here: the head split once and the 101
response written from constant bytes and the accept key. That halves the
Python work of a connection's handshakes in a reconnect storm (websockets'
request parser and ``Headers`` cost about 100 µs a connection). Anything else
goes through websockets' :class:`~websockets.server.ServerProtocol`, which
negotiates extensions and builds every refusal, exactly as before. Either way
the frames are then parsed by websockets' sans-I/O
:class:`~websockets.protocol.Protocol`.

Only upgrades on ``settings.path`` are served; any other path gets 404 (the
application has no other websocket route). Long-polling stays on ASGI
(:mod:`.asgi`).
"""

from __future__ import annotations

import asyncio
import binascii
import logging
import struct
from base64 import b64decode
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode
from websockets.http11 import Request
from websockets.protocol import Protocol, Side, State
from websockets.server import ServerProtocol
from websockets.utils import accept_key

from .eio_packets import Frame, PacketError, PacketType, decode_frame
from .engine import POLLING, WEBSOCKET, EngineServer, EngineSocket
from .outbox import Outbox
from .timers import Deadline

__all__ = ["EngineWebSocketProtocol", "plain_upgrade", "server_frame", "websocket_protocol"]

logger = logging.getLogger(__name__)

# How long a closing websocket may wait for the client's close frame before the TCP close.
_CLOSE_TIMEOUT = 2.0
# websockets' own loggers, looked up once rather than per connection.
_FRAMES_LOGGER = logging.getLogger("websockets.server")
_HEAD_END = b"\r\n\r\n"
# uvicorn hands over the request head it parsed; a head this long is not a plain upgrade.
_MAX_HEAD = 16384
_SWITCHING = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"


def plain_upgrade(head: bytes) -> tuple[str, dict[str, str], str] | None:
    """The target, headers (lower-cased names) and ``Sec-WebSocket-Accept`` of a plain
    websocket upgrade request head; None when anything about it is unusual (a repeated header,
    a subprotocol, a bad key...), which websockets' ServerProtocol then handles in full."""
    try:
        lines = head.decode("ascii").split("\r\n")
    except UnicodeDecodeError:
        return None
    request_line = lines[0].split(" ")
    if len(request_line) != 3 or request_line[0] != "GET" or request_line[2] != "HTTP/1.1":
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        key = name.lower()
        if not colon or key in headers:
            return None
        headers[key] = value.strip(" \t")
    if (
        headers.get("upgrade", "").lower() != "websocket"
        or "upgrade" not in (option.strip().lower() for option in headers.get("connection", "").split(","))
        or headers.get("sec-websocket-version") != "13"
        or "sec-websocket-protocol" in headers
    ):
        return None
    key = headers.get("sec-websocket-key", "")
    try:
        if len(b64decode(key.encode(), validate=True)) != 16:
            return None
    except binascii.Error:
        return None
    return request_line[1], headers, accept_key(key)


def server_frame(frame: Frame) -> bytes:
    """One Engine.IO frame as an unmasked, final websocket frame (text, or binary for bytes).

    Written here rather than by websockets' ``Frame.serialize``, which checks, masks and
    runs extensions for any frame and cost about 8 µs of a storm connection's three
    serialisations (the OPEN packet, the CONNECT reply, the snapshot: each different, so the
    broadcast's one-entry cache below does not help); a server frame without extensions is
    just this header (RFC 6455, section 5.2). permessage-deflate frames still go through
    websockets."""
    if isinstance(frame, bytes):
        first, payload = 0x82, frame
    else:
        first, payload = 0x81, frame.encode()
    length = len(payload)
    if length < 126:
        return bytes((first, length)) + payload
    if length < 65536:
        return _HEADER_16.pack(first, 126, length) + payload
    return _HEADER_64.pack(first, 127, length) + payload


_HEADER_16 = struct.Struct("!BBH")
_HEADER_64 = struct.Struct("!BBQ")


class _SerializedFrame:
    """The websocket bytes of the frame written last: a broadcast writes one frame to many
    sockets in a row, so one entry serves it."""

    frame: Frame | None = None
    data: bytes = b""

    @classmethod
    def of(cls, frame: Frame) -> bytes:
        if frame is not cls.frame:
            cls.data = server_frame(frame)
            cls.frame = frame
        return cls.data


def websocket_protocol(*engines: EngineServer) -> type[asyncio.Protocol]:
    """The protocol class to pass as ``uvicorn.Config(ws=...)``, serving each engine's path."""
    if not engines:
        raise ValueError("websocket_protocol needs at least one EngineServer")
    if len({engine.settings.per_message_deflate for engine in engines}) > 1:
        raise ValueError("engines on one server must agree on per_message_deflate")

    class BoundProtocol(EngineWebSocketProtocol):
        pass

    BoundProtocol.engines = {}
    for engine in engines:
        path = engine.settings.path
        BoundProtocol.engines[path] = BoundProtocol.engines[path.rstrip("/")] = engine
    return BoundProtocol


class EngineWebSocketProtocol(asyncio.Protocol):
    """One websocket connection carrying one Engine.IO session (or probing an upgrade)."""

    #: Engine.IO servers by path (both with and without the trailing slash).
    engines: dict[str, EngineServer]

    def __init__(self, config: Any, server_state: Any, app_state: Any, _loop: Any = None) -> None:
        any_settings = next(iter(self.engines.values())).settings
        # uvicorn waits for these at shutdown, calling shutdown() on each.
        self._connections: set[Any] = server_state.connections
        self._deflate = any_settings.per_message_deflate
        # Each engine's own limit is checked per message; the parser stops at the largest.
        self._max_size = self._max_payload = max(
            engine.settings.max_payload for engine in self.engines.values()
        )
        # The websocket's sans-I/O protocol, once the request head has arrived.
        self._conn: Protocol | None = None
        self._head = b""
        # Replaced by the engine's own outbox once the path is known.
        self.outbox = Outbox(any_settings.outgoing_buffer_bytes)
        self._transport: asyncio.Transport | None = None
        self._session: EngineSocket | None = None
        self._probing: EngineSocket | None = None
        # A probe must finish the upgrade within pingTimeout (Node's upgradeTimeout, bounded alike).
        self._probe_deadline: Deadline | None = None
        self._paused = False
        self._closing = False
        self._close_after_flush = False
        self._remote: str | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's TCPTransport has the interface without subclassing
        # asyncio.Transport, so no isinstance check).
        self._transport = cast(asyncio.Transport, transport)
        self._connections.add(self)
        peer = transport.get_extra_info("peername")
        self._remote = str(peer[0]) if peer else None

    def data_received(self, data: bytes) -> None:
        conn = self._conn
        if conn is None:
            conn = self._open(data)
            if conn is None:
                return
        else:
            conn.receive_data(data)
        for event in conn.events_received():
            if isinstance(event, Request):
                self._handshake(event)
            elif isinstance(event, WsFrame):
                if event.opcode is Opcode.TEXT:
                    try:
                        text = bytes(event.data).decode()
                    except UnicodeDecodeError:
                        conn.fail(1007, "invalid UTF-8 in a text frame")
                        break
                    self._message(text)
                elif event.opcode is Opcode.BINARY:
                    self._message(bytes(event.data))
        # Pongs, close replies, and 1009 for an oversized message, queued by the protocol.
        self._write_protocol_output()
        if conn.state is State.CLOSED or conn.close_expected():
            self._end()

    def eof_received(self) -> bool | None:
        if self._conn is not None:
            self._conn.receive_eof()
        self._end()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._connections.discard(self)
        self._closing = True
        self._stop_probe_deadline()
        if self._probing is not None:
            self._probing.abandon_upgrade(self)
        if self._session is not None:
            self._session.websocket_closed(self)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self.wake()

    def shutdown(self) -> None:
        """uvicorn is stopping: close with 1012 (service restart)."""
        if self._session is not None:
            self._session.abort("forced server close")
        if self._paused and self._transport is not None:
            self._closing = True
            self._transport.abort()  # it would never drain
        elif not self._closing:
            self._send_close(1012)

    # -- WebSocketChannel --------------------------------------------------------------------

    def write_now(self, frame: Frame) -> bool:
        transport = self._transport
        if transport is None or self._paused or self._closing or self._deflate or self._close_after_flush:
            return False
        transport.write(_SerializedFrame.of(frame))
        return True

    def wake(self) -> None:
        transport = self._transport
        outbox = self.outbox
        if transport is None or self._paused or self._closing or not outbox:
            if self._close_after_flush and not outbox:
                self._send_close(1000)
            return
        frames = outbox.take_all()
        if self._deflate and self._conn is not None:
            for frame in frames:
                if isinstance(frame, bytes):
                    self._conn.send_binary(frame)
                else:
                    self._conn.send_text(frame.encode())
            self._write_protocol_output()
        elif len(frames) == 1:
            transport.write(_SerializedFrame.of(frames[0]))
        else:
            transport.write(b"".join(_SerializedFrame.of(frame) for frame in frames))
        if self._close_after_flush:
            self._send_close(1000)

    def close(self, flush: bool) -> None:
        if self._closing:
            return
        if flush:
            self._close_after_flush = True
            self.wake()
        elif self._paused and self._transport is not None:
            # A client that stopped reading: nothing more will go through; drop the connection.
            self._closing = True
            self._transport.abort()
        else:
            self.outbox.clear()
            self._send_close(1000)

    # -- internals ---------------------------------------------------------------------------

    def _open(self, data: bytes) -> Protocol | None:
        """The request head: answered here when it is a plain upgrade (see the module's
        docstring), else by websockets' ServerProtocol. None while the head is incomplete."""
        head = self._head + data
        end = head.find(_HEAD_END)
        if end < 0 and len(head) <= _MAX_HEAD:
            self._head = head
            return None
        self._head = b""
        upgrade = None if self._deflate or end < 0 else plain_upgrade(head[:end])
        if upgrade is not None:
            target, headers, accept = upgrade
            parts = urlsplit(target)
            engine = self.engines.get(parts.path)
            query = _route(engine, parts.query, headers.get("origin"))
            if engine is not None and query is not None:
                conn = self._conn = Protocol(
                    Side.SERVER, state=State.OPEN, max_size=self._max_size, logger=_FRAMES_LOGGER
                )
                response = _SWITCHING + b"Sec-WebSocket-Accept: " + accept.encode() + _HEAD_END
                forwarded = headers.get("x-forwarded-for")
                forwarded_for = (forwarded,) if forwarded is not None else ()
                if "sid" in query or self._transport is None:
                    self._write(response)
                    self._start(engine, query, forwarded_for)
                else:
                    # A new session: its OPEN packet goes out with the 101, in one write (held in
                    # the outbox meanwhile, as while asyncio has paused writing).
                    self._paused = True
                    self._start(engine, query, forwarded_for)
                    self._paused = False
                    frames = self.outbox.take_all()
                    self._write(response + b"".join(_SerializedFrame.of(frame) for frame in frames))
                rest = head[end + 4 :]
                if rest:
                    conn.receive_data(rest)
                return conn
        # Anything unusual: websockets' handshake, with its checks, negotiation and refusals.
        extensions = [ServerPerMessageDeflateFactory()] if self._deflate else []
        server_conn = ServerProtocol(extensions=extensions, max_size=self._max_size)
        self._conn = server_conn
        server_conn.receive_data(head)
        return server_conn

    def _handshake(self, request: Request) -> None:
        conn = self._conn
        assert isinstance(conn, ServerProtocol)  # the head went to websockets' handshake
        parts = urlsplit(request.path)
        engine = self.engines.get(parts.path)
        if engine is None:
            self._refuse(conn, 404, "Not Found")
            return
        if engine.settings.refuses_origin(request.headers.get("Origin")):
            self._refuse(conn, 403, "Not an accepted origin")
            return
        query = _route(engine, parts.query, None)
        if query is None:
            self._refuse(conn, 400, "Bad request: use EIO=4 and transport=websocket")
            return
        response = conn.accept(request)
        conn.send_response(response)
        self._write_protocol_output()
        if response.status_code != 101:
            self._end()
            return
        self._start(engine, query, tuple(request.headers.get_all("X-Forwarded-For")))

    def _start(self, engine: EngineServer, query: dict[str, str], forwarded_for: tuple[str, ...]) -> None:
        """The websocket is open on ``engine``'s path: a new session, or a probe of an upgrade.
        ``forwarded_for``: the upgrade request's ``X-Forwarded-For`` values, for a new session."""
        self._max_payload = engine.settings.max_payload
        self.outbox = Outbox(engine.settings.outgoing_buffer_bytes)
        sid = query.get("sid")
        if sid is None:
            self._session = engine.handshake(WEBSOCKET, self._remote, self, forwarded_for)
            return
        session = engine.sessions.get(sid)
        if session is None or session.transport != POLLING or session.upgrading:
            # Accepted, then closed, as Node does for a websocket that cannot take the session.
            self._send_close(1008)
            return
        self._probing = session
        self._probe_deadline = engine.pong_lane.add(self._probe_timed_out)

    def _probe_timed_out(self) -> None:
        self._probe_deadline = None
        if self._probing is not None:
            logger.info(
                "engine.io session %s: the websocket upgrade did not finish in time", self._probing.label
            )
            self._probing.abandon_upgrade(self)
            self._probing = None
            self._send_close(1008)

    def _stop_probe_deadline(self) -> None:
        if self._probe_deadline is not None:
            self._probe_deadline.cancel()
            self._probe_deadline = None

    def _refuse(self, conn: ServerProtocol, status: int, text: str) -> None:
        conn.send_response(conn.reject(status, text))
        self._write_protocol_output()
        self._end()

    def _message(self, data: str | bytes) -> None:
        if len(data) > self._max_payload:
            logger.info("websocket message over %d bytes; closing the connection", self._max_payload)
            if self._session is not None:
                self._session.abort("transport error")
            self._send_close(1009)
            return
        if self._session is not None:
            self._session.receive_frame(data)
        elif self._probing is not None:
            self._probe(self._probing, data)

    def _probe(self, session: EngineSocket, data: str | bytes) -> None:
        """The upgrade handshake: ``2probe`` → ``3probe``, then ``5``."""
        try:
            packet = decode_frame(data)
        except PacketError:
            packet = None
        if packet is not None and packet.type is PacketType.PING and packet.data == "probe":
            if session.begin_upgrade(self):
                self.outbox.push("3probe")
                self.wake()
                return
        elif packet is not None and packet.type is PacketType.UPGRADE:
            if session.complete_upgrade(self):
                self._stop_probe_deadline()
                self._probing, self._session = None, session
                return
        elif packet is not None and packet.type is PacketType.NOOP:
            return
        self._stop_probe_deadline()
        session.abandon_upgrade(self)
        self._probing = None
        self._send_close(1008)

    def _send_close(self, code: int) -> None:
        if self._closing or self._transport is None:
            return
        self._closing = True
        if self._conn is not None and self._conn.state is State.OPEN:
            self._conn.send_close(code)
            self._write_protocol_output()
        # The client answers with its close frame, and we close; if it does not, drop the connection.
        asyncio.get_running_loop().call_later(_CLOSE_TIMEOUT, self._transport.abort)

    def _write_protocol_output(self) -> None:
        output = self._conn.data_to_send() if self._conn is not None else None
        if output and self._transport is not None:
            self._transport.write(b"".join(output))

    def _write(self, data: bytes) -> None:
        if self._transport is not None:
            self._transport.write(data)

    def _end(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()


def _route(engine: EngineServer | None, query_string: str, origin: str | None) -> dict[str, str] | None:
    """The Engine.IO query of an upgrade on ``engine``'s path; None when it cannot be served
    there (no engine on that path, a refused ``origin``, not ``EIO=4&transport=websocket``)."""
    if engine is None or engine.settings.refuses_origin(origin):
        return None
    query = {key: values[0] for key, values in parse_qs(query_string).items()}
    if query.get("EIO") != "4" or query.get("transport") != WEBSOCKET:
        return None
    return query
