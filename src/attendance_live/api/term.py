"""The term's routes: calendar feeds, timetables and planned sessions, absence rules and alerts."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from attendance_live.api.deps import Caller, Context, CourseId, authenticate
from attendance_live.api.errors import ERRORS
from attendance_live.auth.tokens import Identity
from attendance_live.networks import MAX_NETWORKS
from attendance_live.service.absence_rules import RuleSpec, RuleView
from attendance_live.service.alerts import MAX_RULES, Alerts, AlertView
from attendance_live.service.calendar import CalendarFeeds
from attendance_live.service.slots import PlannedView, SessionSettings, SlotView, Weekday
from attendance_live.service.timetable import Timetable
from attendance_live.service.views import SessionView
from attendance_live.timeutil import iso_z
from attendance_live.vocabulary import CheckInMode

__all__ = [
    "CALENDAR_TYPE",
    "AlertsDep",
    "FeedToken",
    "FeedTokenState",
    "Feeds",
    "PlannedCreate",
    "PlannedId",
    "RulesPut",
    "SlotCreate",
    "TimetableDep",
    "get_alerts",
    "get_feeds",
    "get_timetable",
    "router",
]

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


# ---------------------------------------------------------------- timetables


class _SessionFields(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)

    topic: str | None = Field(default=None, max_length=200)
    location: str | None = Field(default=None, max_length=200)
    late_after_minutes: int | None = Field(default=None, ge=0, le=1440)
    check_in_mode: CheckInMode = "open"
    code_period_seconds: int = Field(default=15, ge=5, le=300)
    allowed_networks: list[str] | None = Field(default=None, max_length=MAX_NETWORKS)

    def session_settings(self) -> SessionSettings:
        return SessionSettings(
            late_after_minutes=self.late_after_minutes,
            check_in_mode=self.check_in_mode,
            code_period_seconds=self.code_period_seconds,
            allowed_networks=self.allowed_networks,
        )


class SlotCreate(_SessionFields):
    weekday: Weekday
    start_time: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", examples=["10:00"])
    duration_minutes: int = Field(ge=1, le=1440, examples=[90])
    timezone: str = Field(min_length=1, max_length=64, examples=["Europe/Berlin"])
    first_date: date = Field(strict=False, examples=["2024-09-02"])
    last_date: date = Field(strict=False, examples=["2024-12-13"])
    exception_dates: list[Annotated[date, Field(strict=False)]] = Field(default_factory=list, max_length=200)


class PlannedCreate(_SessionFields):
    starts_at: datetime = Field(strict=False, examples=["2024-09-05T14:00:00+02:00"])
    duration_minutes: int = Field(ge=1, le=1440, examples=[90])


async def get_timetable(request: Request) -> Timetable:
    timetable: Timetable = request.app.state.term.timetable
    return timetable


TimetableDep = Annotated[Timetable, Depends(get_timetable)]
PlannedId = Annotated[str, Path(pattern="^[0-9a-f]{32}$")]


@router.post(
    "/api/courses/{course_id}/timetable/slots", status_code=status.HTTP_201_CREATED, responses=ERRORS
)
async def create_slot(
    course_id: CourseId, body: SlotCreate, caller: Caller, timetable: TimetableDep, request: Request
) -> SlotView:
    """A recurring slot; each occurrence becomes a planned session that starts by itself."""
    view = await timetable.create_slot(
        caller,
        course_id,
        weekday=body.weekday,
        start_time=time.fromisoformat(body.start_time),
        duration_minutes=body.duration_minutes,
        timezone=body.timezone,
        first_date=body.first_date,
        last_date=body.last_date,
        exception_dates=body.exception_dates,
        topic=body.topic,
        location=body.location,
        settings=body.session_settings(),
    )
    request.app.state.term.wake_timetable()
    return view


@router.get("/api/courses/{course_id}/timetable/slots", responses=ERRORS)
async def list_slots(course_id: CourseId, caller: Caller, timetable: TimetableDep) -> list[SlotView]:
    return await timetable.list_slots(caller, course_id)


@router.delete(
    "/api/courses/{course_id}/timetable/slots/{slot_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=ERRORS,
)
async def delete_slot(
    course_id: CourseId, slot_id: PlannedId, caller: Caller, timetable: TimetableDep
) -> Response:
    """Remove a slot and its occurrences that have not started (held ones stay)."""
    await timetable.delete_slot(caller, course_id, slot_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/api/courses/{course_id}/planned-sessions", status_code=status.HTTP_201_CREATED, responses=ERRORS
)
async def plan_session(
    course_id: CourseId, body: PlannedCreate, caller: Caller, timetable: TimetableDep, request: Request
) -> PlannedView:
    """A one-off planned session."""
    view = await timetable.plan_once(
        caller,
        course_id,
        starts_at=body.starts_at,
        duration_minutes=body.duration_minutes,
        topic=body.topic,
        location=body.location,
        settings=body.session_settings(),
    )
    request.app.state.term.wake_timetable()
    return view


@router.get("/api/courses/{course_id}/planned-sessions", responses=ERRORS)
async def list_planned(
    course_id: CourseId,
    caller: Caller,
    timetable: TimetableDep,
    start: Annotated[datetime | None, Query(alias="from")] = None,
    end: Annotated[datetime | None, Query(alias="to")] = None,
) -> list[PlannedView]:
    """The term's calendar: every planned session (and what became of it), in start order."""
    return await timetable.list_planned(caller, course_id, start=_aware(start), end=_aware(end))


@router.post(
    "/api/planned-sessions/{planned_id}/start", status_code=status.HTTP_201_CREATED, responses=ERRORS
)
async def start_planned(planned_id: PlannedId, caller: Caller, timetable: TimetableDep) -> SessionView:
    """Start a planned session now (early, or by hand); it still ends at its planned end."""
    return await timetable.start_now(caller, planned_id)


@router.post("/api/planned-sessions/{planned_id}/skip", responses=ERRORS)
async def skip_planned(planned_id: PlannedId, caller: Caller, timetable: TimetableDep) -> PlannedView:
    """Skip a planned session: it will not start."""
    return await timetable.skip(caller, planned_id)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


# ---------------------------------------------------------------- absence follow-up


class RulesPut(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    rules: list[RuleSpec] = Field(max_length=MAX_RULES)


async def get_alerts(request: Request) -> Alerts:
    alerts: Alerts = request.app.state.term.alerts
    return alerts


AlertsDep = Annotated[Alerts, Depends(get_alerts)]


@router.put("/api/courses/{course_id}/absence-rules", responses=ERRORS)
async def set_rules(course_id: CourseId, body: RulesPut, caller: Caller, alerts: AlertsDep) -> list[RuleView]:
    """Replace the course's absence thresholds (an empty list turns follow-up off)."""
    return await alerts.set_rules(caller, course_id, body.rules)


@router.get("/api/courses/{course_id}/absence-rules", responses=ERRORS)
async def list_rules(course_id: CourseId, caller: Caller, alerts: AlertsDep) -> list[RuleView]:
    return await alerts.list_rules(caller, course_id)


@router.get("/api/courses/{course_id}/alerts", responses=ERRORS)
async def list_alerts(
    course_id: CourseId,
    caller: Caller,
    alerts: AlertsDep,
    state: Annotated[Literal["open", "all"], Query()] = "open",
) -> list[AlertView]:
    """The course's absence alerts, newest first (a student: only its own)."""
    return await alerts.list_alerts(caller, course_id, open_only=state == "open")


@router.post("/api/alerts/{alert_id}/acknowledge", responses=ERRORS)
async def acknowledge(alert_id: PlannedId, caller: Caller, alerts: AlertsDep) -> AlertView:
    """Mark an alert as seen (course teacher, admin); it leaves the open list."""
    return await alerts.acknowledge(caller, alert_id)
