"""Calendar feeds, parsed with an independent iCalendar parser (vobject), not the library that wrote them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import vobject

from tests.helpers import FakeClock, World


def parse(text: str) -> Any:
    calendar = vobject.readOne(text, validate=True)
    assert calendar.name == "VCALENDAR"
    assert calendar.version.value == "2.0"
    assert calendar.prodid.value
    return calendar


def events(calendar: Any) -> dict[str, Any]:
    return {e.uid.value: e for e in calendar.contents.get("vevent", [])}


def instant(value: str) -> datetime:
    """An API timestamp at iCalendar's precision (whole seconds)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).replace(microsecond=0)


async def test_the_course_feed_round_trips_its_sessions(
    http: httpx.AsyncClient, world: World, clock: FakeClock
) -> None:
    held = await world.start(topic="Recursion, part 1")
    assert (await world.check_in("s1", held["id"])).status_code == 200
    clock.advance(minutes=50)
    ended = (await world.end(held["id"])).json()
    clock.advance(days=3)
    running = await world.start(topic="Trees")
    response = await http.get("/api/courses/cs101/calendar.ics", headers=world.users["s2"].headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    assert "\r\n" in response.text  # RFC 5545 lines end with CRLF
    calendar = parse(response.text)
    found = events(calendar)
    assert set(found) == {f"{held['id']}@attendance-live", f"{running['id']}@attendance-live"}
    past = found[f"{held['id']}@attendance-live"]
    assert past.summary.value == "CS101: Recursion, part 1"
    assert past.dtstart.value == instant(ended["started_at"])
    assert past.dtend.value == instant(ended["ended_at"])
    assert past.status.value == "CONFIRMED"
    assert "Present 1, absent 2 of 3" in past.description.value
    now = found[f"{running['id']}@attendance-live"]
    assert now.summary.value == "CS101: Trees"
    assert now.dtstart.value == instant(running["started_at"])
    assert now.dtstart.value.tzinfo is not None
    assert now.dtstart.value.utcoffset() == UTC.utcoffset(None)


async def test_only_members_see_the_course_feed(http: httpx.AsyncClient, world: World) -> None:
    url = "/api/courses/cs101/calendar.ics"
    assert (await http.get(url)).status_code == 401
    assert (await http.get(url, headers=world.users["outsider"].headers)).status_code == 404
    assert (await http.get(url, headers=world.users["pending"].headers)).status_code == 403
    assert (await http.get(url, headers=world.teacher.headers)).status_code == 200


async def test_the_personal_feed_has_every_course_and_its_link_can_be_reset(
    http: httpx.AsyncClient, world: World
) -> None:
    await world.start(topic="In CS101")
    response = await http.post(
        "/api/courses/other/sessions",
        json={"topic": "Elsewhere"},
        headers=world.users["other-teacher"].headers,
    )
    assert response.status_code == 201
    # s1 is approved in cs101 only; enrol it in "other" too.
    response = await http.put(
        "/api/courses/other/enrollments/s1",
        json={"status": "approved"},
        headers=world.users["other-teacher"].headers,
    )
    assert response.status_code == 201
    state = await http.get("/api/calendar/token", headers=world.users["s1"].headers)
    assert state.json() == {"exists": False, "created_at": None}
    made = await http.post("/api/calendar/token", headers=world.users["s1"].headers)
    assert made.status_code == 201, made.text
    link = made.json()["url"]
    assert link.startswith("http://test/api/calendar/")
    assert link.endswith(".ics")
    feed = await http.get(link)  # no Authorization: the link is the secret
    assert feed.status_code == 200, feed.text
    summaries = sorted(e.summary.value for e in events(parse(feed.text)).values())
    assert summaries == ["CS101: In CS101", "OT1: Elsewhere"]
    # The same token opens a course feed for apps that take one URL per course.
    token = made.json()["token"]
    assert (await http.get(f"/api/courses/cs101/calendar.ics?token={token}")).status_code == 200
    assert (await http.get(f"/api/courses/cs101/calendar.ics?token={token[:-1]}x")).status_code == 404
    # Reset: the old link stops working, the new one works.
    again = await http.post("/api/calendar/token", headers=world.users["s1"].headers)
    assert (await http.get(link)).status_code == 404
    assert (await http.get(again.json()["url"])).status_code == 200
    assert (await http.delete("/api/calendar/token", headers=world.users["s1"].headers)).status_code == 204
    assert (await http.get(again.json()["url"])).status_code == 404
