"""Courses and their enrollments, sessions and live snapshot."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Response, status

from attendance_live.api.deps import Caller, CourseId, Service, UserId
from attendance_live.api.errors import ERRORS
from attendance_live.api.schemas import (
    CourseCreate,
    Detail,
    EnrollmentBatch,
    EnrollmentBatchResult,
    EnrollmentPut,
    SessionStart,
)
from attendance_live.realtime.payloads import ActiveSessions, active_sessions_data
from attendance_live.service.views import CourseView, EnrollmentView, SessionView

__all__ = ["router"]

router = APIRouter(prefix="/api/courses", tags=["courses"])


@router.post("", status_code=status.HTTP_201_CREATED, responses={**ERRORS, 409: {"model": Detail}})
async def create_course(body: CourseCreate, caller: Caller, service: Service) -> CourseView:
    """Create a course (teachers and admins); the caller becomes its teacher."""
    return await service.create_course(caller, course_id=body.id, code=body.code, title=body.title)


@router.get("", responses=ERRORS)
async def list_courses(caller: Caller, service: Service) -> list[CourseView]:
    """The courses the caller teaches or is approved in (admins: all)."""
    return await service.list_courses(caller)


@router.get("/{course_id}", responses=ERRORS)
async def get_course(course_id: CourseId, caller: Caller, service: Service) -> CourseView:
    return await service.get_course(caller, course_id)


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


@router.put("/{course_id}/enrollments", responses=ERRORS)
async def put_enrollments(
    course_id: CourseId, body: EnrollmentBatch, caller: Caller, service: Service
) -> EnrollmentBatchResult:
    """Add or change up to 5,000 enrollments at once (a roster import), in one transaction."""
    created, updated = await service.put_enrollments(
        caller, course_id, [(e.user_id, e.status, e.name, e.email) for e in body.enrollments]
    )
    return EnrollmentBatchResult(created=created, updated=updated)


@router.get("/{course_id}/enrollments", responses=ERRORS)
async def list_enrollments(course_id: CourseId, caller: Caller, service: Service) -> list[EnrollmentView]:
    return await service.list_enrollments(caller, course_id)


@router.post("/{course_id}/sessions", status_code=status.HTTP_201_CREATED, responses=ERRORS)
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
