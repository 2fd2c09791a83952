"""Courses and their enrollments, sessions and live snapshot."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Request, Response, status
from fastapi.responses import JSONResponse

from attendance_live.api.deps import Caller, CourseId, Service, UserId
from attendance_live.api.errors import CONFLICT, ERRORS
from attendance_live.api.schemas import (
    CourseCreate,
    CourseUpdate,
    Detail,
    EnrollmentBatch,
    EnrollmentPut,
    JoinCodeCreate,
    SessionStart,
)
from attendance_live.payloads import ActiveSessions, active_sessions_data
from attendance_live.service.roster import RosterImportRefused
from attendance_live.service.roster_rows import RosterRow
from attendance_live.service.views import (
    CourseView,
    EnrollmentView,
    ImportResult,
    InvitationView,
    JoinCodeView,
    SessionView,
)

__all__ = ["router"]

router = APIRouter(prefix="/api/courses", tags=["courses"])


@router.post("", status_code=status.HTTP_201_CREATED, responses={**ERRORS, 409: {"model": Detail}})
async def create_course(body: CourseCreate, caller: Caller, service: Service) -> CourseView:
    """Create a course (teachers and admins); the caller becomes its teacher."""
    return await service.create_course(caller, course_id=body.id, code=body.code, title=body.title)


@router.get("", responses=ERRORS)
async def list_courses(
    caller: Caller,
    service: Service,
    include_archived: Annotated[
        bool, Query(description="Also the archived courses the caller manages (students never see them)")
    ] = False,
) -> list[CourseView]:
    """The courses the caller teaches or is approved in (admins: all); archived ones on request."""
    return await service.list_courses(caller, include_archived=include_archived)


@router.get("/{course_id}", responses=ERRORS)
async def get_course(course_id: CourseId, caller: Caller, service: Service) -> CourseView:
    return await service.get_course(caller, course_id)


@router.patch("/{course_id}", responses=ERRORS)
async def update_course(
    course_id: CourseId, body: CourseUpdate, caller: Caller, service: Service
) -> CourseView:
    """Change the course's code or title (course teacher, admin)."""
    return await service.update_course(caller, course_id, code=body.code, title=body.title)


@router.post("/{course_id}/archive", responses={**ERRORS, 409: {"model": Detail}})
async def archive_course(course_id: CourseId, caller: Caller, service: Service) -> CourseView:
    """Archive: history and reports stay; no new session; hidden from students and the default list.
    409 while a session runs."""
    return await service.archive_course(caller, course_id, archived=True)


@router.post("/{course_id}/unarchive", responses=ERRORS)
async def unarchive_course(course_id: CourseId, caller: Caller, service: Service) -> CourseView:
    return await service.archive_course(caller, course_id, archived=False)


@router.post("/{course_id}/join-code", status_code=status.HTTP_201_CREATED, responses=ERRORS)
async def create_join_code(
    course_id: CourseId,
    caller: Caller,
    service: Service,
    body: Annotated[JoinCodeCreate | None, Body()] = None,
) -> JoinCodeView:
    """A new join code for the course (it replaces the one in force)."""
    body = body or JoinCodeCreate()
    return await service.create_join_code(
        caller, course_id, approval=body.approval, expires_at=body.expires_at
    )


@router.get("/{course_id}/join-code", responses=ERRORS)
async def get_join_code(course_id: CourseId, caller: Caller, service: Service) -> JoinCodeView | None:
    """The join code in force (null when there is none)."""
    return await service.get_join_code(caller, course_id)


@router.delete("/{course_id}/join-code", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS)
async def revoke_join_code(course_id: CourseId, caller: Caller, service: Service) -> Response:
    """Revoke the join code: whoever tries it is told it was revoked."""
    await service.revoke_join_code(caller, course_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/{course_id}/enrollments/{user_id}", responses={**ERRORS, 201: {"model": EnrollmentView}})
async def put_enrollment(
    course_id: CourseId,
    user_id: UserId,
    body: EnrollmentPut,
    caller: Caller,
    service: Service,
    response: Response,
) -> EnrollmentView:
    """Add or change an enrollment (200 when changed, 201 when created)."""
    view, created = await service.put_enrollment(
        caller, course_id, user_id, status=body.status, name=body.name, email=body.email
    )
    if created:
        response.status_code = status.HTTP_201_CREATED
    return view


@router.delete("/{course_id}/enrollments/{user_id}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS)
async def remove_enrollment(
    course_id: CourseId, user_id: UserId, caller: Caller, service: Service
) -> Response:
    """Take a student off the roster; their past attendance records stay in the reports."""
    await service.remove_enrollment(caller, course_id, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


_IMPORT_RESPONSES: dict[int | str, dict[str, object]] = {
    **ERRORS,
    422: {
        "model": ImportResult,
        "description": "A row is bad: nothing was written; `errors` lists every bad row, `detail` sums up",
    },
}


def _refused(exc: RosterImportRefused) -> JSONResponse:
    return JSONResponse({"detail": exc.message, **exc.result.model_dump()}, status_code=422)


_DryRun = Annotated[bool, Query(description="Check and count only; write nothing")]


@router.put("/{course_id}/enrollments", response_model=ImportResult, responses=_IMPORT_RESPONSES)
async def put_enrollments(
    course_id: CourseId, body: EnrollmentBatch, caller: Caller, service: Service, dry_run: _DryRun = False
) -> ImportResult | JSONResponse:
    """Add, change or remove up to 5,000 enrollments at once, all or nothing, with the CSV
    import's rules (`line` in an error is the item's position from 1)."""
    rows = [
        RosterRow(index, e.user_id or None, e.email or None, e.name or None, e.status or None)
        for index, e in enumerate(body.enrollments, start=1)
    ]
    try:
        return await service.import_roster(caller, course_id, rows, dry_run=dry_run)
    except RosterImportRefused as exc:
        return _refused(exc)


@router.post(
    "/{course_id}/enrollments/import",
    response_model=ImportResult,
    responses=_IMPORT_RESPONSES,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {
                    "schema": {"type": "string"},
                    "example": "user_id,email,name,status\ns1,ada@example.edu,Ada Lovelace,approved\n",
                }
            },
        }
    },
)
async def import_enrollments(
    course_id: CourseId, request: Request, caller: Caller, service: Service, dry_run: _DryRun = False
) -> ImportResult | JSONResponse:
    """Import a roster CSV (UTF-8, comma or semicolon; the first line names the columns: user_id,
    email, name, status), up to 10,000 rows, all or nothing."""
    body = await request.body()
    try:
        return await service.import_roster_csv(caller, course_id, body, dry_run=dry_run)
    except RosterImportRefused as exc:
        return _refused(exc)


@router.get(
    "/{course_id}/enrollments.csv",
    response_class=Response,
    responses={**ERRORS, 200: {"content": {"text/csv": {}}, "description": "The roster as CSV"}},
)
async def export_enrollments(course_id: CourseId, caller: Caller, service: Service) -> Response:
    """The roster (enrollments, then email invitations) as CSV; it imports back as it is."""
    body = await service.roster_csv(caller, course_id)
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="roster-{course_id}.csv"'},
    )


@router.get("/{course_id}/invitations", responses=ERRORS)
async def list_invitations(course_id: CourseId, caller: Caller, service: Service) -> list[InvitationView]:
    """Students imported by email who have not signed in yet (enrolled at their first sign-in)."""
    return await service.list_invitations(caller, course_id)


@router.get("/{course_id}/enrollments", responses=ERRORS)
async def list_enrollments(course_id: CourseId, caller: Caller, service: Service) -> list[EnrollmentView]:
    return await service.list_enrollments(caller, course_id)


@router.post("/{course_id}/sessions", status_code=status.HTTP_201_CREATED, responses={**ERRORS, **CONFLICT})
async def start_session(
    course_id: CourseId,
    caller: Caller,
    service: Service,
    body: Annotated[SessionStart | None, Body()] = None,
) -> SessionView:
    """Start an attendance session; every approved student starts absent."""
    body = body or SessionStart()
    return await service.start_session(
        caller,
        course_id,
        topic=body.topic or None,
        max_duration_minutes=body.max_duration_minutes,
        late_after_minutes=body.late_after_minutes,
        check_in_mode=body.check_in_mode,
        code_period_seconds=body.code_period_seconds,
        allowed_networks=body.allowed_networks,
    )


@router.get("/{course_id}/sessions", responses=ERRORS)
async def list_sessions(course_id: CourseId, caller: Caller, service: Service) -> list[SessionView]:
    """The course's sessions, newest first, without records (teacher, admin)."""
    return await service.list_sessions(caller, course_id)


@router.get("/{course_id}/active-sessions", response_model=ActiveSessions, responses=ERRORS)
async def active_sessions(course_id: CourseId, caller: Caller, service: Service) -> dict[str, object]:
    """The same body as the ``activeSessionsData`` Socket.IO event."""
    return active_sessions_data(await service.active_sessions(caller, course_id))
