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
and is disconnected by the server. An Engine.IO session that does not join
the namespace within ``CONNECT_TIMEOUT_SECONDS`` is closed (the transport's
connect timeout), and at most ``MAX_SOCKETS_PER_USER`` sockets of one user
are connected to this node.

Connection state recovery (:mod:`realtime.recovery`, with ``EVENT_OFFSETS``
and ``RECOVERY_WINDOW_SECONDS > 0`` and the relay attached as ``stream``): the
CONNECT reply carries a ``pid``; a subscription is answered once the pid's
stored state has the course; a client that comes back with ``auth: {token,
pid, offset}`` gets its courses back and the course events it missed, right
after the CONNECT reply and before any live one. Anything else gets a fresh
pid and no subscriptions.

Handlers run in order per connection (the transport's ``handlers_in_order``),
so a client that subscribes and then unsubscribes ends unsubscribed. Client
events named like Socket.IO's reserved ones (``connect``, ``disconnect``, ...)
never reach a handler: the transport treats them as unknown events.

This runs on the project's own transport (:mod:`attendance_live.transport`):
``SocketServer`` for Engine.IO and Socket.IO, with a Redis adapter across
nodes; ``asgi_app`` serves long-polling under ASGI and ``uvicorn_options``
gives uvicorn the websocket protocol class (docs/transport.md).
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.types import ASGIApp

from attendance_live.auth.tokens import Identity, TokenError, TokenService
from attendance_live.config import Settings
from attendance_live.logs import connection_id
from attendance_live.metrics import Metrics
from attendance_live.payloads import (
    PayloadError,
    active_sessions_data,
    check_in_code_data,
    error_data,
    require_id,
    roster_data,
    unsubscribed_data,
)
from attendance_live.realtime.codes import CODE_EVENT, CodeTicker
from attendance_live.realtime.expiry import (
    TOKEN_EXPIRED_EVENT,
    TOKEN_REFRESHED_EVENT,
    Deadlines,
    expiry_body,
    require_token,
)
from attendance_live.realtime.ratelimit import TokenBucket
from attendance_live.realtime.recovery import PidState, RecoveryStore, SharedReads, replay
from attendance_live.realtime.stream import CourseEvent, CourseStream, parse_offset
from attendance_live.service.attendance import AttendanceService
from attendance_live.service.errors import Forbidden, InvalidInput, NotFound, RateLimited, ServiceError
from attendance_live.transport import (
    Adapter,
    ConnectRefused,
    EncodedPacket,
    EngineSocket,
    InMemoryAdapter,
    PubSubAdapter,
    RedisAdapter,
    Socket,
    SocketServer,
    TransportSettings,
    uvicorn_options,
)
from attendance_live.transport.redis_adapter import DEFAULT_CHANNEL
from attendance_live.vocabulary import (
    course_of_managers_room,
    course_of_room,
    course_room,
    managers_room,
    session_of_room,
    session_room,
    user_room,
)

__all__ = [
    "ERROR_EVENT",
    "REPLAY_PACKETS_KEPT",
    "SOCKET_CODES",
    "Connection",
    "EventHandler",
    "RealtimeServer",
    "socket_code",
]

log = logging.getLogger(__name__)

ERROR_EVENT = "activeSessionsError"
REPLAY_PACKETS_KEPT = 1024  # recovered events kept encoded (a storm's clients missed the same ones)

# The service's errors as socket error codes. "Not found" and "not allowed"
# must look the same on sockets, so that course ids cannot be probed.
SOCKET_CODES: dict[type[ServiceError], str] = {
    InvalidInput: "invalid_payload",
    NotFound: "forbidden",
    Forbidden: "forbidden",
    RateLimited: "rate_limited",  # a limit of attendance_live.limits (e.g. wrong check-in codes)
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
    #: Course id -> the stream position at which the socket joined the course's room.
    courses: dict[str, int] = field(default_factory=dict)
    expires_at: float = math.inf  # the token's exp (epoch seconds)
    expired: bool = False  # set at exp: the socket is out of its rooms and being disconnected
    #: Connection state recovery: the pid's state (None when recovery is off).
    recovery: PidState | None = None

    def is_live(self) -> bool:
        return not self.expired and time.time() < self.expires_at


class _Refusal(Exception):
    """A request the client may not make; answered with an error event."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


EventHandler = Callable[[Socket, Connection, tuple[Any, ...]], Awaitable[dict[str, Any] | None]]


class RealtimeServer:
    """The seed's Socket.IO protocol on the transport's default namespace."""

    def __init__(
        self,
        settings: Settings,
        tokens: TokenService,
        service: AttendanceService,
        metrics: Metrics,
        *,
        redis_url: str | None = None,
        redis_channel: str = DEFAULT_CHANNEL,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.tokens = tokens
        self.service = service
        #: Runs after a gap in other nodes' broadcasts (Redis was away): resend what may be missed.
        self.on_resubscribed: Callable[[], Coroutine[Any, Any, None]] | None = None
        # The relay's stream of course events (``realtime.stream``), attached by the app wiring.
        self.stream: CourseStream | None = None
        self._shared_reads: SharedReads | None = None  # the stream's reads, shared by recoveries
        # Replayed events encoded once for a storm of recoveries (a position is one event for good).
        self._replay_packets: OrderedDict[int, EncodedPacket] = OrderedDict()
        # Connection state recovery (realtime.recovery): on with offsets and a window, and a stream.
        self.recovery: RecoveryStore | None = (
            RecoveryStore(service.database, service.clock, window_seconds=settings.recovery_window_seconds)
            if settings.event_offsets and settings.recovery_window_seconds > 0
            else None
        )
        self.adapter: Adapter = (
            InMemoryAdapter()
            if redis_url is None
            else RedisAdapter("/", redis_url, channel=redis_channel, on_resubscribed=self._resubscribed)
        )
        origins = ("*",) if "*" in settings.cors_origins else tuple(settings.cors_origins)
        self.server = SocketServer(
            TransportSettings(
                path="/socket.io/",
                max_payload=settings.max_message_bytes,
                ping_timeout_ms=round(settings.ping_timeout_seconds * 1000),
                connect_timeout_ms=round(settings.connect_timeout_seconds * 1000),
                outgoing_buffer_bytes=settings.outgoing_buffer_bytes,
                per_message_deflate=settings.ws_per_message_deflate,
                cors_allowed_origins=origins,
                # Bearer tokens, never cookies: no origin is told it may send credentials,
                # the same rule as the HTTP API's CORS (docs/operations.md).
                cors_credentials=False,
            ),
            adapter_factory=lambda _name: self.adapter,
            on_overflow=self._overflowed,
        )
        self.namespace = self.server.namespace("/")
        self.user_sockets: dict[str, set[Socket]] = {}
        self.codes = CodeTicker(self.namespace, service, service.clock)
        self.deadlines = Deadlines(self._expire)
        self.namespace.on_connect(self._on_connect)
        self.namespace.on_disconnect(self._on_disconnect)
        self._handlers: dict[str, EventHandler] = {
            "subscribeToCourse": self._subscribe_course,
            "unsubscribeFromCourse": self._unsubscribe_course,
            "checkActiveSessions": self._check_active,
            "subscribeToSession": self._subscribe_session,
            "unsubscribeFromSession": self._unsubscribe_session,
            "refreshToken": self._refresh_token,
        }
        for name in self._handlers:
            self.namespace.on(name, self._dispatcher(name))
        self.namespace.use(self._rate_limit)

    # -------------------------------------------------------------- lifecycle

    async def _on_connect(self, socket: Socket, auth: dict[str, Any]) -> None:
        connection_id.set(socket.sid)
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            verified = await self.tokens.check(token)
        except TokenError as exc:
            log.info("socket refused: %s (%s)", exc.message, exc.reason)
            raise ConnectRefused(exc.message) from None
        identity = verified.identity
        limit = self.settings.max_sockets_per_user
        if len(self.user_sockets.get(identity.user_id, ())) >= limit:
            log.info("socket refused: user already has %d sockets on this node", limit)
            raise ConnectRefused(
                f"Too many connections: this user already has {limit} open (MAX_SOCKETS_PER_USER); "
                "close one and connect again"
            )
        # The row is not needed to follow a course: refresh it in the next batch.
        self.service.users.remember_later(identity)
        socket.data = Connection(
            identity,
            TokenBucket(self.settings.socket_rate_limit, self.settings.socket_rate_burst),
            expires_at=verified.expires_at,
        )
        self.deadlines.set(socket.sid, verified.expires_at)
        self.user_sockets.setdefault(identity.user_id, set()).add(socket)
        socket.join(user_room(identity.user_id))
        self.metrics.connections.inc()
        if self.recovery is not None and self.stream is not None:
            await self._recover_or_start(socket, socket.data, auth, self.recovery, self.stream)
        log.debug("socket %s connected as %s", socket.sid, identity.user_id)

    async def _recover_or_start(
        self,
        socket: Socket,
        conn: Connection,
        auth: dict[str, Any],
        store: RecoveryStore,
        stream: CourseStream,
    ) -> None:
        """Give the socket its pid: the one it came back with, recovered, or a fresh one.

        Recovery (docs/protocol.md, "Connection state recovery"): claim the
        pid's stored state, keep the courses the user may still follow, replay
        the course events missed since ``max(offset, joined_at)`` and join the
        rooms. What is emitted here reaches the client right after the CONNECT
        reply, so it gets the missed events in order and before any new one.
        """
        pid = auth.get("pid")
        state: PidState | None = None
        if isinstance(pid, str):
            try:
                offset = parse_offset(auth.get("offset"))
                state = await self._recover(socket, conn, store, stream, pid, offset)
            except (OperationalError, DBAPIError, OSError) as exc:
                log.warning("recovery refused: the database failed (%s); a fresh session", type(exc).__name__)
            except Exception:
                log.exception("recovery failed; a fresh session")
            if state is None:  # nothing partial: out of whatever the attempt joined
                for course_id in list(conn.courses):
                    socket.leave(course_room(course_id))
                self.metrics.subscriptions.dec(len(conn.courses))
                conn.courses = {}
        if state is None:
            state = store.fresh(conn.identity.user_id)
        state.courses = conn.courses  # one dict: what the socket follows is what the pid stores
        conn.recovery = state
        socket.pid = state.pid

    async def _recover(
        self,
        socket: Socket,
        conn: Connection,
        store: RecoveryStore,
        stream: CourseStream,
        pid: str,
        offset: int | None,
    ) -> PidState | None:
        claimed = await store.claim(pid, conn.identity.user_id)
        if claimed is None:
            log.info("recovery refused: no recoverable session for that pid; a fresh session")
            return None
        state = store.resumed(claimed, conn.identity.user_id)
        # Removal from a course (remove_user_from_course) from now on drops it from conn.courses.
        conn.courses = dict(claimed.courses)
        self.metrics.subscriptions.inc(len(conn.courses))
        for course_id in list(conn.courses):
            if not await self.service.approved_member(conn.identity, course_id):
                self._forget_course(conn, course_id)

        managed = {c for c in conn.courses if await self.service.manages_course(conn.identity, c)}

        def join(courses: Sequence[str]) -> None:
            for course_id in courses:
                socket.join(course_room(course_id))
                if course_id in managed:
                    socket.join(managers_room(course_id))

        if self._shared_reads is None or self._shared_reads.stream is not stream:
            self._shared_reads = SharedReads(stream)
        events = await replay(
            self._shared_reads,
            lambda: conn.courses,
            offset,
            join,
            catch_up_seconds=max(2.0, 3 * self.settings.outbox_poll_seconds),
        )
        if events is None:
            return None
        # Same synchronous step as the join: the replay goes out before any live event.
        for event in events:
            socket.send_encoded(self._replay_packet(event))
        state.courses = conn.courses
        if conn.courses != claimed.courses:
            state.sync_later()  # courses the user may no longer follow are gone from the state
        log.info("socket recovered %d course(s) and %d missed event(s)", len(conn.courses), len(events))
        return state

    def _on_disconnect(self, socket: Socket, reason: str) -> None:
        conn: Connection | None = socket.data
        if conn is None:
            return
        socket.data = None
        if conn.recovery is not None:
            # A server-side disconnect at the token's exp may not be recovered; any other may.
            conn.recovery.disconnected(forget=conn.expired)
        self.deadlines.cancel(socket.sid)
        self.metrics.connections.dec()
        self.metrics.subscriptions.dec(len(conn.courses))
        sockets = self.user_sockets.get(conn.identity.user_id)
        if sockets is not None:
            sockets.discard(socket)
            if not sockets:
                del self.user_sockets[conn.identity.user_id]
        log.debug("socket %s disconnected (%s)", socket.sid, reason)

    async def _resubscribed(self) -> None:
        if self.on_resubscribed is not None:
            log.info("events from other nodes flow again; resending snapshots to this node's rooms")
            await self.on_resubscribed()

    def _overflowed(self, _engine_socket: EngineSocket) -> None:
        self.metrics.overflows.inc()

    @property
    def connections(self) -> dict[str, Connection]:
        """Connected sockets' state by socket id (this node)."""
        return {sid: socket.data for sid, socket in self.namespace.sockets.items() if socket.data is not None}

    # --------------------------------------------------------------- dispatch

    def _dispatcher(self, event: str) -> Callable[..., Awaitable[dict[str, Any] | None]]:
        handler = self._handlers[event]

        async def dispatch(socket: Socket, *args: Any) -> dict[str, Any] | None:
            conn: Connection | None = socket.data
            if conn is None or not conn.is_live():
                return None  # past the token's exp: the socket is on its way out
            token = connection_id.set(socket.sid)
            try:
                with self.metrics.handler_seconds.labels(event).time():
                    return await guarded(socket, conn, args)
            finally:
                connection_id.reset(token)

        async def guarded(socket: Socket, conn: Connection, args: tuple[Any, ...]) -> dict[str, Any] | None:
            try:
                return await handler(socket, conn, args)
            except PayloadError as exc:
                return self._error(socket, event, "invalid_payload", str(exc), args)
            except _Refusal as exc:
                return self._error(socket, event, exc.code, exc.message, args)
            except ServiceError as exc:
                return self._error(socket, event, socket_code(exc), exc.message, args)
            except (OperationalError, DBAPIError, OSError):
                log.exception("database unavailable while handling %s", event)
                return self._error(
                    socket, event, "internal", "The server cannot reach its database; try again shortly", args
                )
            except Exception:
                log.exception("handler for %s failed", event)
                return self._error(socket, event, "internal", "Internal server error; try again", args)

        return dispatch

    def _rate_limit(self, socket: Socket, event: str, args: list[Any]) -> dict[str, Any] | tuple[()] | None:
        """As each event arrives (before it waits behind the socket's running handler): past the
        rate, it is dropped, and one error a second at most says so."""
        conn: Connection | None = socket.data
        if conn is None or conn.bucket.take():
            return None
        if conn.bucket.should_warn():
            return self._error(
                socket,
                event,
                "rate_limited",
                f"Too many events: at most {self.settings.socket_rate_limit:g} a second; slow down",
                tuple(args),
            )
        return ()

    def _error(
        self, socket: Socket, event: str, code: str, message: str, args: tuple[Any, ...]
    ) -> dict[str, Any]:
        self.metrics.errors.labels(code).inc()
        payload = error_data(event, code, message, args)
        socket.emit(ERROR_EVENT, payload)
        return payload

    # ----------------------------------------------------------------- events

    async def _require_member(self, conn: Connection, course_id: str) -> None:
        # One answer for "no such course" and "not yours", so ids cannot be probed.
        if not await self.service.approved_member(conn.identity, course_id):
            raise _Refusal(
                "forbidden",
                f"Course {course_id!r} was not found or you are not an approved member of it",
            )

    async def _subscribe_course(
        self, socket: Socket, conn: Connection, args: tuple[Any, ...]
    ) -> dict[str, Any] | None:
        course_id = require_id(args, "subscribeToCourse", "course_id")
        await self._require_member(conn, course_id)
        manages = await self.service.manages_course(conn.identity, course_id)
        if not socket.connected:
            return None  # gone while membership was checked
        # Join before reading, so no change committed after the read can be missed.
        room = course_room(course_id)
        socket.join(room)
        if manages:
            socket.join(managers_room(course_id))  # join requests (enrollmentRequested)
        if course_id not in conn.courses:
            # The stream position read in the same step as the join: recovery replays from there.
            conn.courses[course_id] = self.stream.position if self.stream is not None else 0
            self.metrics.subscriptions.inc()
            if conn.recovery is not None:
                try:
                    await conn.recovery.sync()  # answered only once the pid's state has the course
                except Exception:
                    socket.leave(room)
                    self._forget_course(conn, course_id)
                    raise
        payload = active_sessions_data(await self.service.active_sessions_snapshot(course_id))
        if course_id in conn.courses:  # not removed from the course meanwhile
            socket.emit("activeSessionsData", payload)
        return payload

    async def _unsubscribe_course(
        self, socket: Socket, conn: Connection, args: tuple[Any, ...]
    ) -> dict[str, Any]:
        course_id = require_id(args, "unsubscribeFromCourse", "course_id")
        socket.leave(course_room(course_id))
        socket.leave(managers_room(course_id))
        self._forget_course(conn, course_id)
        return unsubscribed_data("course_id", course_id)

    async def _check_active(self, socket: Socket, conn: Connection, args: tuple[Any, ...]) -> dict[str, Any]:
        course_id = require_id(args, "checkActiveSessions", "course_id")
        await self._require_member(conn, course_id)
        payload = active_sessions_data(await self.service.active_sessions_snapshot(course_id))
        socket.emit("activeSessionsResponse", payload)
        return payload

    async def _subscribe_session(
        self, socket: Socket, conn: Connection, args: tuple[Any, ...]
    ) -> dict[str, Any] | None:
        session_id = require_id(args, "subscribeToSession", "session_id")
        try:
            view = await self.service.roster(conn.identity, session_id)
        except (NotFound, Forbidden):
            raise _Refusal(
                "forbidden",
                f"Session {session_id!r} was not found or only its course's teacher may follow its roster",
            ) from None
        if not socket.connected:
            return None
        socket.join(session_room(session_id))
        payload = roster_data(view)
        socket.emit("sessionRosterData", payload)
        if view.check_in_mode == "code" and view.status == "active":
            code = await self.service.current_code(session_id)
            if code is not None and socket.connected:
                socket.emit(CODE_EVENT, check_in_code_data(code))
                self.codes.watch(code)
        return payload

    async def _unsubscribe_session(
        self, socket: Socket, conn: Connection, args: tuple[Any, ...]
    ) -> dict[str, Any]:
        session_id = require_id(args, "unsubscribeFromSession", "session_id")
        socket.leave(session_room(session_id))
        return unsubscribed_data("session_id", session_id)

    async def _refresh_token(self, socket: Socket, conn: Connection, args: tuple[Any, ...]) -> dict[str, Any]:
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
        if not conn.is_live() or not socket.connected:
            return {}  # the deadline passed while the token was being checked
        conn.identity = verified.identity
        conn.expires_at = verified.expires_at
        self.deadlines.set(socket.sid, verified.expires_at)
        self.service.users.remember_later(verified.identity)
        # The new token may carry a lower role (admin -> student): out of every room it no
        # longer grants, before the answer, as a rejected enrollment takes a socket out.
        await self._recheck_rooms(socket, conn)
        payload = expiry_body("expires_at", verified.expires_at)
        socket.emit(TOKEN_REFRESHED_EVENT, payload)
        return payload

    # ----------------------------------------------------------------- expiry

    def _expire(self, sid: str) -> None:
        """At the token's exp: out of every room now (nothing more reaches it), then tell and close.

        All of it in this one callback of the loop, so no broadcast can come between."""
        socket = self.namespace.sockets.get(sid)
        conn: Connection | None = socket.data if socket is not None else None
        if socket is None or conn is None or conn.expired:
            return
        conn.expired = True
        for room in list(socket.rooms):
            socket.leave(room)
        self.metrics.subscriptions.dec(len(conn.courses))
        conn.courses.clear()
        log.info("socket %s: token expired; disconnecting it", sid)
        socket.emit(TOKEN_EXPIRED_EVENT, expiry_body("expired_at", conn.expires_at))
        socket.disconnect()

    # ---------------------------------------------------------------- helpers

    def _replay_packet(self, event: CourseEvent) -> EncodedPacket:
        """A recovered event as it was sent live, encoded once for every socket that missed it."""
        packet = self._replay_packets.get(event.position)
        if packet is None:
            packet = self.namespace.encode(event.event, event.payload, str(event.position))
            self._replay_packets[event.position] = packet
            if len(self._replay_packets) > REPLAY_PACKETS_KEPT:
                self._replay_packets.popitem(last=False)
        return packet

    async def _recheck_rooms(self, socket: Socket, conn: Connection) -> None:
        """Keep the socket only in the course, managers' and roster rooms its identity may follow now."""
        for room in list(socket.rooms):
            course_id = course_of_room(room)
            if course_id is not None and not await self.service.approved_member(conn.identity, course_id):
                socket.leave(room)
                self._forget_course(conn, course_id)
                log.info("socket %s left a course its refreshed token no longer grants", socket.sid)
            session_id = session_of_room(room)
            if session_id is not None and not await self.service.manages_session(conn.identity, session_id):
                socket.leave(room)
                log.info("socket %s left a roster its refreshed token no longer grants", socket.sid)
            managed_id = course_of_managers_room(room)
            if managed_id is not None and not await self.service.manages_course(conn.identity, managed_id):
                socket.leave(room)
                log.info("socket %s left join requests its refreshed token no longer grants", socket.sid)

    def remove_user_from_course(self, user_id: str, course_id: str) -> None:
        """Take every socket of ``user_id`` on this node out of the course's room."""
        room = course_room(course_id)
        for socket in list(self.user_sockets.get(user_id, ())):
            conn: Connection | None = socket.data
            if conn is None:
                continue
            socket.leave(room)
            socket.leave(managers_room(course_id))
            self._forget_course(conn, course_id)

    def add_user_to_course(self, user_id: str, course_id: str, position: int) -> None:
        """Put every live socket of ``user_id`` on this node in the course's room (an approval):
        they follow the course from stream ``position`` on, as if they had subscribed then."""
        room = course_room(course_id)
        for socket in list(self.user_sockets.get(user_id, ())):
            conn: Connection | None = socket.data
            if conn is None or not conn.is_live():
                continue
            socket.join(room)
            if course_id not in conn.courses:
                conn.courses[course_id] = position
                self.metrics.subscriptions.inc()
                if conn.recovery is not None:
                    conn.recovery.sync_later()  # the pid's state has the course now

    def _forget_course(self, conn: Connection, course_id: str) -> None:
        if course_id in conn.courses:
            del conn.courses[course_id]
            self.metrics.subscriptions.dec()
            if conn.recovery is not None:
                conn.recovery.sync_later()  # the pid's state no longer has the course

    def room_size(self, room: str) -> int:
        """Local participants of a room (this node only)."""
        return self.adapter.room_size(room)

    def local_rooms(self) -> list[str]:
        """The rooms with a participant on this node."""
        return self.adapter.room_names()

    def timer_entries(self) -> int:
        """Live deadlines of this node's timers: the transport's wheel and the tokens' expiry heap."""
        return self.server.engine.live_timer_entries + len(self.deadlines)

    def timer_heap_entries(self) -> int:
        """Entries those timers hold, cancelled and moved ones not yet dropped included."""
        return self.server.engine.timer_entries + self.deadlines.entries

    @property
    def listening(self) -> bool:
        """Whether other nodes' broadcasts reach this node (always, with one node)."""
        return self.adapter.listening if isinstance(self.adapter, PubSubAdapter) else True

    def asgi_app(self, other_app: ASGIApp) -> ASGIApp:
        """Long-polling at ``/socket.io/`` (and websockets, when uvicorn is not given
        :meth:`uvicorn_options`), ``other_app`` for everything else."""
        return self.server.asgi_app(other_app=other_app)

    def uvicorn_options(self) -> dict[str, Any]:
        """What ``uvicorn.Config`` needs to serve websockets below ASGI, through the transport."""
        return uvicorn_options(self.server.engine)

    async def start(self) -> None:
        """Connect to the other nodes (with Redis) before this node takes clients."""
        await self.adapter.start()
        self.codes.start()
        if self.recovery is not None:
            await self.recovery.start()  # the heartbeat that says this node's connections are live

    async def close(self) -> None:
        """Close every transport so that clients reconnect (to this node again, or another).

        This closes at the Engine.IO level on purpose: a Socket.IO DISCONNECT
        packet ("io server disconnect") tells socket.io-client *not* to
        reconnect, which is wrong for a restart or a deploy.
        """
        await self.codes.close()
        self.deadlines.close()
        await self.server.close()
        if self.recovery is not None:
            await self.recovery.idle()  # the disconnects are stored: clients recover on any node
            await self.recovery.stop()

    async def stop_fanout(self) -> None:
        """Stop relaying broadcasts to other nodes (after the notifier's last one)."""
        await self.adapter.stop()
