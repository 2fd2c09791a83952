"""Every error leaves the API as ``{"detail": "..."}`` with the right status.

The service's errors carry no HTTP status: ``STATUS`` maps each to its own
here (``InvalidInput`` 422, ``NotFound`` 404, ``Forbidden`` 403, ``Conflict``
409, ``RateLimited`` 429 with ``Retry-After``); a missing or bad token is :class:`Unauthorized`, 401 with
``WWW-Authenticate: Bearer``. ``ERRORS`` and ``CONFLICT`` document these
answers in the OpenAPI schema of the routes.

Validation errors keep pydantic's list in ``errors`` and sum it up in
``detail``; a body that is not JSON is a 400; a database that cannot be reached
is a 503 that says to retry; anything unexpected is a 500 with a reference
that is also in the log (and never a traceback in the response).
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.routing import Match

from attendance_live.api.schemas import CheckInRefusal, Detail, Limited
from attendance_live.service.errors import (
    CheckInRefused,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    ServiceError,
)

__all__ = [
    "CHECK_IN_ERRORS",
    "CONFLICT",
    "DASHBOARD_ROUTE",
    "ERRORS",
    "STATUS",
    "UNAVAILABLE",
    "Unauthorized",
    "allowed_methods",
    "database_error_name",
    "error_response",
    "install_error_handlers",
    "retry_after",
    "service_error_body",
    "status_of",
]

log = logging.getLogger(__name__)

UNAVAILABLE = (
    "The database is unavailable right now; try again in a moment "
    "(a change that was being saved when it went away may or may not have been kept: "
    "read before you repeat it)"
)


STATUS: dict[type[ServiceError], int] = {
    InvalidInput: 422,
    NotFound: 404,
    Forbidden: 403,
    Conflict: 409,
    RateLimited: 429,
}

# The answers most routes can give, for their OpenAPI ``responses``.
ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": Detail, "description": "Missing, invalid or expired token"},
    403: {"model": Detail, "description": "Related to the course, but without the right"},
    404: {"model": Detail, "description": "No such course, or no relation to it"},
}
CONFLICT: dict[int | str, dict[str, object]] = {
    409: {"model": Detail, "description": "The session has ended"}
}
# The check-in's answers: a 403 may carry the ``reason`` the session's rules refused it for.
CHECK_IN_ERRORS: dict[int | str, dict[str, object]] = {
    **ERRORS,
    **CONFLICT,
    403: {
        "model": CheckInRefusal,
        "description": (
            "Not allowed to check in: a pending enrollment, a teacher or admin (no `reason`), "
            "or refused by the session's rules (`reason`: code_required, code_invalid, network_not_allowed)"
        ),
    },
    429: {
        "model": Limited,
        "description": (
            "Too many wrong codes for this session (`reason`: too_many_attempts; CHECK_IN_CODE_ATTEMPTS "
            "per CHECK_IN_CODE_WINDOW_SECONDS), or too many requests; `Retry-After` says when to try again"
        ),
    },
}


class Unauthorized(Exception):
    """No token, or one that does not verify; ``message`` says how to get a good one."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def status_of(exc: ServiceError) -> int:
    """The HTTP status of a service error (the nearest mapped class; 400 for an unmapped one)."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def _where(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "path", "query")] or [str(loc[0]) if loc else "request"]
    return ".".join(parts)


def service_error_body(exc: ServiceError) -> dict[str, str]:
    """``{"detail"}``, plus ``reason`` for a refused check-in or a limit."""
    if isinstance(exc, CheckInRefused | RateLimited):
        return {"detail": exc.message, "reason": exc.reason}
    return {"detail": exc.message}


def retry_after(seconds: float) -> str:
    """``Retry-After``'s value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    headers = {"Retry-After": retry_after(exc.retry_after)} if isinstance(exc, RateLimited) else None
    return JSONResponse(service_error_body(exc), status_code=status_of(exc), headers=headers)


async def _unauthorized(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Unauthorized)
    return JSONResponse({"detail": exc.message}, status_code=401, headers={"WWW-Authenticate": "Bearer"})


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"No such endpoint: {request.method} {request.url.path}; see /docs"
    elif exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}; see /docs"
        allowed = allowed_methods(request)
        if allowed:  # every route's methods, where Starlette names only the first route's
            return JSONResponse(
                {"detail": detail},
                status_code=405,
                headers={**(exc.headers or {}), "Allow": ", ".join(allowed)},
            )
    return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)


#: The name of the dashboard's catch-all GET route (app.py), which matches every path.
DASHBOARD_ROUTE = "dashboard"
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """The methods the app serves on the request's path (for ``Allow``), the dashboard's
    catch-all aside; empty when no route has this path."""
    routes = [route for route in request.app.router.routes if getattr(route, "name", None) != DASHBOARD_ROUTE]
    allowed = []
    for method in _METHODS:
        probe = {**request.scope, "method": method}
        if any(route.matches(probe)[0] is Match.FULL for route in routes):
            allowed.append(method)
    return allowed


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in exc.errors()
    ]
    if any(e["type"] == "json_invalid" for e in errors):
        return JSONResponse(
            {"detail": "The request body is not valid JSON; send a JSON object", "errors": errors},
            status_code=400,
        )
    summary = "; ".join(f"{_where(tuple(e['loc']))}: {e['msg']}" for e in errors[:5])
    return JSONResponse({"detail": f"Invalid request: {summary}", "errors": errors}, status_code=422)


async def _database_down(request: Request, exc: Exception) -> JSONResponse:
    log.error(
        "database unavailable during %s %s: %s", request.method, request.url.path, database_error_name(exc)
    )
    return JSONResponse({"detail": UNAVAILABLE}, status_code=503, headers={"Retry-After": "2"})


def database_error_name(exc: BaseException) -> str:
    """The error's class, the driver's, and the SQLSTATE when there is one.

    Never the message: it may hold the row's values.
    """
    orig = getattr(exc, "orig", None)
    if orig is None:
        return type(exc).__name__
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return f"{type(exc).__name__} ({type(orig).__name__}{f', SQLSTATE {state}' if state else ''})"


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    reference = uuid.uuid4().hex[:12]
    log.exception("unhandled error %s during %s %s", reference, request.method, request.url.path)
    return JSONResponse(
        {"detail": f"Internal server error (reference {reference}); the server has logged it"},
        status_code=500,
    )


_Handler = Callable[[Request, Exception], Awaitable[JSONResponse]]

_HANDLERS: dict[type[Exception], _Handler] = {
    ServiceError: _service_error,
    Unauthorized: _unauthorized,
    HTTPException: _http_error,
    RequestValidationError: _validation_error,
    OperationalError: _database_down,
    DBAPIError: _database_down,
    PoolTimeout: _database_down,
    # Raised as they are (not wrapped by SQLAlchemy) when a new connection is refused.
    # Registered here rather than caught in the catch-all: Starlette re-raises what
    # reaches that one, and uvicorn then drops the kept-alive connection.
    OSError: _database_down,
    asyncpg.PostgresError: _database_down,
    Exception: _unexpected,
}


async def error_response(request: Request, exc: Exception) -> JSONResponse:
    """The answer to ``exc``, chosen as Starlette chooses a handler (the nearest class in its MRO).

    For handlers outside the router (``api.checkin_route``), so they answer as the routes do.
    """
    for cls in type(exc).__mro__:
        handler = _HANDLERS.get(cls)
        if handler is not None:
            return await handler(request, exc)
    return await _unexpected(request, exc)


def install_error_handlers(app: FastAPI) -> None:
    for cls, handler in _HANDLERS.items():
        app.add_exception_handler(cls, handler)
