"""The Engine.IO v4 server: sessions, heartbeat, long-polling, the upgrade.

An :class:`EngineSocket` is one Engine.IO session. It owns one
:class:`~.outbox.Outbox`; whatever transport currently carries the session
drains it: a pending long-polling GET takes everything at once, a websocket
channel (:class:`WebSocketChannel`: :mod:`.ws_protocol` below ASGI, or
:mod:`.websocket` over ASGI) writes what is queued. Writing to a session (:meth:`EngineSocket.send`) never
waits: it appends and wakes the transport, so one encoded frame can be written
to any number of sessions in a plain loop.

Close reasons are Node's: ``transport close`` (the client closed),
``transport error``, ``parse error``, ``ping timeout``, ``forced close``
(:meth:`EngineSocket.close`), ``forced server close`` (shutdown), plus ours,
``buffer overflow`` (the outgoing buffer passed its limit).

The HTTP and websocket plumbing is in :mod:`.asgi`, :mod:`.ws_protocol` and
:mod:`.websocket`; this module knows nothing about ASGI or sockets.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from typing import Any, Protocol

import orjson

from .eio_packets import (
    CLOSE_FRAME,
    NOOP_FRAME,
    PING_FRAME,
    Frame,
    Packet,
    PacketError,
    PacketType,
    decode_frame,
    decode_payload,
    encode_payload,
)
from .outbox import Outbox
from .settings import TransportSettings
from .timers import Deadline, Lane, TimerWheel

__all__ = [
    "POLLING",
    "WEBSOCKET",
    "EngineHandler",
    "EngineServer",
    "EngineSocket",
    "RequestRefused",
    "WebSocketChannel",
]

logger = logging.getLogger(__name__)


class RequestRefused(Exception):
    """An Engine.IO request the server answers with an error, as Node's engine.io does:
    HTTP ``status`` and the body ``{"code": code, "message": message}``."""

    UNKNOWN_TRANSPORT = 0
    UNKNOWN_SID = 1
    BAD_HANDSHAKE_METHOD = 2
    BAD_REQUEST = 3
    FORBIDDEN = 4
    UNSUPPORTED_PROTOCOL_VERSION = 5

    def __init__(self, code: int, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def body(self) -> bytes:
        return orjson.dumps({"code": self.code, "message": self.message})


class EngineHandler(Protocol):
    """What sits on top of Engine.IO (the Socket.IO layer, or the fixture's echo server)."""

    def on_open(self, socket: EngineSocket) -> None: ...

    def on_message(self, socket: EngineSocket, data: str | bytes) -> None: ...

    def on_close(self, socket: EngineSocket, reason: str) -> None: ...


class WebSocketChannel(Protocol):
    """The writing side of one websocket, whatever drives it (ASGI now, a protocol class later).

    ``outbox`` is the buffer it drains; ``wake`` says frames wait in it; ``close``
    ends the websocket, after writing what waits when ``flush`` is true.
    """

    outbox: Outbox

    def wake(self) -> None: ...

    def write_now(self, frame: Frame) -> bool:
        """Write ``frame`` at once, its outbox being empty; False when it cannot be written
        now (writing is paused, the websocket is closing, or frames need per-connection work),
        and the frame goes through the outbox instead."""
        ...

    def close(self, flush: bool) -> None: ...


POLLING = "polling"
WEBSOCKET = "websocket"

_CLIENT_CLOSE = "transport close"
_SHUTDOWN = "forced server close"


class EngineSocket:
    """One Engine.IO session, on long-polling or on a websocket."""

    __slots__ = (
        "_awaiting_pong",
        "_channel",
        "_direct",
        "_final_frame",
        "_heartbeat",
        "_poll_waiter",
        "_posting",
        "closed",
        "data",
        "forwarded_for",
        "outbox",
        "remote",
        "server",
        "sid",
        "transport",
        "upgrading",
    )

    @property
    def label(self) -> str:
        """The session as log lines name it: a prefix of its id, since the whole id is what a
        long-polling client presents to use the session."""
        return self.sid[:6]

    def __init__(
        self,
        server: EngineServer,
        sid: str,
        transport: str,
        remote: str | None,
        forwarded_for: tuple[str, ...] = (),
    ) -> None:
        self.server = server
        self.sid = sid
        self.transport = transport
        #: The handshake's TCP peer, and its ``X-Forwarded-For`` header values in order (the layer
        #: above decides whether to believe them: only behind a proxy it trusts).
        self.remote = remote
        self.forwarded_for = forwarded_for
        self.outbox = Outbox(server.settings.outgoing_buffer_bytes)
        self.upgrading = False
        self.closed = False
        #: Free for the layer above (the Socket.IO layer keeps its connection state here).
        self.data: Any = None
        self._channel: WebSocketChannel | None = None
        # The websocket's write_now while it carries the session: a frame sent while nothing
        # waits in the outbox skips it (the broadcast path: one call per recipient).
        self._direct: Callable[[Frame], bool] | None = None
        self._poll_waiter: asyncio.Future[None] | None = None
        self._posting = False
        self._final_frame: Frame = CLOSE_FRAME
        self._heartbeat: Deadline | None = None
        self._awaiting_pong = False

    # -- writing: never waits ------------------------------------------------------------

    def send(self, frame: Frame) -> None:
        """Queue one frame for this session. A full outgoing buffer closes the session."""
        if self.closed:
            return
        outbox = self.outbox
        # A frame over the buffer's limit still goes through push, which closes the session.
        if not outbox and self._direct is not None and len(frame) <= outbox.limit and self._direct(frame):
            return
        if not outbox.push(frame):
            self.server.count_overflow(self)
            self._close("buffer overflow", flush=False)
            return
        self._wake()

    def _wake(self) -> None:
        if self._channel is not None and self.transport == WEBSOCKET:
            self._channel.wake()
        elif self._poll_waiter is not None and not self._poll_waiter.done():
            self._poll_waiter.set_result(None)

    def close(self) -> None:
        """Close the session from the server side, after writing what is queued."""
        self._close("forced close", flush=True)

    def abort(self, reason: str) -> None:
        """Close the session at once, dropping what is queued (bad input, a transport failure)."""
        self._close(reason, flush=False)

    # -- reading ---------------------------------------------------------------------------

    def receive(self, packet: Packet) -> None:
        """One packet from the client, on whichever transport."""
        kind = packet.type
        if kind is PacketType.MESSAGE:
            self.server.handler.on_message(self, packet.data)
        elif kind is PacketType.PONG:
            self._pong()
        elif kind is PacketType.CLOSE:
            self._close(_CLIENT_CLOSE, flush=False)
        # OPEN, PING, UPGRADE and NOOP mean nothing on an established transport: ignored, as Node does.

    def receive_frame(self, message: str | bytes) -> None:
        """One websocket message; a malformed one closes the session."""
        try:
            packet = decode_frame(message)
        except PacketError as exc:
            logger.info("engine.io session %s: %s; closing it", self.label, exc)
            self._close("parse error", flush=False)
            return
        self.receive(packet)

    # -- heartbeat: deadlines on the server's one timer ------------------------------------

    def _start_heartbeat(self) -> None:
        self._heartbeat = self.server.ping_lane.add(self._ping)

    def _ping(self) -> None:
        self._awaiting_pong = True
        # The pong is due pingTimeout after the ping was due, however late a busy loop ran it.
        due = self._heartbeat.due if self._heartbeat is not None else None
        self._heartbeat = self.server.pong_lane.add(self._ping_timeout, since=due)
        self.send(PING_FRAME)

    def _ping_timeout(self) -> None:
        self._heartbeat = None
        self._close("ping timeout", flush=False)

    def _pong(self) -> None:
        # Only a pong that answers an outstanding ping moves the schedule (as Node: the next ping
        # is pingInterval after the pong).
        if self._awaiting_pong and self._heartbeat is not None:
            self._awaiting_pong = False
            self._heartbeat.cancel()
            self._start_heartbeat()

    # -- long-polling --------------------------------------------------------------------

    async def poll(self) -> str:
        """A GET on this session: what is queued, or wait until something is."""
        if self.transport != POLLING:
            raise RequestRefused(RequestRefused.BAD_REQUEST, "Bad request")
        if self._poll_waiter is not None:
            # Two GETs at once: the client is confused; Node closes the session.
            self._close("transport error", flush=False)
            raise RequestRefused(RequestRefused.BAD_REQUEST, "Bad request: overlapping GET requests")
        if not self.outbox and not self.upgrading and not self.closed:
            waiter = self._poll_waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._poll_waiter = None
        if self.transport != POLLING:
            # Upgraded while this GET waited: what is queued now belongs to the websocket.
            return str(NOOP_FRAME)
        frames = self.outbox.take_all()
        if self.closed:
            # What a flushing close left, then CLOSE (or NOOP when the client asked to close).
            frames.append(self._final_frame)
        elif not frames:
            # Upgrading: end the poll with a noop, so that the client can complete the upgrade.
            frames.append(NOOP_FRAME)
        return encode_payload(frames)

    def begin_post(self) -> None:
        if self.transport != POLLING:
            raise RequestRefused(RequestRefused.BAD_REQUEST, "Bad request")
        if self._posting:
            self._close("transport error", flush=False)
            raise RequestRefused(RequestRefused.BAD_REQUEST, "Bad request: overlapping POST requests")
        self._posting = True

    def end_post(self, body: str | None) -> None:
        """The body of a POST (``None``: it was refused as too large or not UTF-8)."""
        self._posting = False
        if body is None:
            self._close("transport error", flush=False)
            return
        try:
            packets = decode_payload(body)
        except PacketError as exc:
            logger.info("engine.io session %s: %s; closing it", self.label, exc)
            self._close("parse error", flush=False)
            raise RequestRefused(RequestRefused.BAD_REQUEST, f"Bad request: {exc}") from None
        for packet in packets:
            if self.closed:
                break
            self.receive(packet)

    # -- websocket ---------------------------------------------------------------------------

    def attach_websocket(self, channel: WebSocketChannel) -> None:
        """A websocket session's channel (no upgrade: the session starts on it)."""
        self._channel = channel
        channel.outbox = self.outbox
        self._direct = channel.write_now

    def begin_upgrade(self, channel: WebSocketChannel) -> bool:
        """A probe websocket for this polling session; False when it may not upgrade."""
        if (
            self.closed
            or self.transport != POLLING
            or self.upgrading
            or not self.server.settings.allow_upgrades
        ):
            return False
        self.upgrading = True
        self._channel = channel
        # Release the pending GET: the client waits for it to end before it completes the upgrade.
        self._wake()
        return True

    def complete_upgrade(self, channel: WebSocketChannel) -> bool:
        """The client sent UPGRADE on the probe websocket: it carries the session from now on.
        False when this websocket is not (or no longer) the session's probe."""
        if self.closed or not self.upgrading or self._channel is not channel:
            return False
        self.upgrading = False
        self.transport = WEBSOCKET
        # Frames queued for polling go first, on the websocket, in order.
        while self.outbox:
            channel.outbox.push(self.outbox.popleft())
        self.outbox = channel.outbox
        self._direct = channel.write_now
        if self._poll_waiter is not None and not self._poll_waiter.done():
            self._poll_waiter.set_result(None)
        if self.outbox:
            channel.wake()
        return True

    def abandon_upgrade(self, channel: WebSocketChannel) -> None:
        """The probe websocket went away before UPGRADE: stay on polling."""
        if self._channel is channel and self.upgrading:
            self.upgrading = False
            self._channel = None

    def websocket_closed(self, channel: WebSocketChannel) -> None:
        """The websocket carrying this session ended (the peer went away or closed it)."""
        if self._channel is channel and self.transport == WEBSOCKET:
            self._close(_CLIENT_CLOSE, flush=False)

    # -- closing -------------------------------------------------------------------------

    def _close(self, reason: str, *, flush: bool) -> None:
        if self.closed:
            return
        self.closed = True
        self._direct = None
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None
        self.server.forget(self)
        # A pending GET ends with CLOSE (the server closes this session) or NOOP (the client asked,
        # or the server is shutting down: its next request fails and it reconnects, whereas
        # python-engineio's client takes a CLOSE packet as final and would stay away).
        self._final_frame = NOOP_FRAME if reason in (_CLIENT_CLOSE, _SHUTDOWN) else CLOSE_FRAME
        if not flush:
            self.outbox.clear()
        if self._poll_waiter is not None and not self._poll_waiter.done():
            self._poll_waiter.set_result(None)
        if self._channel is not None:
            self._channel.close(flush)
        try:
            self.server.handler.on_close(self, reason)
        except Exception:
            logger.exception("engine.io close handler failed for session %s", self.label)


class EngineServer:
    """The sessions, the handshake, and the timer they share."""

    def __init__(
        self,
        handler: EngineHandler,
        settings: TransportSettings | None = None,
        *,
        on_overflow: Callable[[EngineSocket], None] | None = None,
    ) -> None:
        self.handler = handler
        self.settings = settings or TransportSettings()
        self.sessions: dict[str, EngineSocket] = {}
        #: Sessions closed because their outgoing buffer overflowed, since start.
        self.overflow_count = 0
        self._on_overflow = on_overflow
        self._timers: TimerWheel | None = None
        self._ping_lane: Lane | None = None
        self._pong_lane: Lane | None = None

    # The timer needs the running loop, so it is made on first use.
    @property
    def timers(self) -> TimerWheel:
        if self._timers is None:
            self._timers = TimerWheel(asyncio.get_running_loop())
        return self._timers

    @property
    def timer_entries(self) -> int:
        """Deadlines waiting in the timer wheel (heartbeats, handshakes), cancelled ones not yet
        dropped included, for the metrics."""
        return self._timers.entries if self._timers is not None else 0

    @property
    def live_timer_entries(self) -> int:
        """Deadlines in the timer wheel that are not cancelled, for the metrics."""
        return self._timers.live_entries if self._timers is not None else 0

    @property
    def ping_lane(self) -> Lane:
        if self._ping_lane is None:
            self._ping_lane = self.timers.lane(self.settings.ping_interval_ms / 1000)
        return self._ping_lane

    @property
    def pong_lane(self) -> Lane:
        if self._pong_lane is None:
            self._pong_lane = self.timers.lane(self.settings.ping_timeout_ms / 1000)
        return self._pong_lane

    def handshake(
        self,
        transport: str,
        remote: str | None,
        channel: WebSocketChannel | None = None,
        forwarded_for: tuple[str, ...] = (),
    ) -> EngineSocket:
        """A new session: queue its OPEN packet, start its heartbeat, tell the handler."""
        settings = self.settings
        sid = secrets.token_urlsafe(15)
        socket = EngineSocket(self, sid, transport, remote, forwarded_for)
        if channel is not None:
            socket.attach_websocket(channel)
        self.sessions[sid] = socket
        upgrades = [WEBSOCKET] if transport == POLLING and settings.allow_upgrades else []
        opening = {
            "sid": sid,
            "upgrades": upgrades,
            "pingInterval": settings.ping_interval_ms,
            "pingTimeout": settings.ping_timeout_ms,
            "maxPayload": settings.max_payload,
        }
        socket.send("0" + orjson.dumps(opening).decode())
        socket._start_heartbeat()
        self.handler.on_open(socket)
        return socket

    def lookup(self, sid: str) -> EngineSocket:
        socket = self.sessions.get(sid)
        if socket is None:
            raise RequestRefused(RequestRefused.UNKNOWN_SID, "Session ID unknown")
        return socket

    def forget(self, socket: EngineSocket) -> None:
        if self.sessions.get(socket.sid) is socket:
            del self.sessions[socket.sid]

    def count_overflow(self, socket: EngineSocket) -> None:
        self.overflow_count += 1
        logger.warning(
            "engine.io session %s: outgoing buffer passed %d bytes (client not reading); closing it",
            socket.label,
            self.settings.outgoing_buffer_bytes,
        )
        if self._on_overflow is not None:
            self._on_overflow(socket)

    def close(self) -> None:
        """Shut down: close every session (after writing what is queued) and stop the timer."""
        for socket in list(self.sessions.values()):
            socket._close(_SHUTDOWN, flush=True)
        if self._timers is not None:
            self._timers.close()
