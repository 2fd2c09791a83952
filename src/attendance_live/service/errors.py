"""Service errors. Each carries an HTTP status and a message that says what to do.

ServiceError
├── InvalidInput      422  the request is well-formed but not acceptable
├── NotFound          404  does not exist, or the caller has no relation to it
├── Forbidden         403  related, but without the right
├── Conflict          409  the state does not allow it (already ended, already exists)
└── Unavailable       503  the database cannot be reached right now
"""

from __future__ import annotations

__all__ = ["Conflict", "Forbidden", "InvalidInput", "NotFound", "ServiceError", "Unavailable"]


class ServiceError(Exception):
    status_code = 400
    code = "invalid_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(ServiceError):
    status_code = 422
    code = "invalid_payload"


class NotFound(ServiceError):
    status_code = 404
    code = "forbidden"  # on sockets, "not found" and "not allowed" must look the same


class Forbidden(ServiceError):
    status_code = 403
    code = "forbidden"


class Conflict(ServiceError):
    status_code = 409
    code = "conflict"


class Unavailable(ServiceError):
    status_code = 503
    code = "internal"
