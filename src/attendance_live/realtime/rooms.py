"""The real-time server's room bookkeeping: which course rooms each socket is in, and why.

``Connection`` is what the server keeps per socket; :class:`Rooms` keeps a socket's
courses, its rooms and the subscription gauge in step when a user is approved into a course,
removed from one, made or unmade a co-manager of one, or refreshes to a token that grants less. Part of
:class:`attendance_live.realtime.server.RealtimeServer` (the protocol is summed up there).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

from attendance_live.auth.tokens import Identity
from attendance_live.metrics import Metrics
from attendance_live.realtime.ratelimit import TokenBucket
from attendance_live.realtime.recovery import PidState
from attendance_live.service.attendance import AttendanceService
from attendance_live.transport import (
    Adapter,
    Socket,
)
from attendance_live.vocabulary import (
    course_of_managers_room,
    course_of_room,
    course_room,
    managers_room,
    session_of_room,
    session_room,
)

__all__ = ["Connection", "Rooms"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Connection:
    """What the server keeps per connected socket (freed on disconnect)."""

    identity: Identity
    bucket: TokenBucket
    #: Course id -> the stream position at which the socket joined the course's room.
    courses: dict[str, int] = field(default_factory=dict)
    #: Session id -> its course id, for each session roster the socket follows.
    sessions: dict[str, str] = field(default_factory=dict)
    expires_at: float = math.inf  # the token's exp (epoch seconds)
    expired: bool = False  # set at exp: the socket is out of its rooms and being disconnected
    #: Connection state recovery: the pid's state (None when recovery is off).
    recovery: PidState | None = None

    def is_live(self) -> bool:
        return not self.expired and time.time() < self.expires_at


class Rooms:
    """Room bookkeeping of the real-time server (a part of ``RealtimeServer``)."""

    service: AttendanceService
    metrics: Metrics
    user_sockets: dict[str, set[Socket]]
    adapter: Adapter

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
                conn.sessions.pop(session_id, None)
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

    def manager_changed(self, user_id: str, course_id: str, role: str, position: int) -> None:
        """A co-manager added, changed (``role`` ``teacher``, ``ta``) or removed (``removed``)."""
        if role == "removed":
            self.remove_manager_from_course(user_id, course_id)
        else:
            self.add_manager_to_course(user_id, course_id, position)

    def add_manager_to_course(self, user_id: str, course_id: str, position: int) -> None:
        """A new co-manager: every live socket of ``user_id`` on this node follows the course (as
        an approval does) and gets its join requests (the managers' room)."""
        self.add_user_to_course(user_id, course_id, position)
        for socket in list(self.user_sockets.get(user_id, ())):
            conn: Connection | None = socket.data
            if conn is not None and conn.is_live():
                socket.join(managers_room(course_id))

    def remove_manager_from_course(self, user_id: str, course_id: str) -> None:
        """A co-manager no more: out of the course's room, its managers' room and the rosters of its
        sessions, at once (an admin's socket keeps them: being admin still grants them)."""
        for socket in list(self.user_sockets.get(user_id, ())):
            conn: Connection | None = socket.data
            if conn is None or conn.identity.is_admin:
                continue
            socket.leave(course_room(course_id))
            socket.leave(managers_room(course_id))
            self._forget_course(conn, course_id)
            for session_id, of_course in list(conn.sessions.items()):
                if of_course == course_id:
                    socket.leave(session_room(session_id))
                    del conn.sessions[session_id]

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
