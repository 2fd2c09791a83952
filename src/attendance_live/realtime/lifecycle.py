"""The real-time server's connection lifecycle: handshake, recovery, expiry and disconnect.

A connection is authenticated from its handshake, limited per user, given its pid and, when
it comes back with one, its courses and the course events it missed (:mod:`realtime.recovery`);
at the token's exp it leaves every room and is closed. Part of
:class:`attendance_live.realtime.server.RealtimeServer` (the protocol is summed up there).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError

from attendance_live.auth.tokens import TokenError, TokenService
from attendance_live.config import Settings
from attendance_live.logs import connection_id
from attendance_live.realtime.collector import CycleCollector
from attendance_live.realtime.expiry import (
    TOKEN_EXPIRED_EVENT,
    Deadlines,
    expiry_body,
)
from attendance_live.realtime.ratelimit import TokenBucket
from attendance_live.realtime.recovery import PidState, RecoveryStore, SharedReads, replay
from attendance_live.realtime.rooms import Connection, Rooms
from attendance_live.realtime.stream import CourseEvent, CourseStream, parse_offset
from attendance_live.transport import (
    ConnectRefused,
    EncodedPacket,
    EngineSocket,
    Namespace,
    Socket,
)
from attendance_live.vocabulary import (
    course_room,
    managers_room,
    user_room,
)

__all__ = ["REPLAY_PACKETS_KEPT", "Lifecycle"]

log = logging.getLogger(__name__)

REPLAY_PACKETS_KEPT = 1024  # recovered events kept encoded (a storm's clients missed the same ones)


class Lifecycle(Rooms):
    """Connection lifecycle and recovery of the real-time server (a part of ``RealtimeServer``)."""

    settings: Settings
    tokens: TokenService
    deadlines: Deadlines
    collector: CycleCollector
    recovery: RecoveryStore | None
    stream: CourseStream | None
    on_resubscribed: Callable[[], Coroutine[Any, Any, None]] | None
    namespace: Namespace
    _shared_reads: SharedReads | None
    _replay_packets: OrderedDict[int, EncodedPacket]

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
        self.collector.closed()
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
