"""A course's teachers: its owner and its co-managers (co-teachers and teaching assistants).

Everyone who manages the course may read the list; only the owner and admins change it.
"""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from attendance_live.api.deps import Caller, CourseId, Service, UserId
from attendance_live.api.errors import ERRORS
from attendance_live.api.schemas import ManagerPut
from attendance_live.service.views import ManagerView

__all__ = ["router"]

router = APIRouter(prefix="/api/courses", tags=["courses"])


@router.get("/{course_id}/managers", responses=ERRORS)
async def list_managers(course_id: CourseId, caller: Caller, service: Service) -> list[ManagerView]:
    """The course's teachers: its owner (`role` `owner`) first, then its co-teachers and TAs."""
    return await service.list_managers(caller, course_id)


@router.get("/{course_id}/managers/{user_id}", responses=ERRORS)
async def get_manager(course_id: CourseId, user_id: UserId, caller: Caller, service: Service) -> ManagerView:
    """One of the course's teachers (404 when the user is none)."""
    return await service.get_manager(caller, course_id, user_id)


@router.put("/{course_id}/managers/{user_id}", responses={**ERRORS, 201: {"model": ManagerView}})
async def put_manager(
    course_id: CourseId,
    user_id: UserId,
    body: ManagerPut,
    caller: Caller,
    service: Service,
    response: Response,
) -> ManagerView:
    """Make a user a co-teacher or TA of the course, or change their role (owner and admins;
    201 when added, 200 when changed). Their enrollment as a student of the course, if any,
    ends (their past records stay in the reports)."""
    view, created = await service.put_manager(
        caller, course_id, user_id, role=body.role, name=body.name, email=body.email
    )
    if created:
        response.status_code = status.HTTP_201_CREATED
    return view


@router.delete("/{course_id}/managers/{user_id}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS)
async def remove_manager(course_id: CourseId, user_id: UserId, caller: Caller, service: Service) -> Response:
    """Take a co-teacher or TA off the course (owner and admins); effective at once, on every socket."""
    await service.remove_manager(caller, course_id, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
