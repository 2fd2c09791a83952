"""Reports: the course report (JSON, _CSV), the session _CSV, and both as xAPI statements."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from attendance_live.api.deps import Caller, CourseId, Reports, SessionId, UserId
from attendance_live.api.errors import ERRORS
from attendance_live.api.schemas import Detail
from attendance_live.service.report_views import CourseReport, StudentHistory
from attendance_live.service.reports import parse_day

__all__ = ["router"]

router = APIRouter(tags=["reports"])

_INVALID_RANGE: dict[int | str, dict[str, object]] = {
    **ERRORS,
    422: {"model": Detail, "description": "`from` or `to` is not YYYY-MM-DD, or `from` is after `to`"},
}
_From = Annotated[str | None, Query(alias="from", description="First day included, YYYY-MM-DD (UTC)")]
_To = Annotated[str | None, Query(description="Last day included, YYYY-MM-DD (UTC)")]
_CSV: dict[str, object] = {"content": {"text/csv": {}}}
_XAPI: dict[str, object] = {
    "content": {"application/json": {}},
    "description": "A JSON array of xAPI 1.0.3 statements",
}


def _csv(body: str, filename: str) -> Response:
    return Response(
        content=body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.get("/api/courses/{course_id}/report", responses=_INVALID_RANGE)
async def course_report(
    course_id: CourseId, caller: Caller, reports: Reports, start: _From = None, to: _To = None
) -> CourseReport:
    """Attendance per student over the course's ended sessions (a student: its own row only)."""
    return await reports.course_report(
        caller, course_id, start=parse_day(start, "from"), end=parse_day(to, "to")
    )


@router.get("/api/courses/{course_id}/report/students/{user_id}", responses=_INVALID_RANGE)
async def student_history(
    course_id: CourseId,
    user_id: UserId,
    caller: Caller,
    reports: Reports,
    start: _From = None,
    to: _To = None,
) -> StudentHistory:
    """One student's status in each ended session (teacher, admin; a student: its own only)."""
    return await reports.student_history(
        caller, course_id, user_id, start=parse_day(start, "from"), end=parse_day(to, "to")
    )


@router.get(
    "/api/courses/{course_id}/report.csv",
    response_class=Response,
    responses={**_INVALID_RANGE, 200: {**_CSV, "description": "The course report's rows, with a header"}},
)
async def course_report_csv(
    course_id: CourseId, caller: Caller, reports: Reports, start: _From = None, to: _To = None
) -> Response:
    body = await reports.course_report_csv(
        caller, course_id, start=parse_day(start, "from"), end=parse_day(to, "to")
    )
    return _csv(body, f"attendance-{course_id}.csv")


@router.get(
    "/api/courses/{course_id}/report.xapi.json",
    response_class=JSONResponse,
    responses={**_INVALID_RANGE, 200: _XAPI},
)
async def course_report_xapi(
    course_id: CourseId,
    request: Request,
    caller: Caller,
    reports: Reports,
    start: _From = None,
    to: _To = None,
) -> Any:
    """One xAPI ``attended`` statement per record of the course's ended sessions (teacher, admin)."""
    return await reports.course_xapi(
        caller, course_id, _base_url(request), start=parse_day(start, "from"), end=parse_day(to, "to")
    )


@router.get(
    "/api/sessions/{session_id}/report.csv",
    response_class=Response,
    responses={**ERRORS, 200: {**_CSV, "description": "One row per roster record"}},
)
async def session_report_csv(session_id: SessionId, caller: Caller, reports: Reports) -> Response:
    report = await reports.session_csv(caller, session_id)
    return _csv(report.body, report.filename)


@router.get(
    "/api/sessions/{session_id}/report.xapi.json",
    response_class=JSONResponse,
    responses={**ERRORS, 200: _XAPI},
)
async def session_report_xapi(
    session_id: SessionId, request: Request, caller: Caller, reports: Reports
) -> Any:
    """The session's records as xAPI statements (none while it is active)."""
    return await reports.session_xapi(caller, session_id, _base_url(request))
