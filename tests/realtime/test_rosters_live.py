"""Rosters live: join requests reach the course's managers, and enrollment changes (one, or an
import) move the student's connected sockets into or out of the course's room at once."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from attendance_live.app import Application
from tests.helpers import Recorder, World
from tests.recovering import RecoveringClient

Make = Callable[[str], Recorder]


async def join_code(world: World, approval: str = "manual") -> str:
    created = await world.http.post(
        f"/api/courses/{world.course_id}/join-code",
        json={"approval": approval},
        headers=world.teacher.headers,
    )
    assert created.status_code == 201, created.text
    code: str = created.json()["code"]
    return code


async def test_a_join_request_reaches_the_managers_only(
    live_url: str, world: World, http: httpx.AsyncClient, recorders: Make
) -> None:
    code = await join_code(world)
    teacher, student = recorders("teacher"), recorders("s1")
    for client, who in ((teacher, "teacher"), (student, "s1")):
        await client.connect(live_url, world.users[who].token)
        await client.call("subscribeToCourse", {"course_id": world.course_id})
    joined = await http.post("/api/join", json={"code": code}, headers=world.users["outsider"].headers)
    assert joined.status_code == 200
    request = await teacher.next("enrollmentRequested")
    assert request["requested_at"].endswith("Z")
    assert {k: v for k, v in request.items() if k != "requested_at"} == {
        "course_id": world.course_id,
        "user_id": "outsider",
        "name": "Olga Outsider",
        "email": None,
        "status": "pending",
    }
    # joining again is no new request
    await http.post("/api/join", json={"code": code}, headers=world.users["outsider"].headers)
    await teacher.barrier(world.course_id)
    await student.barrier(world.course_id)
    assert teacher.count("enrollmentRequested") == 1
    assert student.count("enrollmentRequested") == 0


async def test_an_approved_student_follows_the_course_without_reconnecting(
    live_url: str, world: World, http: httpx.AsyncClient, recorders: Make
) -> None:
    code = await join_code(world)
    outsider = recorders("outsider")
    await outsider.connect(live_url, world.users["outsider"].token)
    await http.post("/api/join", json={"code": code}, headers=world.users["outsider"].headers)
    assert await outsider.next("enrollmentChanged") == {"course_id": world.course_id, "status": "pending"}
    approved = await http.put(
        f"/api/courses/{world.course_id}/enrollments/outsider",
        json={"status": "approved"},
        headers=world.teacher.headers,
    )
    assert approved.status_code == 200
    assert await outsider.next("enrollmentChanged") == {"course_id": world.course_id, "status": "approved"}
    session = await world.start(topic="After approval")
    started = await outsider.next("courseSessionStarted")
    assert (started["session_id"], started["course_id"]) == (session["id"], world.course_id)
    # the student checks in, as any member
    assert (await world.check_in("outsider", session["id"])).json()["status"] == "present"


async def test_an_import_moves_connected_sockets_in_and_out(
    live_url: str, world: World, http: httpx.AsyncClient, recorders: Make
) -> None:
    leaving, arriving, staying = recorders("s1"), recorders("pending"), recorders("s2")
    for client, who in ((leaving, "s1"), (arriving, "pending"), (staying, "s2")):
        await client.connect(live_url, world.users[who].token)
    for client in (leaving, staying):
        await client.call("subscribeToCourse", {"course_id": world.course_id})
    body = "user_id,status\ns1,rejected\npending,approved\ns2,approved\n"
    imported = await http.post(
        f"/api/courses/{world.course_id}/enrollments/import",
        content=body.encode(),
        headers={**world.teacher.headers, "Content-Type": "text/csv"},
    )
    assert imported.status_code == 200, imported.text
    assert (imported.json()["changed"], imported.json()["unchanged"]) == (2, 1)
    assert await leaving.next("enrollmentChanged") == {"course_id": world.course_id, "status": "rejected"}
    assert await arriving.next("enrollmentChanged") == {"course_id": world.course_id, "status": "approved"}
    session = await world.start()
    assert (await arriving.next("courseSessionStarted"))["session_id"] == session["id"]
    assert (await staying.next("courseSessionStarted"))["session_id"] == session["id"]
    await world.end(session["id"])
    await staying.next("courseSessionEnded")
    await arriving.next("courseSessionEnded")
    assert leaving.count("courseSessionStarted") == 0
    assert leaving.count("courseSessionEnded") == 0
    assert staying.count("enrollmentChanged") == 0  # an unchanged row moves nothing


async def test_a_refused_import_moves_nobody(
    live_url: str, world: World, http: httpx.AsyncClient, recorders: Make
) -> None:
    arriving = recorders("pending")
    await arriving.connect(live_url, world.users["pending"].token)
    body = "user_id,status\npending,approved\nteacher,approved\n"
    refused = await http.post(
        f"/api/courses/{world.course_id}/enrollments/import",
        content=body.encode(),
        headers={**world.teacher.headers, "Content-Type": "text/csv"},
    )
    assert refused.status_code == 422
    session = await world.start()
    await world.end(session["id"])
    await arriving.barrier(world.course_id)  # a round trip (refused: still pending) after the events
    assert arriving.count("enrollmentChanged") == 0
    assert arriving.count("courseSessionStarted") == 0


async def test_students_cannot_follow_an_archived_course(
    live_url: str, world: World, http: httpx.AsyncClient, recorders: Make
) -> None:
    student, teacher = recorders("s1"), recorders("teacher")
    await student.connect(live_url, world.users["s1"].token)
    await teacher.connect(live_url, world.users["teacher"].token)
    archived = await http.post(f"/api/courses/{world.course_id}/archive", headers=world.teacher.headers)
    assert archived.status_code == 200
    await student.emit("subscribeToCourse", {"course_id": world.course_id})
    refused = await student.next("activeSessionsError")
    assert (refused["code"], refused["course_id"]) == ("forbidden", world.course_id)
    # its managers still follow it (its history, its reports)
    await teacher.emit("subscribeToCourse", {"course_id": world.course_id})
    snapshot = await teacher.next("activeSessionsData")
    assert snapshot == {"course_id": world.course_id, "activeSessions": []}
    await http.post(f"/api/courses/{world.course_id}/unarchive", headers=world.teacher.headers)
    await student.emit("subscribeToCourse", {"course_id": world.course_id})
    assert (await student.next("activeSessionsData"))["course_id"] == world.course_id


async def test_a_course_joined_by_approval_is_recovered_after_a_blip(
    live_url: str, world: World, http: httpx.AsyncClient, app: Application
) -> None:
    client = RecoveringClient("pending", world.users["pending"].token)
    try:
        reply = await client.connect(live_url)
        assert reply.name == "connect"
        mark = client.mark()
        approved = await http.put(
            f"/api/courses/{world.course_id}/enrollments/pending",
            json={"status": "approved"},
            headers=world.teacher.headers,
        )
        assert approved.status_code == 200
        await client.next("enrollmentChanged", since=mark)
        assert app.realtime.recovery is not None
        await app.realtime.recovery.idle()  # the pid's state has the course
        await client.drop()
        session = await world.start(topic="While away")  # committed while the client is away
        mark = client.mark()
        back = await client.connect(live_url)
        assert back.name == "connect"
        assert client.recovered, "the same pid: the course joined by the approval came back with it"
        started = await client.next("courseSessionStarted", since=mark)
        assert started.data["session_id"] == session["id"]
    finally:
        await client.close()
