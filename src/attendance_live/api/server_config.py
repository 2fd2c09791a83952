"""``GET /api/config``: what a client needs before and after signing in (never a secret).

Before: how to sign in (``sign_in``): the OpenID Provider the dashboard sends
people to (issuer, public client id, scopes, audience, display name), whether
the demo users or the paste-a-token box are offered, and otherwise how an
operator turns sign-in on. After: the server's defaults that a form should show.
It answers without a token: the sign-in page reads it.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from attendance_live.api.deps import Context
from attendance_live.api.errors import ERRORS

__all__ = ["ServerConfig", "SignInConfig", "router"]

router = APIRouter(prefix="/api", tags=["config"])

# The bounds of SessionStart (api/schemas.py).
_MAX_SESSION_MINUTES = 1440

_HOW_TO_CONFIGURE = (
    "Sign-in is not configured on this server. An operator sets OIDC_ISSUER (the identity "
    "provider's issuer URL) and OIDC_CLIENT_ID (a public client with PKCE whose redirect URI is "
    'this server\'s /signed-in), and restarts it; see docs/operations.md, "Sign-in". To try the '
    "dashboard without a provider, start it with `attendance-live serve --demo`."
)


class SignInConfig(BaseModel):
    mode: Literal["oidc", "demo", "token", "unconfigured"] = Field(
        description="oidc: sign in at the provider below; demo: pick a demo user; token: paste a "
        "token (developer option); unconfigured: sign-in is not set up (see `help`)"
    )
    issuer: str | None = Field(description="OIDC_ISSUER: the OpenID Provider's issuer URL")
    client_id: str | None = Field(description="OIDC_CLIENT_ID: the dashboard's public client id")
    scopes: str = Field(description="OIDC_SCOPES, space-separated")
    audience: str | None = Field(description="OIDC_AUDIENCE, sent as `audience` and `resource` when set")
    display_name: str | None = Field(description="What the sign-in button calls the provider")
    token_form: bool = Field(
        description="Whether the paste-a-token box is offered (--demo or SIGN_IN_TOKEN_FORM)"
    )
    demo: bool = Field(description="Whether the demo users are offered (serve --demo)")
    help: str | None = Field(description="With mode unconfigured: how an operator turns sign-in on")


class ServerConfig(BaseModel):
    session_max_minutes: int = Field(description="A session's length when max_duration_minutes is omitted")
    late_after_minutes: int = Field(
        description="The late threshold when late_after_minutes is omitted (capped at the session's length)"
    )
    max_duration_minutes_limit: int = Field(description="The largest max_duration_minutes accepted")
    sign_in: SignInConfig = Field(description="How the dashboard signs people in")
    public_url: str = Field(description="PUBLIC_URL: the issuer of the server's own session tokens")


@router.get("/config", responses=ERRORS)
async def server_config(context: Context) -> ServerConfig:
    """How to sign in, and the defaults for starting a session (no token needed)."""
    settings = context.settings
    service = context.service
    oidc = settings.oidc_issuer is not None
    token_form = context.demo or settings.sign_in_token_form
    mode: Literal["oidc", "demo", "token", "unconfigured"]
    if oidc:
        mode = "oidc"
    elif context.demo:
        mode = "demo"
    elif token_form:
        mode = "token"
    else:
        mode = "unconfigured"
    return ServerConfig(
        session_max_minutes=service.default_max_minutes,
        late_after_minutes=service.default_late_minutes,
        max_duration_minutes_limit=_MAX_SESSION_MINUTES,
        sign_in=SignInConfig(
            mode=mode,
            issuer=settings.oidc_issuer,
            client_id=settings.oidc_client_id if oidc else None,
            scopes=settings.oidc_scopes,
            audience=settings.oidc_audience if oidc else None,
            display_name=settings.oidc_name if oidc else None,
            token_form=token_form,
            demo=context.demo,
            help=_HOW_TO_CONFIGURE if mode == "unconfigured" else None,
        ),
        public_url=settings.issuer_url,
    )
