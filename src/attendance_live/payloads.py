"""The Socket.IO protocol's shapes: what clients send, checked, and everything the server sends.

Every payload the server emits is built here from the service's views, so the
protocol can be read in this one file against docs/protocol.md. It sits below both
its users: ``realtime/`` (the handlers and the relay) and ``service/outbox.py`` (which
stores the course events' payloads) take the shapes from here, so the service never
imports the real-time layer:

* ``courseSessionStarted``  ``started_payload``
* ``courseSessionEnded``    ``ended_payload``
* ``activeSessionsData`` and ``activeSessionsResponse``  ``active_sessions_data``
  (its shape, with the seed's field names, is :class:`ActiveSessions`, which
  ``GET /api/courses/{id}/active-sessions`` returns too)
* ``sessionRosterData``     ``roster_data``
* ``myAttendanceUpdated``, ``attendanceUpdated``  ``record_data``, ``roster_update_data``
* ``checkInCode``           ``check_in_code_data``
* ``activeSessionsError``   ``error_data``
* the acknowledgement of an unsubscribe  ``unsubscribed_data``

Client payloads arrive as whatever a client chose to send: nothing, a list,
``null``, a number, bytes from a binary attachment. ``require_id`` accepts only
an object whose field is a non-empty string of at most 128 characters, and
otherwise raises :class:`PayloadError` with a message that says what to send.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel

from attendance_live.service.views import (
    ActiveSessionsView,
    CheckInCodeView,
    RecordView,
    SessionView,
    Statistics,
)
from attendance_live.vocabulary import ID_MAX_CHARS

__all__ = [
    "MAX_ID_CHARS",
    "ActiveSession",
    "ActiveSessions",
    "PayloadError",
    "active_sessions_data",
    "check_in_code_data",
    "ended_payload",
    "enrollment_changed_data",
    "enrollment_requested_data",
    "error_data",
    "record_data",
    "require_id",
    "roster_data",
    "roster_update_data",
    "started_payload",
    "unsubscribed_data",
]

MAX_ID_CHARS: Final = ID_MAX_CHARS


class PayloadError(ValueError):
    """A client payload is malformed; the message tells the client what to send."""


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bytes | bytearray):
        return "binary data"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def require_id(args: tuple[Any, ...], event: str, field: str) -> str:
    """The ``field`` of the first argument of ``event``, validated."""
    example = f"socket.emit('{event}', {{{field}: '...'}})"
    if not args:
        raise PayloadError(f"{event} needs a payload {{{field}}}; send {example}")
    payload = args[0]
    if not isinstance(payload, dict):
        raise PayloadError(
            f"{event} payload must be an object with {field}, not {_kind(payload)}; send {example}"
        )
    value = payload.get(field)
    if not isinstance(value, str):
        got = "missing" if field not in payload else _kind(value)
        raise PayloadError(f"{field} must be a non-empty string ({got}); send {example}")
    if not value.strip():
        raise PayloadError(f"{field} must not be empty; send {example}")
    if len(value) > MAX_ID_CHARS:
        raise PayloadError(
            f"{field} is longer than {MAX_ID_CHARS} characters ({len(value)}); "
            "send the id as the server gave it"
        )
    return value


def started_payload(view: SessionView) -> dict[str, Any]:
    return {
        "course_id": view.course_id,
        "session_id": view.id,
        "teacher_id": view.teacher_id,
        "teacher_name": view.teacher_name,
        "started_by": view.started_by,
        "started_at": view.started_at,
        "topic": view.topic,
    }


def ended_payload(view: SessionView) -> dict[str, Any]:
    final = view.final_statistics or view.statistics
    return {
        "course_id": view.course_id,
        "session_id": view.id,
        "teacher_id": view.teacher_id,
        "teacher_name": view.teacher_name,
        "final_statistics": final.model_dump(),
        "ended_by": view.ended_by,
        "ended_at": view.ended_at,
        "topic": view.topic,
    }


class ActiveSession(BaseModel):
    sessionId: str  # noqa: N815 - the seed's field names
    teacherId: str  # noqa: N815
    studentCount: int  # noqa: N815
    startedAt: str  # noqa: N815
    topic: str | None
    totalStudents: int  # noqa: N815


class ActiveSessions(BaseModel):
    """The body of ``activeSessionsData`` (and of the HTTP active-sessions read)."""

    course_id: str
    activeSessions: list[ActiveSession]  # noqa: N815


def active_sessions_data(view: ActiveSessionsView) -> dict[str, Any]:
    """``activeSessionsData`` / ``activeSessionsResponse``: the seed's shape (:class:`ActiveSessions`)."""
    return {
        "course_id": view.course_id,
        "activeSessions": [
            {
                "sessionId": s.session_id,
                "teacherId": s.teacher_id,
                "studentCount": s.student_count,
                "startedAt": s.started_at,
                "topic": s.topic,
                "totalStudents": s.total_students,
            }
            for s in view.sessions
        ],
    }


def roster_data(view: SessionView) -> dict[str, Any]:
    """``sessionRosterData``: the whole roster, for its teacher on subscribe."""
    return {
        "session_id": view.id,
        "course_id": view.course_id,
        "status": view.status,
        "statistics": view.statistics.model_dump(),
        "records": [r.model_dump() for r in view.records],
    }


def record_data(course_id: str, session_id: str, record: RecordView) -> dict[str, Any]:
    """``myAttendanceUpdated``: one record that changed, to its student (without the audit trail)."""
    return {"session_id": session_id, "course_id": course_id, **record.model_dump(exclude={"audit"})}


def roster_update_data(
    course_id: str, session_id: str, record: RecordView, statistics: Statistics
) -> dict[str, Any]:
    """``attendanceUpdated``: the record with its audit, and the session's statistics, to the roster."""
    return {
        "session_id": session_id,
        "course_id": course_id,
        **record.model_dump(),
        "statistics": statistics.model_dump(),
    }


def enrollment_changed_data(course_id: str, status: str) -> dict[str, Any]:
    """``enrollmentChanged``: the student's own enrollment moved (approved, pending, rejected,
    removed), to that student's sockets."""
    return {"course_id": course_id, "status": status}


def enrollment_requested_data(course_id: str, row: dict[str, Any]) -> dict[str, Any]:
    """``enrollmentRequested``: a student asked to join with the join code, to the course's managers."""
    return {
        "course_id": course_id,
        "user_id": row["user_id"],
        "name": row.get("name") or row["user_id"],
        "email": row.get("email"),
        "status": row["status"],
        "requested_at": row.get("requested_at"),
    }


def check_in_code_data(view: CheckInCodeView) -> dict[str, Any]:
    """``checkInCode``: the code in force, to the session's teacher (same body as the HTTP read)."""
    return view.model_dump()


def error_data(event: str, code: str, message: str, args: tuple[Any, ...]) -> dict[str, Any]:
    """``activeSessionsError``: with the ``course_id`` or ``session_id`` the client sent, if any."""
    payload: dict[str, Any] = {"message": message, "code": code, "event": event}
    first = args[0] if args else None
    if isinstance(first, dict):
        for key in ("course_id", "session_id"):
            value = first.get(key)
            if isinstance(value, str) and len(value) <= MAX_ID_CHARS:
                payload[key] = value
    return payload


def unsubscribed_data(field: str, value: str) -> dict[str, Any]:
    """The acknowledgement of ``unsubscribeFromCourse`` / ``unsubscribeFromSession``."""
    return {field: value, "subscribed": False}
