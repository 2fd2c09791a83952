"""The Socket.IO server: the seed's protocol, authenticated and authorized from data.

Handshake: ``auth: {token}``; a refused connection gets ``connect_error`` with
``Authentication required``, ``Invalid token`` or ``Token expired``.

Client events (each payload validated; bad input answers ``activeSessionsError``
and leaves the connection usable):

* ``subscribeToCourse {course_id}``  → join ``course:<id>``, answer ``activeSessionsData``
* ``unsubscribeFromCourse {course_id}`` → leave the room
* ``checkActiveSessions {course_id}`` → answer ``activeSessionsResponse``
* ``subscribeToSession {session_id}``  → (teacher, admin) ``sessionRosterData``, then
  ``attendanceUpdated`` on every record change; for a ``code`` session also
  ``checkInCode`` at once and at every rotation (``realtime.codes``)
* ``unsubscribeFromSession {session_id}``
* ``refreshToken {token}`` → a valid token for the same user moves the
  connection's deadline; answered ``tokenRefreshed {expires_at}``

Authentication ends at the token's ``exp`` (:mod:`realtime.expiry`): the
socket leaves every room at that moment, gets ``tokenExpired {expired_at}``
and is disconnected by the server. Client events named like the library's
own (``connect``, ``disconnect``, ...) are unknown events, never handlers.
An Engine.IO session that does not join the namespace within
``CONNECT_TIMEOUT_SECONDS`` is closed, and at most ``MAX_SOCKETS_PER_USER``
sockets of one user are connected to this node.

Handlers run in order per connection (``async_handlers=False``), so a client
that subscribes and then unsubscribes ends unsubscribed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import socketio
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.types import ASGIApp, Receive, Scope, Send

from attendance_live.auth.tokens import Identity, TokenError, TokenService
from attendance_live.config import Settings
from attendance_live.logs import MalformedPacketFilter, connection_id
from attendance_live.metrics import Metrics
from attendance_live.realtime import jsoncodec
from attendance_live.realtime.codes import CODE_EVENT, CodeTicker
from attendance_live.realtime.expiry import (
    TOKEN_EXPIRED_EVENT,
    TOKEN_REFRESHED_EVENT,
    Deadlines,
    expiry_body,
    require_token,
)
from attendance_live.realtime.lean import LeanServer
from attendance_live.realtime.payloads import (
    PayloadError,
    active_sessions_data,
    check_in_code_data,
    error_data,
    require_id,
    roster_data,
    unsubscribed_data,
)
from attendance_live.realtime.ratelimit import TokenBucket
from attendance_live.service.attendance import AttendanceService
from attendance_live.service.errors import Forbidden, InvalidInput, NotFound, ServiceError
from attendance_live.vocabulary import course_room, session_room, user_room

__all__ = [
    "ERROR_EVENT",
    "RESERVED_EVENTS",
    "SOCKET_CODES",
    "Connection",
    "EventHandler",
    "RealtimeServer",
    "socket_code",
]

log = logging.getLogger(__name__)

ERROR_EVENT = "activeSessionsError"
# Names socket.io gives meaning to; a client event so named is only an unknown event.
RESERVED_EVENTS = frozenset(
    ("connect", "disconnect", "disconnecting", "connect_error", "newListener", "removeListener")
)

# The service's errors as socket error codes. "Not found" and "not allowed"
# must look the same on sockets, so that course ids cannot be probed.
SOCKET_CODES: dict[type[ServiceError], str] = {
    InvalidInput: "invalid_payload",
    NotFound: "forbidden",
    Forbidden: "forbidden",
}


def socket_code(exc: ServiceError) -> str:
    """The ``code`` of an ``activeSessionsError`` answering ``exc`` (``internal`` if unmapped)."""
    for cls in type(exc).__mro__:
        if cls in SOCKET_CODES:
            return SOCKET_CODES[cls]
    return "internal"


@dataclass(slots=True)
class Connection:
    """What the server keeps per connected socket (freed on disconnect)."""

    identity: Identity
    bucket: TokenBucket
    courses: set[str] = field(default_factory=set)
    expires_at: float = math.inf  # the token's exp (epoch seconds)
    expired: bool = False  # set at exp: the socket is out of its rooms and being disconnected

    def is_live(self) -> bool:
        return not self.expired and time.time() < self.expires_at


def _engineio_logger() -> logging.Logger:
    engine_log = logging.getLogger("attendance_live.engineio")
    if not any(isinstance(f, MalformedPacketFilter) for f in engine_log.filters):
        engine_log.addFilter(MalformedPacketFilter())
    return engine_log


class _Refusal(Exception):
    """A request the client may not make; answered with an error event."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


EventHandler = Callable[[str, Connection, tuple[Any, ...]], Awaitable[dict[str, Any] | None]]


class RealtimeServer:
    def __init__(
        self,
        settings: Settings,
        tokens: TokenService,
        service: AttendanceService,
        metrics: Metrics,
        client_manager: socketio.AsyncManager,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.tokens = tokens
        self.service = service
        origins: str | list[str] = "*" if "*" in settings.cors_origins else settings.cors_origins
        self.sio = LeanServer(
            async_mode="asgi",
            client_manager=client_manager,
            cors_allowed_origins=origins,
            # Bearer tokens, never cookies: no origin is told it may send credentials,
            # the same rule as the HTTP API's CORS (docs/operations.md).
            cors_credentials=False,
            ping_timeout=settings.ping_timeout_seconds,
            max_http_buffer_size=settings.max_message_bytes,
            async_handlers=False,
            json=jsoncodec,
            # Our loggers, so their lines get our format and token redaction
            # (given False, the libraries attach an unformatted handler of their own).
            logger=logging.getLogger("attendance_live.socketio"),
            engineio_logger=_engineio_logger(),
        )
        self.codes = CodeTicker(self.sio, service, service.clock)
        self.connections: dict[str, Connection] = {}
        self.user_sids: dict[str, set[str]] = {}
        self.deadlines = Deadlines(self._expire)
        self._background: set[asyncio.Task[None]] = set()
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.on("*", self._on_unknown)
        self._handlers: dict[str, EventHandler] = {
            "subscribeToCourse": self._subscribe_course,
            "unsubscribeFromCourse": self._unsubscribe_course,
            "checkActiveSessions": self._check_active,
            "subscribeToSession": self._subscribe_session,
            "unsubscribeFromSession": self._unsubscribe_session,
            "refreshToken": self._refresh_token,
        }
        for name in self._handlers:
            self.sio.on(name, self._dispatcher(name))

    # -------------------------------------------------------------- lifecycle

    async def _on_connect(self, sid: str, environ: object = None, auth: object = None, *rest: Any) -> None:
        if sid in self.connections:
            # A client event named "connect" (42["connect", ...]): the handshake is done once.
            await self._on_unknown("connect", sid)
            return
        connection_id.set(sid)
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            verified = await self.tokens.check(token)
        except TokenError as exc:
            log.info("socket refused: %s (%s)", exc.message, exc.reason)
            raise socketio.exceptions.ConnectionRefusedError(exc.message) from None
        identity = verified.identity
        limit = self.settings.max_sockets_per_user
        if len(self.user_sids.get(identity.user_id, ())) >= limit:
            log.info("socket refused: user already has %d sockets on this node", limit)
            raise socketio.exceptions.ConnectionRefusedError(
                f"Too many connections: this user already has {limit} open (MAX_SOCKETS_PER_USER); "
                "close one and connect again"
            )
        # The row is not needed to follow a course: refresh it in the next batch.
        self.service.users.remember_later(identity)
        self.connections[sid] = Connection(
            identity,
            TokenBucket(self.settings.socket_rate_limit, self.settings.socket_rate_burst),
            expires_at=verified.expires_at,
        )
        self.deadlines.set(sid, verified.expires_at)
        self.user_sids.setdefault(identity.user_id, set()).add(sid)
        await self.sio.enter_room(sid, user_room(identity.user_id))
        self.metrics.connections.inc()
        log.debug("socket %s connected as %s", sid, identity.user_id)

    async def _on_disconnect(self, sid: str, reason: object = None, *rest: Any) -> None:
        if self.sio.manager.is_connected(sid, "/"):
            # The library marks a socket as disconnecting before this handler runs for a real
            # disconnect; a connected socket here sent a client event named "disconnect".
            await self._on_unknown("disconnect", sid)
            return
        self._release_long_poll(sid)
        self.deadlines.cancel(sid)
        conn = self.connections.pop(sid, None)
        if conn is None:
            return
        self.metrics.connections.dec()
        self.metrics.subscriptions.dec(len(conn.courses))
        sids = self.user_sids.get(conn.identity.user_id)
        if sids is not None:
            sids.discard(sid)
            if not sids:
                del self.user_sids[conn.identity.user_id]
        log.debug("socket %s disconnected (%s)", sid, reason)

    def _release_long_poll(self, sid: str) -> None:
        # python-engineio closes a polling client's socket on its CLOSE packet
        # without waking the GET it is holding, which then lingers for
        # ping_interval + ping_timeout (45 s) and holds up a graceful shutdown.
        # An empty wake-up answers that GET at once.
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, "/")
        socket = self.sio.eio.sockets.get(eio_sid) if eio_sid else None
        if socket is not None and not socket.upgraded:
            socket.queue.put_nowait(None)

    async def _on_unknown(self, event: str, sid: str, *args: Any) -> None:
        conn = self.connections.get(sid)
        if conn is None or not conn.bucket.take():
            return
        kind = "a reserved name used as an event" if event in RESERVED_EVENTS else "unknown event"
        log.info("ignored %s %r from socket %s", kind, str(event)[:64], sid)

    # --------------------------------------------------------------- dispatch

    def _dispatcher(self, event: str) -> Callable[..., Awaitable[dict[str, Any] | None]]:
        handler = self._handlers[event]

        async def dispatch(sid: str, *args: Any) -> dict[str, Any] | None:
            conn = self.connections.get(sid)
            if conn is None or not conn.is_live():
                return None  # past the token's exp: the socket is on its way out
            token = connection_id.set(sid)
            try:
                with self.metrics.handler_seconds.labels(event).time():
                    return await guarded(sid, conn, args)
            finally:
                connection_id.reset(token)

        async def guarded(sid: str, conn: Connection, args: tuple[Any, ...]) -> dict[str, Any] | None:
            if not conn.bucket.take():
                if conn.bucket.should_warn():
                    return await self._error(
                        sid,
                        event,
                        "rate_limited",
                        f"Too many events: at most {self.settings.socket_rate_limit:g} a second; slow down",
                        args,
                    )
                return None
            try:
                return await handler(sid, conn, args)
            except PayloadError as exc:
                return await self._error(sid, event, "invalid_payload", str(exc), args)
            except _Refusal as exc:
                return await self._error(sid, event, exc.code, exc.message, args)
            except ServiceError as exc:
                return await self._error(sid, event, socket_code(exc), exc.message, args)
            except (OperationalError, DBAPIError, OSError):
                log.exception("database unavailable while handling %s", event)
                return await self._error(
                    sid, event, "internal", "The server cannot reach its database; try again shortly", args
                )
            except Exception:
                log.exception("handler for %s failed", event)
                return await self._error(sid, event, "internal", "Internal server error; try again", args)

        return dispatch

    async def _error(
        self, sid: str, event: str, code: str, message: str, args: tuple[Any, ...]
    ) -> dict[str, Any]:
        self.metrics.errors.labels(code).inc()
        payload = error_data(event, code, message, args)
        await self.sio.emit(ERROR_EVENT, payload, to=sid)
        return payload

    # ----------------------------------------------------------------- events

    async def _require_member(self, conn: Connection, course_id: str) -> None:
        # One answer for "no such course" and "not yours", so ids cannot be probed.
        if not await self.service.approved_member(conn.identity, course_id):
            raise _Refusal(
                "forbidden",
                f"Course {course_id!r} was not found or you are not an approved member of it",
            )

    async def _subscribe_course(self, sid: str, conn: Connection, args: tuple[Any, ...]) -> dict[str, Any]:
        course_id = require_id(args, "subscribeToCourse", "course_id")
        await self._require_member(conn, course_id)
        # Join before reading, so no change committed after the read can be missed.
        await self.sio.enter_room(sid, course_room(course_id))
        if course_id not in conn.courses:
            conn.courses.add(course_id)
            self.metrics.subscriptions.inc()
        payload = active_sessions_data(await self.service.active_sessions_snapshot(course_id))
        await self.sio.emit("activeSessionsData", payload, to=sid)
        return payload

    async def _unsubscribe_course(self, sid: str, conn: Connection, args: tuple[Any, ...]) -> dict[str, Any]:
        course_id = require_id(args, "unsubscribeFromCourse", "course_id")
        await self.sio.leave_room(sid, course_room(course_id))
        self._forget_course(conn, course_id)
        return unsubscribed_data("course_id", course_id)

    async def _check_active(self, sid: str, conn: Connection, args: tuple[Any, ...]) -> dict[str, Any]:
        course_id = require_id(args, "checkActiveSessions", "course_id")
        await self._require_member(conn, course_id)
        payload = active_sessions_data(await self.service.active_sessions_snapshot(course_id))
        await self.sio.emit("activeSessionsResponse", payload, to=sid)
        return payload

    async def _subscribe_session(self, sid: str, conn: Connection, args: tuple[Any, ...]) -> dict[str, Any]:
        session_id = require_id(args, "subscribeToSession", "session_id")
        try:
            view = await self.service.roster(conn.identity, session_id)
        except (NotFound, Forbidden):
            raise _Refusal(
                "forbidden",
                f"Session {session_id!r} was not found or only its course's teacher may follow its roster",
            ) from None
        await self.sio.enter_room(sid, session_room(session_id))
        payload = roster_data(view)
        await self.sio.emit("sessionRosterData", payload, to=sid)
        if view.check_in_mode == "code" and view.status == "active":
            code = await self.service.current_code(session_id)
            if code is not None:
                await self.sio.emit(CODE_EVENT, check_in_code_data(code), to=sid)
                self.codes.watch(code)
        return payload

    async def _unsubscribe_session(self, sid: str, conn: Connection, args: tuple[Any, ...]) -> dict[str, Any]:
        session_id = require_id(args, "unsubscribeFromSession", "session_id")
        await self.sio.leave_room(sid, session_room(session_id))
        return unsubscribed_data("session_id", session_id)

    async def _refresh_token(self, sid: str, conn: Connection, args: tuple[Any, ...]) -> dict[str, Any]:
        token = require_token(args)
        try:
            verified = await self.tokens.check(token)
        except TokenError as exc:
            log.info("refreshToken refused: %s (%s)", exc.message, exc.reason)
            raise _Refusal(
                "forbidden", f"refreshToken refused: {exc.message}; get a new token and send it again"
            ) from None
        if verified.identity.user_id != conn.identity.user_id:
            raise _Refusal(
                "forbidden",
                "refreshToken refused: the token is for another user; "
                "to change user, disconnect and connect with that user's token",
            )
        if not conn.is_live():
            return {}  # the deadline passed while the token was being checked
        conn.identity = verified.identity
        conn.expires_at = verified.expires_at
        self.deadlines.set(sid, verified.expires_at)
        self.service.users.remember_later(verified.identity)
        payload = expiry_body("expires_at", verified.expires_at)
        await self.sio.emit(TOKEN_REFRESHED_EVENT, payload, to=sid)
        return payload

    # ----------------------------------------------------------------- expiry

    def _expire(self, sid: str) -> None:
        """At the token's exp: out of every room now (nothing more reaches it), then tell and close."""
        conn = self.connections.get(sid)
        if conn is None or conn.expired:
            return
        conn.expired = True
        manager = self.sio.manager
        for room in manager.get_rooms(sid, "/"):
            if room != sid:  # its own room stays, for tokenExpired
                manager.basic_leave_room(sid, "/", room)
        self.metrics.subscriptions.dec(len(conn.courses))
        conn.courses.clear()
        self._spawn(self._end_expired(sid, conn.expires_at))

    async def _end_expired(self, sid: str, expired_at: float) -> None:
        log.info("socket %s: token expired; disconnecting it", sid)
        await self.sio.emit(TOKEN_EXPIRED_EVENT, expiry_body("expired_at", expired_at), to=sid)
        await self.sio.disconnect(sid)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background socket work failed", exc_info=task.exception())

    async def _close_unjoined(self) -> None:
        """Close Engine.IO sessions that have not joined the namespace within CONNECT_TIMEOUT_SECONDS.

        One sweep over the open sessions every half timeout: a session is
        closed between one and one and a half timeouts after it was first seen
        without a Socket.IO connection.
        """
        timeout = self.settings.connect_timeout_seconds
        first_seen: dict[str, float] = {}
        while True:
            await asyncio.sleep(timeout / 2)
            now = time.monotonic()
            open_sids = list(self.sio.eio.sockets)
            for eio_sid in open_sids:
                if self.sio.manager.sid_from_eio_sid(eio_sid, "/") is not None:
                    first_seen.pop(eio_sid, None)
                    continue
                since = first_seen.setdefault(eio_sid, now)
                if now - since >= timeout:
                    log.info("closing Engine.IO session %s: no Socket.IO connect in %gs", eio_sid, timeout)
                    first_seen.pop(eio_sid, None)
                    await self.close_transport(eio_sid)
            for gone in first_seen.keys() - set(open_sids):
                del first_seen[gone]

    # ---------------------------------------------------------------- helpers

    async def remove_user_from_course(self, user_id: str, course_id: str) -> None:
        """Take every socket of ``user_id`` on this node out of the course's room."""
        for sid in list(self.user_sids.get(user_id, ())):
            conn = self.connections.get(sid)
            if conn is None:
                continue
            await self.sio.leave_room(sid, course_room(course_id))
            self._forget_course(conn, course_id)

    def _forget_course(self, conn: Connection, course_id: str) -> None:
        if course_id in conn.courses:
            conn.courses.discard(course_id)
            self.metrics.subscriptions.dec()

    def room_size(self, room: str) -> int:
        """Local participants of a room (this node only)."""
        rooms = self.sio.manager.rooms.get("/", {})
        return len(rooms.get(room, {}))

    def start(self) -> None:
        """Start the client manager now (python-socketio would on the first connection):
        with Redis, this node listens for other nodes' events before it takes clients."""
        if not self.sio.manager_initialized:
            self.sio.manager_initialized = True
            self.sio.manager.initialize()
        self.codes.start()
        self._spawn(self._close_unjoined())

    async def close(self) -> None:
        """Close every transport so that clients reconnect (to this node again, or another).

        This closes at the Engine.IO level on purpose: a Socket.IO DISCONNECT
        packet ("io server disconnect") tells socket.io-client *not* to
        reconnect, which is wrong for a restart or a deploy.
        """
        await self.codes.close()
        self.deadlines.close()
        for task in list(self._background):
            task.cancel()
        for task in list(self._background):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for eio_sid in list(self.sio.eio.sockets):
            await self.close_transport(eio_sid)

    async def close_transport(self, eio_sid: str) -> None:
        """Close one Engine.IO session now, whatever its transport."""
        eio = self.sio.eio
        socket = eio.sockets.get(eio_sid)
        if socket is None:
            return
        try:
            # An Engine.IO CLOSE packet, without waiting for the client to
            # fetch it (engineio's disconnect() would: a polling client that
            # never polls again would hold shutdown forever).
            await socket.close(wait=False, reason=eio.reason.SERVER_DISCONNECT)
            # The websocket writer closes the connection only when it dequeues
            # None; a held long-poll returns at once. Without this the
            # transport lingers until ping timeout.
            socket.queue.put_nowait(None)
        except Exception:
            log.exception("could not close transport %s", eio_sid)
        eio.sockets.pop(eio_sid, None)

    def asgi_guard(self, app: ASGIApp) -> ASGIApp:
        """Answer an oversized long-polling POST with 413 and close that session.

        python-engineio refuses such a POST by disconnecting the session and
        waiting for the client to fetch the CLOSE packet, which it never does:
        the request hangs, and holds up a graceful shutdown. Over websockets the
        library closes the connection itself.
        """
        limit = self.settings.max_message_bytes

        async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
            if (
                scope["type"] == "http"
                and scope["method"] == "POST"
                and scope["path"].startswith("/socket.io")
            ):
                length = dict(scope["headers"]).get(b"content-length", b"0")
                if not length.isdigit() or int(length) > limit:
                    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
                    for eio_sid in query.get("sid", [])[:1]:
                        await self.close_transport(eio_sid)
                    body = f"Message larger than {limit} bytes; the session is closed".encode()
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 413,
                            "headers": [(b"content-type", b"text/plain"), (b"connection", b"close")],
                        }
                    )
                    await send({"type": "http.response.body", "body": body})
                    return
            await app(scope, receive, send)

        return guarded
