"""``GET /.well-known/jwks.json``: the public keys of the server's own session tokens."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from attendance_live.api.deps import Context

__all__ = ["router"]

router = APIRouter(tags=["sign-in"])


@router.get("/.well-known/jwks.json")
async def jwks(context: Context) -> JSONResponse:
    """The public keys (JWK Set, Ed25519) that verify the server's session tokens; never a private one."""
    body: dict[str, Any] = await context.sessions.published()
    return JSONResponse(
        body,
        media_type="application/jwk-set+json",
        headers={"Cache-Control": "public, max-age=300"},
    )
