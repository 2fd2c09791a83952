"""Service errors: what went wrong, in words that say what to do; never how to answer it.

ServiceError
├── InvalidInput   the request is well-formed but not acceptable
├── NotFound       does not exist, or the caller has no relation to it
├── Forbidden      related, but without the right
│   └── CheckInRefused   a check-in without the right code or from the wrong network (``reason``)
├── Conflict       the state does not allow it (already ended, already exists)
└── RateLimited    too many attempts or requests for now (``reason``, ``retry_after``)

Each edge maps them to its own answer: ``api.errors`` to an HTTP status,
``realtime.server`` to a socket error code.
"""

from __future__ import annotations

from attendance_live.vocabulary import CheckInRefusal

__all__ = [
    "CheckInRefused",
    "Conflict",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "RateLimited",
    "ServiceError",
]


class ServiceError(Exception):
    """Base of the service's refusals; ``message`` is for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(ServiceError):
    pass


class NotFound(ServiceError):
    pass


class Forbidden(ServiceError):
    pass


class CheckInRefused(Forbidden):
    """A check-in refused by the session's rules; ``reason`` says which (the API answers it)."""

    def __init__(self, reason: CheckInRefusal, message: str) -> None:
        super().__init__(message)
        self.reason: CheckInRefusal = reason


class Conflict(ServiceError):
    pass


class RateLimited(ServiceError):
    """Past a limit (``attendance_live.limits``): ``reason`` names which, ``retry_after`` (seconds)
    says when the caller may go on. HTTP answers 429 with ``Retry-After``."""

    def __init__(self, reason: str, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry_after = retry_after
