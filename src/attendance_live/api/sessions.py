"""One attendance session: read, check in, mark, end (its reports: ``api/reports.py``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query

from attendance_live.api.deps import Caller, ClientAddress, Service, SessionId, UserId
from attendance_live.api.errors import CHECK_IN_ERRORS, CONFLICT, ERRORS
from attendance_live.api.schemas import CheckInBody, RecordPut
from attendance_live.service.views import CheckInCodeView, RecordsPage, RecordView, SessionView

__all__ = ["router"]

router = APIRouter(prefix="/api/sessions", tags=["sessions"])


@router.get("/{session_id}", responses=ERRORS)
async def get_session(session_id: SessionId, caller: Caller, service: Service) -> SessionView:
    """The session with statistics and records (a student sees only its own)."""
    return await service.get_session(caller, session_id)


@router.get("/{session_id}/records", responses=ERRORS)
async def list_records(
    session_id: SessionId,
    caller: Caller,
    service: Service,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="Records to skip")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="Records in the page (1 to 1000)")] = 500,
) -> RecordsPage:
    """One page of the session's roster, ordered by name then user id, with `total`; a student
    sees only its own record. The start's answer carries no records: the roster comes from here
    (or the whole of it with the session, or live from the `subscribeToSession` subscription)."""
    return await service.records_page(caller, session_id, offset, limit)


@router.post("/{session_id}/check-in", responses=CHECK_IN_ERRORS)
async def check_in(
    session_id: SessionId,
    caller: Caller,
    service: Service,
    address: ClientAddress,
    body: Annotated[CheckInBody | None, Body()] = None,
) -> RecordView:
    """Check the caller in: present, or late after the session's late threshold.

    Idempotent: a repeat, or a record the teacher has already marked, is
    returned unchanged. In `code` mode the body must carry the code shown in
    the room (the current one, or the previous one for
    `CHECK_IN_CODE_GRACE_SECONDS` after it changed); with `allowed_networks`,
    the client address must be in one of them. A refusal is a 403 with a
    `reason` and changes nothing.

    Served by `api.checkin_route` (a lean handler in front of the router, for
    lecture-hall bursts); this route documents it and serves the same answers.
    """
    body = body or CheckInBody()
    return await service.check_in(
        caller, session_id, code=body.code, address=address, device_id=body.device_id
    )


@router.get("/{session_id}/check-in-code", responses={**ERRORS, **CONFLICT})
async def check_in_code(session_id: SessionId, caller: Caller, service: Service) -> CheckInCodeView:
    """The check-in code in force (teacher, admin); 409 when the session has ended or is in open mode.

    The code changes every `code_period_seconds` (at `expires_at`); the
    teacher's `subscribeToSession` also receives it as `checkInCode`.
    """
    return await service.check_in_code(caller, session_id)


@router.put("/{session_id}/records/{user_id}", responses={**ERRORS, **CONFLICT})
async def mark_record(
    session_id: SessionId,
    user_id: UserId,
    body: RecordPut,
    caller: Caller,
    service: Service,
    address: ClientAddress,
) -> RecordView:
    """Set a student's status (teacher override), with optional remarks."""
    return await service.mark_record(
        caller, session_id, user_id, status=body.status, remarks=body.remarks, address=address
    )


@router.post("/{session_id}/end", responses={**ERRORS, **CONFLICT})
async def end_session(session_id: SessionId, caller: Caller, service: Service) -> SessionView:
    """End the session; the body carries ``final_statistics``."""
    return await service.end_session(caller, session_id)
