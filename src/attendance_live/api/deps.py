"""Typed dependencies: the application context and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from attendance_live.api.client_address import address_of
from attendance_live.api.errors import Unauthorized
from attendance_live.auth.tokens import Identity, TokenError
from attendance_live.context import AppContext
from attendance_live.service.attendance import AttendanceService
from attendance_live.service.reports import CourseReports
from attendance_live.vocabulary import ID_MAX_CHARS, ID_PATTERN

__all__ = [
    "Caller",
    "ClientAddress",
    "Context",
    "CourseId",
    "Reports",
    "Service",
    "SessionId",
    "UserId",
    "authenticate",
    "bearer_token",
    "get_caller",
    "get_client_address",
    "get_context",
    "get_reports",
    "get_service",
]

_bearer = HTTPBearer(auto_error=False, description="A JWT: `Authorization: Bearer <token>`")


# Dependencies are coroutines on purpose: FastAPI runs plain functions in a
# thread pool, two thread hops per request for nothing (seen in the profiles).
async def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


Context = Annotated[AppContext, Depends(get_context)]


async def get_service(context: Context) -> AttendanceService:
    return context.service


Service = Annotated[AttendanceService, Depends(get_service)]


async def get_reports(context: Context) -> CourseReports:
    return context.reports


Reports = Annotated[CourseReports, Depends(get_reports)]

_FIXES = {
    "Authentication required": "send the header Authorization: Bearer <token>",
    "Invalid token": "sign in again to get a valid token",
    "Token expired": "sign in again to get a new token",
}


async def authenticate(context: AppContext, token: str | None) -> Identity:
    """The caller of a bearer ``token``; :class:`Unauthorized` saying how to get a good one."""
    try:
        identity = (await context.tokens.check(token)).identity
    except TokenError as exc:
        raise Unauthorized(f"{exc.message}: {_FIXES[exc.message]}") from None
    if context.check_user is not None:
        context.check_user(identity.user_id)  # RateLimited (429) past HTTP_USER_RATE_LIMIT
    # Operations that reference the caller ensure its row themselves.
    context.service.remember_user_later(identity)
    return identity


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, as ``HTTPBearer`` reads it."""
    scheme, _, token = (authorization or "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None


async def get_caller(
    context: Context,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Identity:
    return await authenticate(context, credentials.credentials if credentials else None)


Caller = Annotated[Identity, Depends(get_caller)]


async def get_client_address(request: Request, context: Context) -> str | None:
    """The client's address: the peer, or behind TRUSTED_PROXIES the forwarded one (api.client_address)."""
    return address_of(request.scope, context.settings.trusted_proxies)


ClientAddress = Annotated[str | None, Depends(get_client_address)]

CourseId = Annotated[str, Path(pattern=ID_PATTERN, max_length=ID_MAX_CHARS)]
SessionId = Annotated[str, Path(pattern=ID_PATTERN, max_length=ID_MAX_CHARS)]
UserId = Annotated[str, Path(pattern=ID_PATTERN, max_length=ID_MAX_CHARS)]
