"""``GET /api/config``: the server's defaults that a client's forms should show."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from attendance_live.api.deps import Caller, Service
from attendance_live.api.errors import ERRORS

__all__ = ["ServerConfig", "router"]

router = APIRouter(prefix="/api", tags=["config"])

# The bounds of SessionStart (api/schemas.py).
_MAX_SESSION_MINUTES = 1440


class ServerConfig(BaseModel):
    session_max_minutes: int = Field(description="A session's length when max_duration_minutes is omitted")
    late_after_minutes: int = Field(
        description="The late threshold when late_after_minutes is omitted (capped at the session's length)"
    )
    max_duration_minutes_limit: int = Field(description="The largest max_duration_minutes accepted")


@router.get("/config", responses=ERRORS)
async def server_config(caller: Caller, service: Service) -> ServerConfig:
    """Defaults for starting a session, so that a form shows what the server will do."""
    return ServerConfig(
        session_max_minutes=service.default_max_minutes,
        late_after_minutes=service.default_late_minutes,
        max_duration_minutes_limit=_MAX_SESSION_MINUTES,
    )
