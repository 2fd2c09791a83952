"""One attendance session: read, check in, mark, end (its reports: ``api/reports.py``)."""

from __future__ import annotations

from fastapi import APIRouter

from attendance_live.api.deps import Caller, Service, SessionId, UserId
from attendance_live.api.errors import CONFLICT, ERRORS
from attendance_live.api.schemas import RecordPut
from attendance_live.service.views import RecordView, SessionView

__all__ = ["router"]

router = APIRouter(prefix="/api/sessions", tags=["sessions"])


@router.get("/{session_id}", responses=ERRORS)
async def get_session(session_id: SessionId, caller: Caller, service: Service) -> SessionView:
    """The session with statistics and records (a student sees only its own)."""
    return await service.get_session(caller, session_id)


@router.post("/{session_id}/check-in", responses={**ERRORS, **CONFLICT})
async def check_in(session_id: SessionId, caller: Caller, service: Service) -> RecordView:
    """Check the caller in: present, or late after the session's late threshold.

    Idempotent: a repeat, or a record the teacher has already marked, is
    returned unchanged.
    """
    return await service.check_in(caller, session_id)


@router.put("/{session_id}/records/{user_id}", responses={**ERRORS, **CONFLICT})
async def mark_record(
    session_id: SessionId, user_id: UserId, body: RecordPut, caller: Caller, service: Service
) -> RecordView:
    """Set a student's status (teacher override), with optional remarks."""
    return await service.mark_record(caller, session_id, user_id, status=body.status, remarks=body.remarks)


@router.post("/{session_id}/end", responses={**ERRORS, **CONFLICT})
async def end_session(session_id: SessionId, caller: Caller, service: Service) -> SessionView:
    """End the session; the body carries ``final_statistics``."""
    return await service.end_session(caller, session_id)
