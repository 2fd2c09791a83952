"""Timetables on an injected clock: slots across a DST change, the scheduler's starts and ends,
catch-up after downtime, start early / skip / end early, and the term in the calendar feed."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import vobject

from attendance_live.app import Application, create_app
from attendance_live.auth.tokens import Identity
from attendance_live.config import Settings
from attendance_live.service.slots import occurrences
from tests.helpers import FakeClock, Recorder, World

BERLIN = ZoneInfo("Europe/Berlin")
# Monday 16 March 2026, 08:00 UTC: Berlin is on CET (UTC+1) until Sunday 29 March, then CEST (UTC+2).
TERM_START = datetime(2026, 3, 16, 8, 0, tzinfo=UTC)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_slot_keeps_its_wall_clock_time_across_daylight_saving_changes() -> None:
    spring = occurrences(0, time(10, 0), timedelta(minutes=90), BERLIN, date(2026, 3, 16), date(2026, 4, 6))
    assert [s.isoformat() for s, _ in spring] == [
        "2026-03-16T09:00:00+00:00",
        "2026-03-23T09:00:00+00:00",
        "2026-03-30T08:00:00+00:00",  # after the change: still 10:00 in Berlin
        "2026-04-06T08:00:00+00:00",
    ]
    assert all(e - s == timedelta(minutes=90) for s, e in spring)
    assert all(s.astimezone(BERLIN).time() == time(10, 0) for s, _ in spring)
    autumn = occurrences(
        3,
        time(14, 0),
        timedelta(minutes=60),
        ZoneInfo("America/New_York"),
        date(2026, 10, 29),
        date(2026, 11, 5),
    )
    assert [s.isoformat() for s, _ in autumn] == ["2026-10-29T18:00:00+00:00", "2026-11-05T19:00:00+00:00"]
    excepted = occurrences(
        0,
        time(10, 0),
        timedelta(minutes=90),
        BERLIN,
        date(2026, 3, 16),
        date(2026, 4, 6),
        [date(2026, 3, 23)],
    )
    assert len(excepted) == 3


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(TERM_START)


async def add_slot(http: httpx.AsyncClient, world: World, **body: Any) -> dict[str, Any]:
    slot = {
        "weekday": "monday",
        "start_time": "10:00",
        "duration_minutes": 90,
        "timezone": "Europe/Berlin",
        "first_date": "2026-03-16",
        "last_date": "2026-04-06",
        "topic": "Lecture",
        **body,
    }
    response = await http.post("/api/courses/cs101/timetable/slots", json=slot, headers=world.teacher.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def planned(http: httpx.AsyncClient, world: World) -> list[dict[str, Any]]:
    response = await http.get("/api/courses/cs101/planned-sessions", headers=world.teacher.headers)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


async def active(http: httpx.AsyncClient, world: World) -> list[dict[str, Any]]:
    response = await http.get("/api/courses/cs101/active-sessions", headers=world.teacher.headers)
    sessions: list[dict[str, Any]] = response.json()["activeSessions"]
    return sessions


async def test_a_weekly_slot_starts_and_ends_its_sessions_at_the_right_instants_across_dst(
    app: Application, http: httpx.AsyncClient, world: World, clock: FakeClock
) -> None:
    slot = await add_slot(http, world)
    assert slot["planned"] == 4
    assert slot["weekday"] == "monday"
    holiday = await add_slot(http, world, weekday="tuesday", exception_dates=["2026-03-24", "2026-03-31"])
    assert (
        holiday["planned"] == 1
    )  # 17 March only: the other two Tuesdays are exceptions, 7 April is past the end
    assert holiday["exception_dates"] == ["2026-03-24", "2026-03-31"]
    response = await http.delete(
        f"/api/courses/cs101/timetable/slots/{holiday['id']}", headers=world.teacher.headers
    )
    assert response.status_code == 204
    plans = await planned(http, world)
    starts = [p["starts_at"] for p in plans]
    assert starts == [
        "2026-03-16T09:00:00.000Z",
        "2026-03-23T09:00:00.000Z",
        "2026-03-30T08:00:00.000Z",
        "2026-04-06T08:00:00.000Z",
    ]
    for plan in plans:
        begins, ends = utc(plan["starts_at"]), utc(plan["ends_at"])
        clock.now = begins - timedelta(seconds=1)
        await app.term.timetable_loop.settled()
        assert await active(http, world) == []
        clock.now = begins
        await app.term.timetable_loop.settled()
        running = await active(http, world)
        assert [(s["sessionId"], s["startedAt"]) for s in running] == [(plan["id"], plan["starts_at"])]
        session = (await http.get(f"/api/sessions/{plan['id']}", headers=world.teacher.headers)).json()
        assert session["started_by"] == "system"
        assert session["topic"] == "Lecture"
        clock.now = ends - timedelta(seconds=1)
        assert await app.context.service.end_expired() == []
        clock.now = ends
        assert await app.context.service.end_expired() == [plan["id"]]
        session = (await http.get(f"/api/sessions/{plan['id']}", headers=world.teacher.headers)).json()
        assert session["status"] == "ended"
        assert session["ended_at"] == plan["ends_at"]
        assert session["ended_by"] == "system"
    assert {(p["status"], p["session_status"]) for p in await planned(http, world)} == {("started", "ended")}


async def test_a_planned_start_is_announced_like_a_manual_one(
    app: Application, live_url: str, http: httpx.AsyncClient, world: World, clock: FakeClock
) -> None:
    await add_slot(http, world, last_date="2026-03-16")
    watcher = Recorder("student")
    await watcher.connect(live_url, world.users["s1"].token)
    try:
        await watcher.emit("subscribeToCourse", {"course_id": "cs101"})
        await watcher.next("activeSessionsData")
        clock.now = datetime(2026, 3, 16, 9, 0, tzinfo=UTC)
        await app.term.timetable_loop.settled()
        started = await watcher.next("courseSessionStarted")
        snapshot = await watcher.next("activeSessionsData")
    finally:
        await watcher.close()
    assert started["course_id"] == "cs101"
    assert started["teacher_id"] == "teacher"
    assert started["teacher_name"] == "Grace Hopper"
    assert started["started_by"] == "system"
    assert started["started_at"] == "2026-03-16T09:00:00.000Z"
    assert [s["sessionId"] for s in snapshot["activeSessions"]] == [started["session_id"]]


async def test_a_node_down_across_a_start_catches_up_and_one_missed_entirely_is_not_held(
    app: Application, http: httpx.AsyncClient, world: World, clock: FakeClock, settings: Settings
) -> None:
    late = await http.post(
        "/api/courses/cs101/planned-sessions",
        json={"starts_at": "2026-03-16T10:00:00Z", "duration_minutes": 60, "topic": "Caught up"},
        headers=world.teacher.headers,
    )
    gone = await http.post(
        "/api/courses/cs101/planned-sessions",
        json={"starts_at": "2026-03-16T08:30:00Z", "duration_minutes": 30, "topic": "Lost"},
        headers=world.teacher.headers,
    )
    assert late.status_code == gone.status_code == 201, (late.text, gone.text)
    await app.term.stop()  # the only node goes down before either starts
    clock.now = datetime(2026, 3, 16, 10, 20, tzinfo=UTC)
    restarted = create_app(settings, clock=clock)
    async with restarted.http.router.lifespan_context(restarted.http):
        await restarted.term.timetable_loop.settled()
        transport = httpx.ASGITransport(app=restarted.asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            plans = {p["topic"]: p for p in await planned(client, world)}
            running = await active(client, world)
            session = (
                await client.get(f"/api/sessions/{late.json()['id']}", headers=world.teacher.headers)
            ).json()
    assert plans["Lost"]["status"] == "missed"
    assert plans["Lost"]["session_id"] is None
    assert plans["Caught up"]["status"] == "started"
    assert [s["sessionId"] for s in running] == [late.json()["id"]]
    assert session["started_at"] == "2026-03-16T10:20:00.000Z"  # late, for what remains of it


async def test_a_plan_whose_session_exists_reads_as_started_before_its_row_is_marked(
    app: Application, http: httpx.AsyncClient, world: World, clock: FakeClock
) -> None:
    # The scheduler announces the start, then marks the plan in a second write: a dashboard that
    # refreshes its calendar on the announcement must already see the plan started and running.
    await add_slot(http, world, last_date="2026-03-16")
    (plan,) = await planned(http, world)
    clock.now = utc(plan["starts_at"])
    teacher = Identity(user_id="teacher", name="Grace Hopper", email=None, role="teacher")
    await app.context.service.start_session(teacher, "cs101", session_id=plan["id"])
    (seen,) = await planned(http, world)
    assert seen["status"] == "started"
    assert seen["session_id"] == plan["id"]
    assert seen["session_status"] == "active"


async def test_a_teacher_starts_early_skips_and_ends_early(
    app: Application, http: httpx.AsyncClient, world: World, clock: FakeClock
) -> None:
    await add_slot(http, world, last_date="2026-03-23")
    first, second = await planned(http, world)
    clock.now = utc(first["starts_at"]) - timedelta(minutes=10)
    early = await http.post(f"/api/planned-sessions/{first['id']}/start", headers=world.teacher.headers)
    assert early.status_code == 201, early.text
    assert early.json()["id"] == first["id"]
    assert early.json()["started_by"] == "Grace Hopper"
    again = await http.post(f"/api/planned-sessions/{first['id']}/start", headers=world.teacher.headers)
    assert again.status_code == 409
    clock.now = utc(first["starts_at"])
    await app.term.timetable_loop.settled()  # the scheduler does not start it a second time
    assert len(await active(http, world)) == 1
    ended = await http.post(f"/api/sessions/{first['id']}/end", headers=world.teacher.headers)
    assert ended.status_code == 200
    skipped = await http.post(f"/api/planned-sessions/{second['id']}/skip", headers=world.teacher.headers)
    assert skipped.status_code == 200, skipped.text
    assert skipped.json()["status"] == "skipped"
    clock.now = utc(second["starts_at"])
    await app.term.timetable_loop.settled()
    assert await active(http, world) == []
    refused = await http.post(f"/api/planned-sessions/{second['id']}/skip", headers=world.users["s1"].headers)
    assert refused.status_code == 403
    # The calendar: the held one confirmed, the skipped one cancelled, under their plans' UIDs.
    feed = await http.get("/api/courses/cs101/calendar.ics", headers=world.users["s1"].headers)
    calendar = vobject.readOne(feed.text)
    found = {e.uid.value: e for e in calendar.contents["vevent"]}
    held, cancelled = found[f"{first['id']}@attendance-live"], found[f"{second['id']}@attendance-live"]
    assert held.status.value == "CONFIRMED"
    assert held.dtstart.value == utc(first["starts_at"]) - timedelta(minutes=10)
    assert cancelled.status.value == "CANCELLED"
    assert cancelled.summary.value == "CS101: Lecture"
    assert cancelled.dtstart.value == utc(second["starts_at"])


async def test_the_calendar_shows_the_planned_term(http: httpx.AsyncClient, world: World) -> None:
    await add_slot(http, world, topic="Algorithms", location="Room A")
    feed = await http.get("/api/courses/cs101/calendar.ics", headers=world.teacher.headers)
    events = sorted(vobject.readOne(feed.text).contents["vevent"], key=lambda e: e.dtstart.value)
    plans = await planned(http, world)
    assert [(e.uid.value, e.dtstart.value, e.dtend.value) for e in events] == [
        (f"{p['id']}@attendance-live", utc(p["starts_at"]), utc(p["ends_at"])) for p in plans
    ]
    assert {e.status.value for e in events} == {"TENTATIVE"}
    assert {e.location.value for e in events} == {"Room A"}
    assert {e.summary.value for e in events} == {"CS101: Algorithms"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "is not an IANA time zone"),
        ({"first_date": "2026-04-06", "last_date": "2026-03-16"}, "is before first_date"),
        ({"weekday": "sunday", "first_date": "2026-03-16", "last_date": "2026-03-20"}, "no occurrence"),
        ({"late_after_minutes": 200}, "not within the session"),
        ({"allowed_networks": ["10.0.0.1/8"]}, "is not a network"),
    ],
)
async def test_bad_slots_are_refused_with_the_fix(
    http: httpx.AsyncClient, world: World, change: dict[str, Any], message: str
) -> None:
    body = {
        "weekday": "monday",
        "start_time": "10:00",
        "duration_minutes": 90,
        "timezone": "Europe/Berlin",
        "first_date": "2026-03-16",
        "last_date": "2026-04-06",
        **change,
    }
    response = await http.post("/api/courses/cs101/timetable/slots", json=body, headers=world.teacher.headers)
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]


async def test_only_managers_plan(http: httpx.AsyncClient, world: World) -> None:
    body = {"starts_at": "2026-03-17T10:00:00Z", "duration_minutes": 60}
    url = "/api/courses/cs101/planned-sessions"
    assert (await http.post(url, json=body, headers=world.users["s1"].headers)).status_code == 403
    assert (await http.post(url, json=body, headers=world.users["other-teacher"].headers)).status_code == 404
    assert (
        await http.post(url, json={**body, "starts_at": "2026-03-17T10:00:00"}, headers=world.teacher.headers)
    ).status_code == 422
