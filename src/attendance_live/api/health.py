"""Liveness, readiness, who-am-I, and the demo user list."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from attendance_live.api.deps import Caller, Context, Service
from attendance_live.demo import demo_listing
from attendance_live.service.errors import NotFound
from attendance_live.service.views import UserView

__all__ = ["router"]

router = APIRouter()


@router.get("/healthz", tags=["health"])
async def healthz(context: Context) -> dict[str, str | bool]:
    """Liveness: the process answers. ``demo`` says whether ``/api/demo/users`` is served."""
    return {"status": "ok", "demo": context.demo}


@router.get("/readyz", tags=["health"], responses={503: {"description": "A dependency is down"}})
async def readyz(context: Context) -> JSONResponse:
    """Readiness: the database answers (and Redis, and the JWKS provider, when configured)."""
    checks: dict[str, str] = {}
    try:
        await context.database.ping()
        checks["database"] = "ok"
    except Exception as exc:  # any failure means not ready; say which
        checks["database"] = f"down: {type(exc).__name__}"
    checks["redis"] = await context.redis_state() if context.redis_state else "disabled"
    ready = all(v in ("ok", "disabled") for v in checks.values())
    # The provider's keys: cached keys keep verifying through an outage, so only
    # "no key at all" makes this node unready; "degraded" is shown, not fatal.
    keys = context.tokens.state()
    if keys is not None:  # only with JWKS_URL, or OIDC_ISSUER's discovery
        settings = context.settings
        if settings.oidc_issuer is not None and settings.jwks_url is None:
            checks["oidc"] = f"{keys.text} (OIDC_ISSUER {settings.oidc_issuer})"
        else:
            checks["jwks"] = keys.text
        ready = ready and keys.usable
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", **checks}, status_code=200 if ready else 503
    )


@router.get("/api/me", tags=["users"])
async def me(caller: Caller, service: Service) -> UserView:
    """Who the token says the caller is."""
    return await service.me(caller)


@router.get("/api/demo/users", tags=["demo"])
async def demo_users(context: Context) -> dict[str, Any]:
    """The demo course's users with fresh tokens; only when started with ``serve --demo``."""
    if not context.demo:
        raise NotFound("Demo mode is off; start the server with `attendance-live serve --demo`")
    return demo_listing(context.tokens)
