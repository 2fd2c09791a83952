"""Co-managers (co-teachers and TAs): they may do what the course's teacher does, through every
route, and nothing once removed; only the owner (or an admin) changes who they are.

The first matrix replays every route of ``test_authorization.MATRIX`` as a co-teacher and a TA
(the same answer as the teacher's, except creating courses with a student's token and checking
in); the second covers the routes that matrix does not list (term, calendar, LMS, codes, the
managers themselves), each also refused to an approved student.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from attendance_live.app import Application
from attendance_live.auth.tokens import Identity
from attendance_live.db.models import CourseManager, Enrollment
from tests.api.test_authorization import CALLERS, MATRIX
from tests.helpers import FakeClock, World

CO_MANAGERS = ("co-teacher", "ta")
TA = Identity("ta", "Tim Assistant", None, "student")


async def add_co_managers(world: World, http: httpx.AsyncClient) -> None:
    """``co-teacher`` (a teacher's token, role teacher) and ``ta`` (a student's token, role ta)."""
    world.user("co-teacher", "Cora Colleague", "teacher")
    world.user("ta", "Tim Assistant")
    for user_id, role in (("co-teacher", "teacher"), ("ta", "ta")):
        added = await http.put(
            f"/api/courses/cs101/managers/{user_id}",
            json={"role": role, "name": world.users[user_id].name},
            headers=world.teacher.headers,
        )
        assert added.status_code == 201, added.text
        assert added.json()["role"] == role


@pytest.fixture
async def staffed(world: World, http: httpx.AsyncClient) -> World:
    await add_co_managers(world, http)
    return world


def expected_for(endpoint: str, caller: str) -> int:
    """A co-manager's answer: the teacher's (the co-teacher calls first) or the admin's (the TA
    calls second, as the admin does after the teacher in the main matrix)."""
    expected = MATRIX[endpoint][1]
    if endpoint == "POST /api/courses":
        return 201 if caller == "co-teacher" else 403  # the token's role decides, as for anyone
    return expected["teacher" if caller == "co-teacher" else "admin"]


@pytest.mark.parametrize("endpoint", list(MATRIX))
async def test_a_co_manager_may_call_every_route_the_teacher_may(
    endpoint: str, staffed: World, http: httpx.AsyncClient
) -> None:
    call, _ = MATRIX[endpoint]
    assert "co-teacher" not in CALLERS
    for caller in CO_MANAGERS:
        response = await call(http, staffed, staffed.users[caller].headers)
        assert response.status_code == expected_for(endpoint, caller), (caller, response.text[:200])


Call = Callable[[httpx.AsyncClient, World, dict[str, str]], Awaitable[httpx.Response]]


async def _started(w: World, **body: Any) -> str:
    return str((await w.start(**body))["id"])


async def _slot(h: httpx.AsyncClient, w: World, hd: dict[str, str]) -> httpx.Response:
    return await h.post(
        "/api/courses/cs101/timetable/slots",
        json={
            "weekday": "monday",
            "start_time": "10:00",
            "duration_minutes": 90,
            "timezone": "Europe/Berlin",
            "first_date": "2099-03-16",
            "last_date": "2099-04-06",
        },
        headers=hd,
    )


async def _teacher_slot(h: httpx.AsyncClient, w: World) -> str:
    response = await _slot(h, w, w.teacher.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _teacher_plan(h: httpx.AsyncClient, w: World, clock: FakeClock) -> str:
    response = await h.post(
        "/api/courses/cs101/planned-sessions",
        json={"starts_at": (clock.now + timedelta(days=2)).isoformat(), "duration_minutes": 30},
        headers=w.teacher.headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _extra(clock: FakeClock) -> dict[str, tuple[Call, int, int]]:
    """Route -> (call, a co-manager's status, an approved student's status)."""

    async def code(h: httpx.AsyncClient, w: World, hd: dict[str, str]) -> httpx.Response:
        session_id = await _started(w, check_in_mode="code")
        return await h.get(f"/api/sessions/{session_id}/check-in-code", headers=hd)

    async def plan_start(h: httpx.AsyncClient, w: World, hd: dict[str, str]) -> httpx.Response:
        return await h.post(f"/api/planned-sessions/{await _teacher_plan(h, w, clock)}/start", headers=hd)

    async def plan_skip(h: httpx.AsyncClient, w: World, hd: dict[str, str]) -> httpx.Response:
        return await h.post(f"/api/planned-sessions/{await _teacher_plan(h, w, clock)}/skip", headers=hd)

    async def plan_create(h: httpx.AsyncClient, w: World, hd: dict[str, str]) -> httpx.Response:
        body = {"starts_at": (clock.now + timedelta(days=3)).isoformat(), "duration_minutes": 30}
        return await h.post("/api/courses/cs101/planned-sessions", json=body, headers=hd)

    async def slot_delete(h: httpx.AsyncClient, w: World, hd: dict[str, str]) -> httpx.Response:
        return await h.delete(f"/api/courses/cs101/timetable/slots/{await _teacher_slot(h, w)}", headers=hd)

    async def revoke(h: httpx.AsyncClient, w: World, hd: dict[str, str]) -> httpx.Response:
        await h.post("/api/courses/cs101/join-code", json={"approval": "manual"}, headers=w.teacher.headers)
        return await h.delete("/api/courses/cs101/join-code", headers=hd)

    def get(url: str) -> Call:
        return lambda h, w, hd: h.get(url, headers=hd)

    rules = {"rules": [{"kind": "absences", "count": 3}]}
    return {
        "GET /api/sessions/{id}/check-in-code": (code, 200, 403),
        "DELETE /api/courses/{id}/join-code": (
            revoke,
            204,
            403,
        ),
        "GET /api/courses/{id}/report/students/{user}": (
            get("/api/courses/cs101/report/students/s2"),
            200,
            403,
        ),
        "POST /api/courses/{id}/timetable/slots": (_slot, 201, 403),
        "GET /api/courses/{id}/timetable/slots": (get("/api/courses/cs101/timetable/slots"), 200, 200),
        "DELETE /api/courses/{id}/timetable/slots/{slot}": (slot_delete, 204, 403),
        "POST /api/courses/{id}/planned-sessions": (plan_create, 201, 403),
        "GET /api/courses/{id}/planned-sessions": (get("/api/courses/cs101/planned-sessions"), 200, 200),
        "POST /api/planned-sessions/{id}/start": (plan_start, 201, 403),
        "POST /api/planned-sessions/{id}/skip": (plan_skip, 200, 403),
        "PUT /api/courses/{id}/absence-rules": (
            lambda h, w, hd: h.put("/api/courses/cs101/absence-rules", json=rules, headers=hd),
            200,
            403,
        ),
        "GET /api/courses/{id}/absence-rules": (get("/api/courses/cs101/absence-rules"), 200, 200),
        "GET /api/courses/{id}/alerts": (get("/api/courses/cs101/alerts"), 200, 200),
        "GET /api/courses/{id}/calendar.ics": (get("/api/courses/cs101/calendar.ics"), 200, 200),
        "GET /api/courses/{id}/lti": (get("/api/courses/cs101/lti"), 200, 403),
        # Past the manager check: this course was not launched from an LMS.
        "POST /api/courses/{id}/lti/sync": (
            lambda h, w, hd: h.post("/api/courses/cs101/lti/sync", headers=hd),
            409,
            403,
        ),
        "GET /api/courses/{id}/managers": (get("/api/courses/cs101/managers"), 200, 403),
        "GET /api/courses/{id}/managers/{user}": (get("/api/courses/cs101/managers/teacher"), 200, 403),
        # Who manages the course is the owner's (and admins') to change.
        "PUT /api/courses/{id}/managers/{user}": (
            lambda h, w, hd: h.put("/api/courses/cs101/managers/s3", json={"role": "ta"}, headers=hd),
            403,
            403,
        ),
        "DELETE /api/courses/{id}/managers/{user}": (
            lambda h, w, hd: h.delete("/api/courses/cs101/managers/ta", headers=hd),
            403,
            403,
        ),
    }


EXTRA = list(_extra(FakeClock()))


@pytest.mark.parametrize("endpoint", EXTRA)
async def test_a_co_manager_may_use_the_term_calendar_lms_and_codes_a_student_may_not(
    endpoint: str, staffed: World, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    call, manager_status, student_status = _extra(clock)[endpoint]
    for caller in (*CO_MANAGERS, "s1"):
        response = await call(http, staffed, staffed.users[caller].headers)
        expected = student_status if caller == "s1" else manager_status
        assert response.status_code == expected, (caller, response.text[:200])
        if response.status_code >= 400:
            assert response.json()["detail"], response.text


async def test_the_owner_manages_co_managers_who_see_the_course_as_teachers(
    app: Application, staffed: World, http: httpx.AsyncClient
) -> None:
    teachers = await http.get("/api/courses/cs101/managers", headers=staffed.users["ta"].headers)
    assert [(m["user_id"], m["role"], m["name"]) for m in teachers.json()] == [
        ("teacher", "owner", "Grace Hopper"),
        ("co-teacher", "teacher", "Cora Colleague"),
        ("ta", "ta", "Tim Assistant"),
    ]
    listed = await http.get("/api/courses", headers=staffed.users["ta"].headers)
    assert [(c["id"], c["my_role"], c["manager_role"], c["teacher_id"]) for c in listed.json()] == [
        ("cs101", "teacher", "ta", "teacher")  # the owner stays the course's teacher
    ]
    mine = await http.get("/api/courses/cs101", headers=staffed.teacher.headers)
    assert (mine.json()["my_role"], mine.json()["manager_role"]) == ("teacher", "owner")
    # A session started by a co-manager names the owner as the course's teacher.
    started = await http.post("/api/courses/cs101/sessions", json={}, headers=staffed.users["ta"].headers)
    assert (started.json()["teacher_id"], started.json()["teacher_name"]) == ("teacher", "Grace Hopper")
    # The TA's own calendar feed has the course's sessions, as the teacher's has.
    made = await http.post("/api/calendar/token", headers=staffed.users["ta"].headers)
    feed = await http.get(made.json()["url"])
    assert feed.status_code == 200, feed.text
    assert started.json()["id"] in feed.text
    # A co-manager is no student: enrolling one, importing one or joining by code is refused.
    enrolled = await http.put(
        "/api/courses/cs101/enrollments/ta", json={"status": "approved"}, headers=staffed.teacher.headers
    )
    assert enrolled.status_code == 422
    assert "co-teacher" in enrolled.json()["detail"]
    imported = await http.post(
        "/api/courses/cs101/enrollments/import?dry_run=true",
        content=b"user_id\nco-teacher\n",
        headers={**staffed.teacher.headers, "Content-Type": "text/csv"},
    )
    assert imported.json()["errors"][0]["message"].endswith("who cannot enroll in it")
    code = await http.post(
        "/api/courses/cs101/join-code", json={"approval": "auto"}, headers=staffed.teacher.headers
    )
    joined = await http.post(
        "/api/join", json={"code": code.json()["code"]}, headers=staffed.users["ta"].headers
    )
    assert joined.status_code == 422
    assert "You manage course" in joined.json()["detail"]
    # Making an approved student a TA ends the enrollment (the records stay).
    promoted = await http.put(
        "/api/courses/cs101/managers/s3", json={"role": "ta"}, headers=staffed.admin.headers
    )
    assert promoted.status_code == 201
    async with app.context.database.read() as db:
        assert await db.get(Enrollment, ("cs101", "s3")) is None
    changed = await http.put(
        "/api/courses/cs101/managers/s3", json={"role": "teacher"}, headers=staffed.teacher.headers
    )
    assert (changed.status_code, changed.json()["role"]) == (200, "teacher")
    owner = await http.put(
        "/api/courses/cs101/managers/teacher", json={"role": "ta"}, headers=staffed.teacher.headers
    )
    assert owner.status_code == 422
    bad = await http.put(
        "/api/courses/cs101/managers/s2", json={"role": "owner"}, headers=staffed.teacher.headers
    )
    assert bad.status_code == 422
    stranger = await http.get("/api/courses/cs101/managers", headers=staffed.users["outsider"].headers)
    assert stranger.status_code == 404
    missing = await http.delete("/api/courses/cs101/managers/s2", headers=staffed.teacher.headers)
    assert missing.status_code == 404
    assert "not a co-teacher" in missing.json()["detail"]


async def test_a_removed_co_manager_loses_every_right_at_once(
    app: Application, staffed: World, http: httpx.AsyncClient
) -> None:
    ta = staffed.users["ta"].headers
    session_id = await _started(staffed)
    # Warm every cache the TA's rights are read from.
    assert (await http.get("/api/courses/cs101/enrollments", headers=ta)).status_code == 200
    assert await app.context.service.manages_course(TA, "cs101")
    removed = await http.delete("/api/courses/cs101/managers/ta", headers=staffed.teacher.headers)
    assert removed.status_code == 204
    async with app.context.database.read() as db:
        assert (await db.execute(select(CourseManager.user_id))).scalars().all() == ["co-teacher"]
    assert not await app.context.service.manages_course(TA, "cs101")
    assert (await http.get("/api/courses/cs101/enrollments", headers=ta)).status_code == 404
    assert (await http.post(f"/api/sessions/{session_id}/end", headers=ta)).status_code == 404
    assert (await http.get("/api/courses/cs101", headers=ta)).status_code == 404
    assert (await http.get("/api/courses", headers=ta)).json() == []
