"""``checkIn`` over the live socket: its payload, checked, and its answers.

A student whose dashboard is connected checks in on that socket instead of
opening an HTTP request: ``checkIn {session_id, code?, device_id?}`` with an
acknowledgement. The handler (``realtime.handlers``) calls the very service
function ``POST /api/sessions/{id}/check-in`` calls (``AttendanceService.check_in``:
the same rules, audit, flags, announcements and wrong-code limit), so this
module only reads the payload as strictly as the HTTP body
(``api.schemas.CheckInBody``) and names each refusal:

* ``{"ok": true, "record": {...}}``: the HTTP response's body;
* ``{"ok": false, "reason", "message"}``: ``message`` is the HTTP ``detail``;
  ``reason`` is the HTTP body's ``reason`` where it has one (``code_required``,
  ``code_invalid``, ``network_not_allowed``, ``too_many_attempts``, the last
  with ``retry_after`` in seconds as ``Retry-After`` says it), and otherwise
  what the HTTP status means (:data:`REASONS`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

from attendance_live.payloads import PayloadError, require_id
from attendance_live.service.errors import (
    CheckInRefused,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    ServiceError,
)
from attendance_live.vocabulary import ID_MAX_CHARS, ID_RE

__all__ = [
    "CHECK_IN_EVENT",
    "MAX_CODE_CHARS",
    "REASONS",
    "CheckInRequest",
    "check_in_refusal",
    "check_in_success",
    "parse_check_in",
    "refusal_reason",
]

CHECK_IN_EVENT: Final = "checkIn"
#: As ``CheckInBody.code``: a code is a few characters, spaces and dashes included.
MAX_CODE_CHARS: Final = 32
_FIELDS: Final = frozenset({"session_id", "code", "device_id"})
_EXAMPLE: Final = "socket.emit('checkIn', {session_id: '...', code: '7HKX3M'}, (answer) => ...)"

#: The reason of a refusal whose HTTP answer has none, by the service's error (the HTTP status).
REASONS: Final[dict[type[ServiceError], str]] = {
    InvalidInput: "invalid_payload",  # 422
    NotFound: "not_found",  # 404: no such session, or not an approved student of its course
    Forbidden: "forbidden",  # 403: a teacher or admin, or an enrollment still pending
    Conflict: "session_ended",  # 409
    RateLimited: "rate_limited",  # 429 (the service's limits carry their own reason)
}


@dataclass(frozen=True, slots=True)
class CheckInRequest:
    """A ``checkIn`` payload, checked as ``CheckInBody`` checks the HTTP body."""

    session_id: str
    code: str | None
    device_id: str | None


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def parse_check_in(args: tuple[Any, ...]) -> CheckInRequest:
    """The request in ``checkIn``'s arguments; :class:`PayloadError` naming the problem and the fix."""
    session_id = require_id(args, CHECK_IN_EVENT, "session_id")
    payload: dict[str, Any] = args[0]
    unknown = sorted(str(key) for key in payload if key not in _FIELDS)
    if unknown:
        raise PayloadError(
            f"checkIn does not take {', '.join(repr(k) for k in unknown[:5])}; "
            f"send only session_id, code and device_id: {_EXAMPLE}"
        )
    code = payload.get("code")
    if code is not None:
        if not isinstance(code, str):
            raise PayloadError(
                f"code must be a string ({_kind(code)}); send the code shown in the room as text, "
                "or leave code out for a session without one"
            )
        code = code.strip()
        if len(code) > MAX_CODE_CHARS:
            raise PayloadError(
                f"code is longer than {MAX_CODE_CHARS} characters ({len(code)}); "
                "send the code shown in the room"
            )
    device_id = payload.get("device_id")
    if device_id is not None:
        if not isinstance(device_id, str):
            raise PayloadError(
                f"device_id must be a string ({_kind(device_id)}); "
                "send the id this device keeps, or leave it out"
            )
        device_id = device_id.strip()
        if not ID_RE.match(device_id):
            raise PayloadError(
                f"device_id must be 1 to {ID_MAX_CHARS} letters, digits or . _ : @ -, starting with a "
                "letter or digit; send the id this device keeps (e.g. 'd-3f9a0c'), or leave it out"
            )
    return CheckInRequest(session_id, code, device_id)


def refusal_reason(exc: ServiceError) -> str:
    """The ``reason`` a socket refusal of ``exc`` carries (the HTTP body's, or its status's)."""
    if isinstance(exc, CheckInRefused | RateLimited):
        return exc.reason
    for cls in type(exc).__mro__:
        if cls in REASONS:
            return REASONS[cls]
    return "refused"


def check_in_success(record: dict[str, Any]) -> dict[str, Any]:
    """The acknowledgement of a check-in: the record as the HTTP response's body holds it."""
    return {"ok": True, "record": record}


def check_in_refusal(reason: str, message: str, retry_after: float | None = None) -> dict[str, Any]:
    """The acknowledgement of a refused check-in; ``retry_after`` in whole seconds (at least 1)."""
    answer: dict[str, Any] = {"ok": False, "reason": reason, "message": message}
    if retry_after is not None:
        answer["retry_after"] = max(1, math.ceil(retry_after))
    return answer
