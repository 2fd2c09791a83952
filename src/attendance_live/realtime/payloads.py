"""Validation of client payloads and the shapes of what the server sends.

Client payloads arrive as whatever a client chose to send: nothing, a list,
``null``, a number, bytes from a binary attachment. ``require_id`` accepts only
an object whose field is a non-empty string of at most 128 characters, and
otherwise raises :class:`PayloadError` with a message that says what to send.
"""

from __future__ import annotations

from typing import Any, Final

from attendance_live.service.views import SessionView

__all__ = ["MAX_ID_CHARS", "PayloadError", "ended_payload", "require_id", "started_payload"]

MAX_ID_CHARS: Final = 128


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
        raise PayloadError(f"{field} is longer than {MAX_ID_CHARS} characters ({len(value)})")
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
