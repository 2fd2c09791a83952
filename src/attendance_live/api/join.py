"""``POST /api/join``: a signed-in student asks to join a course with its join code."""

from __future__ import annotations

from fastapi import APIRouter

from attendance_live.api.deps import Caller, Service
from attendance_live.api.errors import ERRORS
from attendance_live.api.schemas import Detail, JoinBody
from attendance_live.service.views import JoinView

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["courses"])


@router.post(
    "/join",
    responses={
        **ERRORS,
        403: {"model": Detail, "description": "The code was revoked or has expired, or the teacher declined"},
        404: {"model": Detail, "description": "No course has this code"},
        429: {"model": Detail, "description": "Too many wrong codes; wait `Retry-After` seconds"},
    },
)
async def join(body: JoinBody, caller: Caller, service: Service) -> JoinView:
    """Join the course of a join code: pending (the teacher approves) or approved at once.
    Joining again changes nothing."""
    return await service.join(caller, body.code)
