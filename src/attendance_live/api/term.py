"""The term's routes: calendar feeds (and, with the timetable, planned sessions and alerts)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from pydantic import BaseModel

from attendance_live.api.deps import Caller, Context, CourseId, authenticate
from attendance_live.api.errors import ERRORS
from attendance_live.auth.tokens import Identity
from attendance_live.service.calendar import CalendarFeeds
from attendance_live.timeutil import iso_z

__all__ = ["CALENDAR_TYPE", "FeedToken", "FeedTokenState", "Feeds", "get_feeds", "router"]

router = APIRouter(tags=["term"])

CALENDAR_TYPE = "text/calendar; charset=utf-8"
_TOKEN = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{20,100}$")]


class FeedToken(BaseModel):
    token: str
    url: str
    created_at: str


class FeedTokenState(BaseModel):
    exists: bool
    created_at: str | None


async def get_feeds(request: Request) -> CalendarFeeds:
    feeds: CalendarFeeds = request.app.state.term.calendars
    return feeds


Feeds = Annotated[CalendarFeeds, Depends(get_feeds)]


def _ics(body: bytes, filename: str) -> Response:
    return Response(
        body,
        media_type=CALENDAR_TYPE,
        headers={
            "Content-Disposition": f'inline; filename="{filename}"',
            "Cache-Control": "private, max-age=300",
        },
    )


@router.get(
    "/api/courses/{course_id}/calendar.ics",
    response_class=Response,
    responses={**ERRORS, 200: {"content": {"text/calendar": {}}}},
)
async def course_calendar(
    course_id: CourseId,
    request: Request,
    context: Context,
    feeds: Feeds,
    token: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_-]{20,100}$")] = None,
) -> Response:
    """The course's sessions (planned, running, past) as iCalendar (RFC 5545), for its members.

    Authenticated by the bearer token, or, for calendar apps that cannot send one, by the
    caller's calendar feed token as ``?token=``.
    """
    actor: Identity
    if token is not None:
        actor = await feeds.tokens.identity(token)
    else:
        authorization = request.headers.get("authorization", "")
        scheme, _, bearer = authorization.partition(" ")
        actor = await authenticate(context, bearer if scheme.lower() == "bearer" and bearer else None)
    return _ics(await feeds.course_feed(actor, course_id), f"{course_id}.ics")


@router.get(
    "/api/calendar/{token}.ics",
    response_class=Response,
    responses={**ERRORS, 200: {"content": {"text/calendar": {}}}},
)
async def user_calendar(token: _TOKEN, feeds: Feeds) -> Response:
    """Every session of the courses the token's user teaches or is approved in (no other auth)."""
    return _ics(await feeds.user_feed(token), "attendance.ics")


@router.post("/api/calendar/token", status_code=status.HTTP_201_CREATED, responses=ERRORS)
async def reset_feed_token(caller: Caller, context: Context, feeds: Feeds, request: Request) -> FeedToken:
    """Make the caller's calendar feed link; an older link stops working. The link is shown only now."""
    token = await feeds.tokens.reset(context.service, caller)
    created = await feeds.tokens.created_at(caller)
    url = str(request.url_for("user_calendar", token=token))
    return FeedToken(token=token, url=url, created_at=iso_z(created) or "")


@router.get("/api/calendar/token", responses=ERRORS)
async def feed_token_state(caller: Caller, feeds: Feeds) -> FeedTokenState:
    """Whether the caller has a calendar feed link (the link itself is shown only when made)."""
    created = await feeds.tokens.created_at(caller)
    return FeedTokenState(exists=created is not None, created_at=iso_z(created))


@router.delete("/api/calendar/token", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS)
async def revoke_feed_token(caller: Caller, feeds: Feeds) -> Response:
    """Revoke the caller's calendar feed link."""
    await feeds.tokens.revoke(caller)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
