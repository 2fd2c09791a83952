"""``checkInCode``: to the teacher's session subscription at once and at every rotation, to no one else."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import httpx

from attendance_live.app import Application
from tests.helpers import FakeClock, Recorder, World


async def test_the_teacher_gets_the_code_at_once_and_at_each_rotation_students_never(
    live_url: str,
    world: World,
    app: Application,
    clock: FakeClock,
    recorders: Callable[[str], Recorder],
) -> None:
    session = await world.start(check_in_mode="code", code_period_seconds=10)
    sid = session["id"]
    teacher, student = recorders("teacher"), recorders("s1")
    await teacher.connect(live_url, world.teacher.token)
    await student.connect(live_url, world.users["s1"].token)
    await student.call("subscribeToCourse", {"course_id": world.course_id})
    await teacher.call("subscribeToSession", {"session_id": sid})
    first = await teacher.next("checkInCode")
    assert first == await world.check_in_code(sid)
    assert teacher.names()[:2] == ["sessionRosterData", "checkInCode"]

    clock.advance(seconds=10)
    await app.realtime.codes.tick()
    second = await teacher.next("checkInCode")
    assert second["code"] != first["code"]
    assert second == await world.check_in_code(sid)
    assert datetime.fromisoformat(second["expires_at"]) - datetime.fromisoformat(first["expires_at"]) == (
        timedelta(seconds=10)
    )

    await app.realtime.codes.tick()  # no rotation since: nothing more
    await teacher.barrier(world.course_id)
    await student.barrier(world.course_id)
    assert teacher.count("checkInCode") == 2
    assert student.count("checkInCode") == 0


async def test_the_node_timer_pushes_the_rotation_without_being_asked(
    live_url: str, world: World, clock: FakeClock, recorders: Callable[[str], Recorder]
) -> None:
    session = await world.start(check_in_mode="code", code_period_seconds=15)
    started = datetime.fromisoformat(session["started_at"])
    clock.now = started + timedelta(seconds=14, milliseconds=900)  # the rotation is 100 ms away
    teacher = recorders("teacher")
    await teacher.connect(live_url, world.teacher.token)
    await teacher.call("subscribeToSession", {"session_id": session["id"]})
    first = await teacher.next("checkInCode")
    clock.now = started + timedelta(seconds=15)  # what the timer will find when it wakes
    second = await teacher.next("checkInCode")
    assert second["code"] != first["code"]


async def test_open_sessions_have_no_code_and_an_ended_session_stops_rotating(
    live_url: str,
    world: World,
    app: Application,
    clock: FakeClock,
    recorders: Callable[[str], Recorder],
) -> None:
    open_session = await world.start()
    coded = await world.start(check_in_mode="code")
    teacher = recorders("teacher")
    await teacher.connect(live_url, world.teacher.token)
    await teacher.call("subscribeToSession", {"session_id": open_session["id"]})
    await teacher.call("subscribeToSession", {"session_id": coded["id"]})
    code = await teacher.next("checkInCode")
    assert code["session_id"] == coded["id"]
    assert app.realtime.codes.watched == {coded["id"]}

    await world.end(coded["id"])
    clock.advance(seconds=15)
    await app.realtime.codes.tick()
    await teacher.barrier(world.course_id)
    assert teacher.count("checkInCode") == 1
    assert app.realtime.codes.watched == frozenset()


async def test_the_roster_sees_the_audit_and_the_student_does_not(
    live_url: str, world: World, http: httpx.AsyncClient, recorders: Callable[[str], Recorder]
) -> None:
    session = await world.start(check_in_mode="code")
    teacher, student = recorders("teacher"), recorders("s1")
    await teacher.connect(live_url, world.teacher.token)
    await student.connect(live_url, world.users["s1"].token)
    await teacher.call("subscribeToSession", {"session_id": session["id"]})
    code = (await teacher.next("checkInCode"))["code"]
    response = await http.post(
        f"/api/sessions/{session['id']}/check-in",
        json={"code": code, "device_id": "tablet-7"},
        headers=world.users["s1"].headers,
    )
    assert response.status_code == 200, response.text
    update = await teacher.next("attendanceUpdated")
    assert update["user_id"] == "s1"
    assert update["audit"]["how"] == "check_in"
    assert update["audit"]["by"] == "s1"
    assert update["audit"]["address"] == "127.0.0.1"
    assert update["audit"]["device_id"] == "tablet-7"
    assert update["audit"]["same_address_as"] is None
    own = await student.next("myAttendanceUpdated")
    assert own["status"] == "present"
    assert "audit" not in own
    roster = await teacher.call("subscribeToSession", {"session_id": session["id"]})
    assert [r["audit"]["how"] if r["audit"] else None for r in roster["records"]] == ["check_in", None, None]
