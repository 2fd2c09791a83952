"""A co-manager's live sockets follow their rights: in the course's, its managers' and its
rosters' rooms from the moment they are added, out of all of them the moment they are removed."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from attendance_live.app import Application
from tests.helpers import Recorder, World
from tests.service.test_alerts import hold_session, set_rules

Make = Callable[[str], Recorder]


async def test_sockets_join_when_made_co_manager_and_leave_at_once_when_removed(
    live_url: str, world: World, http: httpx.AsyncClient, recorders: Make
) -> None:
    world.user("ta", "Tim Assistant")
    teacher, ta = recorders("teacher"), recorders("ta")
    await teacher.connect(live_url, world.teacher.token)
    await teacher.call("subscribeToCourse", {"course_id": "cs101"})
    await ta.connect(live_url, world.users["ta"].token)
    refused = await ta.call("subscribeToCourse", {"course_id": "cs101"})
    assert refused["code"] == "forbidden"  # no relation yet

    added = await http.put(
        "/api/courses/cs101/managers/ta",
        json={"role": "ta", "name": "Tim Assistant"},
        headers=world.teacher.headers,
    )
    assert added.status_code == 201, added.text
    # Already connected, never subscribed again: the course's events and its join requests reach it.
    code = await http.post(
        "/api/courses/cs101/join-code", json={"approval": "manual"}, headers=world.teacher.headers
    )
    joined = await http.post(
        "/api/join", json={"code": code.json()["code"]}, headers=world.users["outsider"].headers
    )
    assert joined.status_code == 200, joined.text
    assert (await ta.next("enrollmentRequested"))["user_id"] == "outsider"
    session = await world.start()
    started = await ta.next("courseSessionStarted")
    assert (started["session_id"], started["teacher_id"], started["teacher_name"]) == (
        session["id"],
        "teacher",
        "Grace Hopper",
    )
    await teacher.call("subscribeToSession", {"session_id": session["id"]})
    roster = await ta.call("subscribeToSession", {"session_id": session["id"]})
    assert {r["user_id"] for r in roster["records"]} == {"s1", "s2", "s3"}
    await world.check_in("s1", session["id"])
    assert (await ta.next("attendanceUpdated"))["user_id"] == "s1"

    removed = await http.delete("/api/courses/cs101/managers/ta", headers=world.teacher.headers)
    assert removed.status_code == 204
    await world.check_in("s2", session["id"])
    await http.post(
        "/api/join", json={"code": code.json()["code"]}, headers=world.users["other-student"].headers
    )
    ended = await world.end(session["id"])
    assert ended.status_code == 200
    assert (await teacher.next("courseSessionEnded"))["session_id"] == session["id"]
    assert (await teacher.next("attendanceUpdated"))["user_id"] == "s1"
    assert (await teacher.next("attendanceUpdated"))["user_id"] == "s2"
    assert (await teacher.next("enrollmentRequested"))["user_id"] == "outsider"
    assert (await teacher.next("enrollmentRequested"))["user_id"] == "other-student"
    # A round trip after all of it: nothing more reached the removed co-manager.
    again = await ta.call("checkActiveSessions", {"course_id": "cs101"})
    assert again["code"] == "forbidden"
    assert ta.count("attendanceUpdated") == 1
    assert ta.count("enrollmentRequested") == 1
    assert ta.count("courseSessionEnded") == 0
    refused = await ta.call("subscribeToSession", {"session_id": session["id"]})
    assert refused["code"] == "forbidden"


async def test_a_co_manager_is_told_of_absence_alerts_and_acknowledges_them(
    app: Application, live_url: str, world: World, http: httpx.AsyncClient, recorders: Make
) -> None:
    world.user("ta", "Tim Assistant")
    added = await http.put(
        "/api/courses/cs101/managers/ta", json={"role": "ta"}, headers=world.teacher.headers
    )
    assert added.status_code == 201, added.text
    await set_rules(http, world, {"kind": "absences", "count": 1})
    ta = recorders("ta")
    await ta.connect(live_url, world.users["ta"].token)
    await hold_session(app, world, present=("s2", "s3"))
    alert = await ta.next("absenceAlert")  # on its own sockets, subscribed to nothing
    assert (alert["user_id"], alert["teacher_id"], alert["manager_ids"]) == ("s1", "teacher", ["ta"])
    done = await http.post(f"/api/alerts/{alert['id']}/acknowledge", headers=world.users["ta"].headers)
    assert done.status_code == 200, done.text
    assert done.json()["acknowledged_by"] == "ta"
