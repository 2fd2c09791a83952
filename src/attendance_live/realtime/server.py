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
* ``checkIn {session_id, code?, device_id?}`` → the HTTP check-in's service call, acknowledged
  ``{ok: true, record}`` or ``{ok: false, reason, message}`` (``realtime.checkin``)

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

from collections import OrderedDict
from collections.abc import Callable, Coroutine
from typing import Any

from starlette.types import ASGIApp

from attendance_live.auth.tokens import TokenService
from attendance_live.config import Settings
from attendance_live.metrics import Metrics
from attendance_live.realtime.codes import CodeTicker
from attendance_live.realtime.collector import CycleCollector
from attendance_live.realtime.expiry import Deadlines
from attendance_live.realtime.handlers import ClientEvents, EventHandler
from attendance_live.realtime.lifecycle import Lifecycle
from attendance_live.realtime.recovery import RecoveryStore, SharedReads
from attendance_live.realtime.stream import CourseStream
from attendance_live.service.attendance import AttendanceService
from attendance_live.transport import (
    Adapter,
    EncodedPacket,
    InMemoryAdapter,
    PubSubAdapter,
    RedisAdapter,
    Socket,
    SocketServer,
    TransportSettings,
    uvicorn_options,
)
from attendance_live.transport.redis_adapter import DEFAULT_CHANNEL

__all__ = ["RealtimeServer"]


class RealtimeServer(Lifecycle, ClientEvents):
    """The seed's Socket.IO protocol on the transport's default namespace.

    Its concerns are in their own modules: the connection lifecycle and recovery
    (``realtime.lifecycle``), the client-event handlers (``realtime.handlers``) and
    the room bookkeeping (``realtime.rooms``); this class wires them to the transport.
    """

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
        self.collector = CycleCollector(lambda: len(self.namespace.sockets))
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
            "checkIn": self._check_in,
        }
        for name in self._handlers:
            self.namespace.on(name, self._dispatcher(name))
        self.namespace.use(self._rate_limit)

    # -------------------------------------------------------------- lifecycle
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
