"""The seed's protocol against a real server, with python-socketio's client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import socketio
import websockets
from sqlalchemy import select

from attendance_live.app import Application
from attendance_live.db.models import User
from tests.helpers import FakeClock, Recorder, World

ISO_MS_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
Make = Callable[[str], Recorder]


async def subscribed(make: Make, url: str, world: World, user: str, course: str = "cs101") -> Recorder:
    recorder = make(user)
    await recorder.connect(url, world.users[user].token)
    await recorder.emit("subscribeToCourse", {"course_id": course})
    first = await recorder.next("activeSessionsData")
    assert first["course_id"] == course
    return recorder


async def refusal(url: str, auth: dict[str, Any] | None) -> str:
    client = socketio.AsyncClient(reconnection=False)
    messages: list[str] = []

    async def on_error(data: Any) -> None:
        messages.append(data["message"] if isinstance(data, dict) else str(data))

    client.on("connect_error", on_error)

    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(url, auth=auth, transports=["websocket"], wait_timeout=5)
    await client.disconnect()
    return messages[0]


async def test_handshake_refusals_use_the_contract_messages(live_url: str, world: World) -> None:
    assert await refusal(live_url, None) == "Authentication required"
    assert await refusal(live_url, {}) == "Authentication required"
    assert await refusal(live_url, {"token": ""}) == "Authentication required"
    assert await refusal(live_url, {"token": "not-a-jwt"}) == "Invalid token"
    assert await refusal(live_url, {"token": 42}) == "Invalid token"
    expired = world.tokens.mint("s1", name="Alice", ttl_seconds=-5)
    assert await refusal(live_url, {"token": expired}) == "Token expired"


async def test_session_lifecycle_events_in_order(
    live_url: str, world: World, recorders: Make, http: httpx.AsyncClient
) -> None:
    student = await subscribed(recorders, live_url, world, "s1")
    teacher = await subscribed(recorders, live_url, world, "teacher")
    outsider = await subscribed(recorders, live_url, world, "other-student", course="other")
    assert student.events[0][1] == {"course_id": "cs101", "activeSessions": []}

    session = await world.start(topic="Graphs")
    started = await student.next("courseSessionStarted")
    assert set(started) >= {
        "course_id",
        "session_id",
        "teacher_id",
        "teacher_name",
        "started_by",
        "started_at",
    }
    assert started["course_id"] == "cs101"
    assert started["session_id"] == session["id"]
    assert started["teacher_id"] == "teacher"
    assert started["teacher_name"] == started["started_by"] == "Grace Hopper"
    assert started["started_at"] == session["started_at"]
    assert ISO_MS_Z.match(started["started_at"])
    snapshot = await student.next("activeSessionsData")
    assert snapshot == {
        "course_id": "cs101",
        "activeSessions": [
            {
                "sessionId": session["id"],
                "teacherId": "teacher",
                "studentCount": 0,
                "startedAt": session["started_at"],
                "topic": "Graphs",
                "totalStudents": 3,
            }
        ],
    }
    assert student.names() == ["activeSessionsData", "courseSessionStarted", "activeSessionsData"]

    await world.check_in("s1", session["id"])
    moved = await student.next("activeSessionsData")
    assert moved["activeSessions"][0]["studentCount"] == 1

    # a teacher override that counts (absent -> late) moves it too; excused does not
    await http.put(
        f"/api/sessions/{session['id']}/records/s2", json={"status": "late"}, headers=world.teacher.headers
    )
    assert (await student.next("activeSessionsData"))["activeSessions"][0]["studentCount"] == 2

    await world.end(session["id"])
    ended = await student.next("courseSessionEnded")
    assert set(ended) >= {
        "course_id",
        "session_id",
        "teacher_id",
        "teacher_name",
        "final_statistics",
        "ended_by",
        "ended_at",
    }
    assert ended["final_statistics"]["present"] == 2
    assert ended["final_statistics"]["absent"] == 1
    assert ended["final_statistics"]["total"] == 3
    assert ended["ended_by"] == "Grace Hopper"
    assert ISO_MS_Z.match(ended["ended_at"])
    after = await student.next("activeSessionsData")
    assert after == {"course_id": "cs101", "activeSessions": []}
    assert student.names()[-2:] == ["courseSessionEnded", "activeSessionsData"]

    # Every course event sent to the room carries its offset (stream position) as one more
    # argument: a start or an end and the snapshot stored with it are consecutive positions; a
    # count-only snapshot carries the position reached when it was sent, so offsets never go
    # back. The subscribe answer (to the subscriber) is first; the student's own record has none.
    room = [
        (name, extra)
        for (name, _), extra in zip(student.events[1:], student.extra[1:], strict=True)
        if name != "myAttendanceUpdated"
    ]
    assert [name for name, _ in room] == [
        "courseSessionStarted",
        "activeSessionsData",
        "activeSessionsData",
        "activeSessionsData",
        "courseSessionEnded",
        "activeSessionsData",
    ]
    offsets = student.offsets("courseSessionStarted", "courseSessionEnded") + [
        int(extra[0]) for name, extra in room if name == "activeSessionsData"
    ]
    started_at, ended_at, *snapshots = offsets
    assert snapshots[0] == started_at + 1
    assert snapshots[-1] == ended_at + 1
    assert started_at < snapshots[0] <= snapshots[1] <= snapshots[2] < ended_at
    mine = [
        extra
        for (name, _), extra in zip(student.events, student.extra, strict=True)
        if name == "myAttendanceUpdated"
    ]
    assert mine == [()]

    # the teacher got the same course events; the other course's subscriber got none of them
    def course_events(r: Recorder) -> list[str]:
        return [n for n in r.names() if n != "myAttendanceUpdated"]

    assert course_events(teacher) == course_events(student)
    await app_idle_and_barrier(outsider, "other")
    assert outsider.names() == ["activeSessionsData", "activeSessionsResponse"]


async def app_idle_and_barrier(recorder: Recorder, course: str) -> None:
    await recorder.barrier(course)


async def test_check_active_sessions_answers_only_the_asker_and_acks(
    live_url: str, world: World, recorders: Make
) -> None:
    asker = await subscribed(recorders, live_url, world, "s1")
    other = await subscribed(recorders, live_url, world, "s2")
    session = await world.start()
    await asker.next("activeSessionsData")
    ack = await asker.call("checkActiveSessions", {"course_id": "cs101"})
    response = await asker.next("activeSessionsResponse")
    assert ack == response
    assert response["activeSessions"][0]["sessionId"] == session["id"]
    await other.next("activeSessionsData")
    await other.call("subscribeToCourse", {"course_id": "cs101"})  # a round trip
    assert other.count("activeSessionsResponse") == 0
    # subscribe's ack is the snapshot it also sends
    ack = await other.call("subscribeToCourse", {"course_id": "cs101"})
    assert ack == {"course_id": "cs101", "activeSessions": response["activeSessions"]}


async def test_unsubscribe_stops_events_and_is_idempotent(
    live_url: str, world: World, recorders: Make, app: Application
) -> None:
    student = await subscribed(recorders, live_url, world, "s1")
    await student.emit("unsubscribeFromCourse", {"course_id": "cs101"})
    await student.emit("unsubscribeFromCourse", {"course_id": "cs101"})
    await student.emit("unsubscribeFromCourse", {"course_id": "never-subscribed"})
    await student.barrier("cs101")
    await world.start()
    await app.relay.idle()
    await student.barrier("cs101")
    assert "courseSessionStarted" not in student.names()
    assert student.count("activeSessionsError") == 0


async def test_same_user_in_two_tabs(live_url: str, world: World, recorders: Make, app: Application) -> None:
    tab1 = await subscribed(recorders, live_url, world, "s1")
    tab2 = await subscribed(recorders, live_url, world, "s1")
    await world.start()
    await tab1.next("courseSessionStarted")
    await tab2.next("courseSessionStarted")
    await tab1.emit("unsubscribeFromCourse", {"course_id": "cs101"})
    await tab1.barrier("cs101")
    session = await world.start()
    await tab2.next("courseSessionStarted")
    await app.relay.idle()
    await tab1.barrier("cs101")
    assert tab1.count("courseSessionStarted") == 1
    await tab2.close()
    # closing one tab leaves the other connected and served
    await world.end(session["id"])
    await app.relay.idle()
    await tab1.barrier("cs101")
    assert tab1.client.connected


@pytest.mark.parametrize("user", ["pending", "rejected", "outsider", "other-teacher", "other-student"])
async def test_forbidden_and_unknown_courses_answer_alike(
    user: str, live_url: str, world: World, recorders: Make
) -> None:
    recorder = recorders(user)
    await recorder.connect(live_url, world.users[user].token)
    for event, response_event in (("subscribeToCourse", None), ("checkActiveSessions", None)):
        hidden = await recorder.call(event, {"course_id": "cs101"})
        missing = await recorder.call(event, {"course_id": "cs999"})
        assert hidden["code"] == missing["code"] == "forbidden"
        assert hidden["message"].replace("cs101", "X") == missing["message"].replace("cs999", "X")
        assert hidden["course_id"] == "cs101"
        assert response_event is None
    assert recorder.count("activeSessionsData") == 0
    assert recorder.count("activeSessionsResponse") == 0
    assert recorder.count("activeSessionsError") == 4
    # and it never got the room's events
    await world.start()
    await recorder.barrier("cs101")
    assert recorder.count("courseSessionStarted") == 0


BAD_PAYLOADS: list[Any] = [
    "cs101",
    42,
    None,
    ["cs101"],
    {"course": "cs101"},
    {"course_id": 5},
    {"course_id": ""},
    {"course_id": "   "},
    {"course_id": "x" * 129},
    {"course_id": {}},
    {"course_id": ["cs101"]},
    {"course_id": None},
    {"course_id": True},
    b"\x00\x01binary",
]


@pytest.mark.parametrize("event", ["subscribeToCourse", "unsubscribeFromCourse", "checkActiveSessions"])
async def test_bad_payloads_get_invalid_payload_and_the_connection_survives(
    event: str, live_url: str, world: World, recorders: Make
) -> None:
    recorder = recorders("s1")
    await recorder.connect(live_url, world.users["s1"].token)
    for payload in BAD_PAYLOADS:
        answer = await recorder.call(event, payload)
        assert answer["code"] == "invalid_payload", (payload, answer)
        assert "course_id" in answer["message"]
        error = await recorder.next("activeSessionsError")
        assert error == answer
    # no payload at all
    await recorder.client.emit(event)
    error = await recorder.next("activeSessionsError")
    assert error["code"] == "invalid_payload"
    assert "needs a payload" in error["message"]
    # still usable
    ok = await recorder.call("subscribeToCourse", {"course_id": "cs101"})
    assert ok["course_id"] == "cs101"


async def test_unknown_events_are_ignored(live_url: str, world: World, recorders: Make) -> None:
    recorder = recorders("s1")
    await recorder.connect(live_url, world.users["s1"].token)
    await recorder.client.emit("dropTables", {"course_id": "cs101"})
    await recorder.client.emit("subscribeToCourse ", {"course_id": "cs101"})
    ok = await recorder.call("checkActiveSessions", {"course_id": "cs101"})
    assert ok["course_id"] == "cs101"
    assert recorder.count("activeSessionsError") == 0


async def test_a_flood_is_rate_limited_and_others_do_not_notice(
    live_url: str, world: World, recorders: Make, app: Application
) -> None:
    flooder = recorders("s1")
    await flooder.connect(live_url, world.users["s1"].token)
    bystander = await subscribed(recorders, live_url, world, "s2")
    burst = app.context.settings.socket_rate_burst
    for _ in range(burst * 3):
        await flooder.client.emit("checkActiveSessions", {"course_id": "cs101"})
    limited = await flooder.next("activeSessionsError")
    assert limited["code"] == "rate_limited"
    assert "slow down" in limited["message"]
    # one error a second at most, not one per dropped event
    await flooder.next("activeSessionsResponse")
    assert flooder.count("activeSessionsError") <= 2
    assert flooder.count("activeSessionsResponse") < burst * 3  # some were dropped
    # the bystander is served at once
    session = await world.start()
    started = await bystander.next("courseSessionStarted")
    assert started["session_id"] == session["id"]
    assert flooder.client.connected


async def test_oversized_message_closes_only_that_connection(
    live_url: str, world: World, recorders: Make, app: Application
) -> None:
    big = recorders("s1")
    await big.connect(live_url, world.users["s1"].token)
    bystander = await subscribed(recorders, live_url, world, "s2")
    gone = asyncio.Event()
    big.client.on("disconnect", lambda *a: gone.set())
    await big.client.emit("subscribeToCourse", {"course_id": "cs101", "pad": "x" * (70 * 1024)})
    await asyncio.wait_for(gone.wait(), 5)
    await world.start()
    await bystander.next("courseSessionStarted")
    assert bystander.client.connected


async def test_long_polling_transport(live_url: str, world: World, recorders: Make) -> None:
    recorder = recorders("s1")
    await recorder.connect(live_url, world.users["s1"].token, transports=["polling"])
    assert recorder.client.transport() == "polling"
    await recorder.emit("subscribeToCourse", {"course_id": "cs101"})
    await recorder.next("activeSessionsData")
    session = await world.start()
    assert (await recorder.next("courseSessionStarted"))["session_id"] == session["id"]
    await recorder.next("activeSessionsData")


async def test_rejecting_an_enrollment_takes_the_user_out_of_the_room(
    live_url: str, world: World, recorders: Make, http: httpx.AsyncClient, app: Application
) -> None:
    student = await subscribed(recorders, live_url, world, "s1")
    response = await http.put(
        "/api/courses/cs101/enrollments/s1", json={"status": "rejected"}, headers=world.teacher.headers
    )
    assert response.status_code == 200
    await app.relay.idle()
    await world.start()
    await app.relay.idle()
    await student.call("unsubscribeFromCourse", {"course_id": "nothing"})  # round trip
    assert student.count("courseSessionStarted") == 0
    refused = await student.call("subscribeToCourse", {"course_id": "cs101"})
    assert refused["code"] == "forbidden"


async def test_auto_end_reaches_subscribers(
    live_url: str, world: World, recorders: Make, app: Application, clock: FakeClock
) -> None:
    student = await subscribed(recorders, live_url, world, "s1")
    session = await world.start(max_duration_minutes=15, late_after_minutes=5)
    await student.next("activeSessionsData")
    clock.advance(minutes=16)
    app.auto_ender.wake()
    ended = await student.next("courseSessionEnded")
    assert ended["session_id"] == session["id"]
    assert ended["ended_by"] == "system"
    assert ended["final_statistics"]["total"] == 3
    assert (await student.next("activeSessionsData"))["activeSessions"] == []


async def test_teacher_follows_the_live_roster(
    live_url: str, world: World, recorders: Make, http: httpx.AsyncClient
) -> None:
    session = await world.start()
    teacher = recorders("teacher")
    await teacher.connect(live_url, world.teacher.token)
    roster = await teacher.call("subscribeToSession", {"session_id": session["id"]})
    assert roster == await teacher.next("sessionRosterData")
    assert roster["session_id"] == session["id"]
    assert roster["statistics"]["total"] == 3
    assert {r["user_id"]: r["status"] for r in roster["records"]} == {
        "s1": "absent",
        "s2": "absent",
        "s3": "absent",
    }

    await world.check_in("s2", session["id"])
    update = await teacher.next("attendanceUpdated")
    assert update["session_id"] == session["id"]
    assert update["user_id"] == "s2"
    assert update["name"] == "Bilal"
    assert update["status"] == "present"
    assert ISO_MS_Z.match(update["marked_at"])
    assert update["statistics"]["present"] == 1

    await http.put(
        f"/api/sessions/{session['id']}/records/s3",
        json={"status": "excused", "remarks": "ill"},
        headers=world.teacher.headers,
    )
    excused = await teacher.next("attendanceUpdated")
    assert (excused["user_id"], excused["status"], excused["remarks"]) == ("s3", "excused", "ill")
    assert excused["statistics"]["excused"] == 1

    await teacher.call("unsubscribeFromSession", {"session_id": session["id"]})
    await world.check_in("s1", session["id"])
    await teacher.call("checkActiveSessions", {"course_id": "cs101"})
    assert teacher.count("attendanceUpdated") == 2

    # students, admins of nothing, and unknown sessions
    student = recorders("s1")
    await student.connect(live_url, world.users["s1"].token)
    refused = await student.call("subscribeToSession", {"session_id": session["id"]})
    unknown = await student.call("subscribeToSession", {"session_id": "nope"})
    assert refused["code"] == unknown["code"] == "forbidden"
    admin = recorders("admin")
    await admin.connect(live_url, world.admin.token)
    assert (await admin.call("subscribeToSession", {"session_id": session["id"]}))["session_id"] == session[
        "id"
    ]


async def test_disconnects_free_rooms_and_connection_state(
    live_url: str, world: World, app: Application
) -> None:
    realtime = app.realtime

    def footprint() -> tuple[int, int, int, int]:
        return (
            len(realtime.connections),
            len(realtime.user_sockets),
            sum(realtime.room_size(room) for room in realtime.local_rooms()),
            len(realtime.server.engine.sessions),
        )

    before = footprint()
    clients = [Recorder(f"c{i}") for i in range(40)]
    users = ["s1", "s2", "s3", "teacher"]
    await asyncio.gather(
        *(c.connect(live_url, world.users[users[i % 4]].token) for i, c in enumerate(clients))
    )
    await asyncio.gather(*(c.call("subscribeToCourse", {"course_id": "cs101"}) for c in clients))
    assert footprint()[0] == before[0] + 40
    await asyncio.gather(*(c.close() for c in clients))
    for _ in range(200):
        if footprint() == before:
            break
        await asyncio.sleep(0.01)
    assert footprint() == before


async def test_a_student_hears_about_its_own_record_only(
    live_url: str, world: World, recorders: Make, http: httpx.AsyncClient, app: Application
) -> None:
    alice = await subscribed(recorders, live_url, world, "s1")
    bilal = await subscribed(recorders, live_url, world, "s2")
    session = await world.start()
    await http.put(
        f"/api/sessions/{session['id']}/records/s1",
        json={"status": "excused", "remarks": "match day"},
        headers=world.teacher.headers,
    )
    mine = await alice.next("myAttendanceUpdated")
    assert mine["session_id"] == session["id"]
    assert (mine["user_id"], mine["status"], mine["remarks"]) == ("s1", "excused", "match day")
    assert "statistics" not in mine
    await app.relay.idle()
    await bilal.barrier("cs101")
    assert bilal.count("myAttendanceUpdated") == 0


async def test_shutdown_closes_transports_without_a_socketio_disconnect(
    live_url: str, world: World, app: Application
) -> None:
    # socket.io-client never reconnects after a Socket.IO DISCONNECT packet
    # ("io server disconnect"); a closed transport makes it reconnect.
    url = live_url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    frames: list[str] = []
    async with websockets.connect(url) as ws:
        assert str(await ws.recv()).startswith("0{")
        await ws.send("40" + json.dumps({"token": world.users["s1"].token}))
        assert str(await ws.recv()).startswith('40{"sid"')
        await app.realtime.close()

        async def drain() -> None:
            with contextlib.suppress(websockets.ConnectionClosed):
                async for frame in ws:
                    frames.append(str(frame))

        # bounded: without the server closing the connection this would hang until ping timeout
        await asyncio.wait_for(drain(), 10)
    # The websocket ends (as Node's engine.io closes it at shutdown); never a "41", after which
    # socket.io-client would not reconnect.
    assert not any(frame.startswith("41") for frame in frames), frames


async def test_socket_connects_refresh_user_rows_in_a_batch(
    live_url: str, world: World, app: Application, http: httpx.AsyncClient
) -> None:
    await http.put(
        "/api/courses/cs101/enrollments/newcomer",
        json={"status": "approved", "name": "Old Name"},
        headers=world.teacher.headers,
    )
    clients = []
    for i in range(3):
        token = world.tokens.mint(f"fresh-{i}", name=f"Fresh {i}", ttl_seconds=600)
        clients.append(Recorder(f"fresh-{i}"))
        await clients[-1].connect(live_url, token)
    renamed = world.tokens.mint("newcomer", name="New Name", ttl_seconds=600)
    clients.append(Recorder("newcomer"))
    await clients[-1].connect(live_url, renamed)
    await app.context.service.users.flush()
    roster = await http.get("/api/courses/cs101/enrollments", headers=world.teacher.headers)
    assert {e["user_id"]: e["name"] for e in roster.json()}["newcomer"] == "New Name"
    async with app.context.database.read() as db:
        names = dict((await db.execute(select(User.id, User.name).where(User.id.like("fresh-%")))).all())
    assert names == {"fresh-0": "Fresh 0", "fresh-1": "Fresh 1", "fresh-2": "Fresh 2"}
    for client in clients:
        await client.close()


async def test_oversized_polling_message_is_refused_at_once(
    live_url: str, world: World, recorders: Make
) -> None:
    big = recorders("s1")
    await big.connect(live_url, world.users["s1"].token, transports=["polling"])
    sid = big.client.eio.sid
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{live_url}/socket.io/?EIO=4&transport=polling&sid={sid}",
            content=b"4" + b"x" * (70 * 1024),
            headers={"Content-Type": "text/plain"},
            timeout=10,
        )
        assert response.status_code == 413
        assert "larger than" in response.text
        # that Engine.IO session is gone
        gone = await http.get(f"{live_url}/socket.io/?EIO=4&transport=polling&sid={sid}", timeout=10)
        assert gone.status_code == 400


async def test_a_short_session_gets_a_late_threshold_that_fits(world: World) -> None:
    session = await world.start(max_duration_minutes=5)
    assert session["late_after_minutes"] == 5


async def test_a_burst_of_check_ins_shares_snapshots_and_ends_on_the_true_count(
    live_url: str, world: World, recorders: Make, app: Application
) -> None:
    student = await subscribed(recorders, live_url, world, "s1")
    session = await world.start()
    await student.next("activeSessionsData")
    app.relay.count_interval = 2.0  # a wide window, so the test does not depend on timing
    first = await world.check_in("s1", session["id"])
    assert first.status_code == 200
    assert (await student.next("activeSessionsData"))["activeSessions"][0]["studentCount"] == 1
    # the next two arrive within the window: one snapshot carries both
    responses = await asyncio.gather(world.check_in("s2", session["id"]), world.check_in("s3", session["id"]))
    assert {r.status_code for r in responses} == {200}
    last = await student.next("activeSessionsData")
    assert last["activeSessions"][0]["studentCount"] == 3
    await app.relay.idle()
    await student.barrier("cs101")
    assert student.count("activeSessionsData") == 4  # subscribe, start, first check-in, the pair
