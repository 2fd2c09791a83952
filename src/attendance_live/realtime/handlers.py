"""The real-time server's client-event handlers: validate, authorize, answer.

Each client event (``subscribeToCourse``, ``checkActiveSessions``, ``refreshToken``, ...) has
one handler here; the dispatcher runs it with the metrics and turns a refusal, a bad payload
or a service error into one ``activeSessionsError``. Part of
:class:`attendance_live.realtime.server.RealtimeServer` (the protocol is summed up there).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from attendance_live.auth.tokens import TokenError, TokenService
from attendance_live.config import Settings
from attendance_live.logs import connection_id
from attendance_live.networks import client_address
from attendance_live.payloads import (
    PayloadError,
    active_sessions_data,
    check_in_code_data,
    error_data,
    require_id,
    roster_data,
    unsubscribed_data,
)
from attendance_live.realtime.checkin import (
    CHECK_IN_EVENT,
    check_in_refusal,
    check_in_success,
    parse_check_in,
    refusal_reason,
)
from attendance_live.realtime.codes import CODE_EVENT, CodeTicker
from attendance_live.realtime.expiry import (
    TOKEN_REFRESHED_EVENT,
    Deadlines,
    expiry_body,
    require_token,
)
from attendance_live.realtime.rooms import Connection, Rooms
from attendance_live.realtime.stream import CourseStream
from attendance_live.service.errors import Forbidden, InvalidInput, NotFound, RateLimited, ServiceError
from attendance_live.transport import Socket
from attendance_live.vocabulary import (
    course_room,
    managers_room,
    session_room,
)

__all__ = ["ERROR_EVENT", "SOCKET_CODES", "ClientEvents", "EventHandler", "socket_code"]

log = logging.getLogger(__name__)

ERROR_EVENT = "activeSessionsError"


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


class _Refusal(Exception):
    """A request the client may not make; answered with an error event."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


EventHandler = Callable[[Socket, Connection, tuple[Any, ...]], Awaitable[dict[str, Any] | None]]

_DATABASE_DOWN = "The server cannot reach its database; try again shortly"


class ClientEvents(Rooms):
    """Client-event handlers of the real-time server (a part of ``RealtimeServer``)."""

    settings: Settings
    tokens: TokenService
    deadlines: Deadlines
    codes: CodeTicker
    stream: CourseStream | None
    _handlers: dict[str, EventHandler]

    # --------------------------------------------------------------- dispatch

    def _dispatcher(self, event: str) -> Callable[..., Awaitable[dict[str, Any] | None]]:
        handler = self._handlers[event]
        seconds = self.metrics.handler_seconds.labels(event)  # once: labels() takes a lock and a lookup

        async def dispatch(socket: Socket, *args: Any) -> dict[str, Any] | None:
            conn: Connection | None = socket.data
            if conn is None or not conn.is_live():
                return None  # past the token's exp: the socket is on its way out
            token = connection_id.set(socket.sid)
            try:
                with seconds.time():
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
                return self._error(socket, event, "internal", _DATABASE_DOWN, args)
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
        message = f"Too many events: at most {self.settings.socket_rate_limit:g} a second; slow down"
        error = (
            self._error(socket, event, "rate_limited", message, tuple(args))
            if conn.bucket.should_warn()
            else None
        )
        if event == CHECK_IN_EVENT:  # a check-in is always answered, in its own shape
            return check_in_refusal("rate_limited", message, 1 / self.settings.socket_rate_limit)
        return () if error is None else error

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
        conn.sessions[session_id] = view.course_id  # left when its course's management is taken away
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
        conn.sessions.pop(session_id, None)
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

    async def _check_in(self, socket: Socket, conn: Connection, args: tuple[Any, ...]) -> dict[str, Any]:
        """``checkIn``: the HTTP check-in's service call, answered ``{ok, record}`` or ``{ok, reason,
        message}`` (``realtime.checkin``); a refusal is also sent as ``activeSessionsError``."""
        try:
            request = parse_check_in(args)
        except PayloadError as exc:
            return self._check_in_refused(socket, args, "invalid_payload", str(exc))
        engine = socket.connection.engine
        address = client_address(engine.remote, engine.forwarded_for, self.settings.trusted_proxies)
        try:
            record = await self.service.check_in(
                conn.identity,
                request.session_id,
                code=request.code,
                address=None if address is None else str(address),
                device_id=request.device_id,
            )
        except RateLimited as exc:
            return self._check_in_refused(socket, args, refusal_reason(exc), exc.message, exc.retry_after)
        except ServiceError as exc:
            return self._check_in_refused(socket, args, refusal_reason(exc), exc.message)
        except (OperationalError, DBAPIError, PoolTimeout, OSError):
            log.exception("database unavailable while handling %s", CHECK_IN_EVENT)
            return self._check_in_refused(socket, args, "unavailable", _DATABASE_DOWN, 2)
        except Exception:
            log.exception("handler for %s failed", CHECK_IN_EVENT)
            return self._check_in_refused(socket, args, "internal", "Internal server error; try again")
        return check_in_success(record.model_dump(mode="json"))

    def _check_in_refused(
        self,
        socket: Socket,
        args: tuple[Any, ...],
        reason: str,
        message: str,
        retry_after: float | None = None,
    ) -> dict[str, Any]:
        self._error(socket, CHECK_IN_EVENT, reason, message, args)
        return check_in_refusal(reason, message, retry_after)
