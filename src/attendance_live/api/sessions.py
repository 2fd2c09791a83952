"""One attendance session: read, check in, mark, end, report."""

from __future__ import annotations

from fastapi import APIRouter, Response

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


@router.get(
    "/{session_id}/report.csv",
    response_class=Response,
    responses={**ERRORS, 200: {"content": {"text/csv": {}}, "description": "One row per roster record"}},
)
async def report(session_id: SessionId, caller: Caller, service: Service) -> Response:
    view, body = await service.report_csv(caller, session_id)
    filename = f"attendance-{view.course_id}-{view.started_at[:10]}-{view.id[:8]}.csv"
    return Response(
        content=body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
