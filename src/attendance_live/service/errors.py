"""Service errors: what went wrong, in words that say what to do; never how to answer it.

ServiceError
├── InvalidInput   the request is well-formed but not acceptable
├── NotFound       does not exist, or the caller has no relation to it
├── Forbidden      related, but without the right
└── Conflict       the state does not allow it (already ended, already exists)

Each edge maps them to its own answer: ``api.errors`` to an HTTP status,
``realtime.server`` to a socket error code.
"""

from __future__ import annotations

__all__ = ["Conflict", "Forbidden", "InvalidInput", "NotFound", "ServiceError"]


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


class Conflict(ServiceError):
    pass
