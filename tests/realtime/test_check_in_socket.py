"""``checkIn`` over the live socket (issue 22, item 3): the HTTP check-in's rules, audit, flags,
limits and announcements, answered by an acknowledgement, through a real server and real clients."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from attendance_live.app import Application
from attendance_live.db.models import AttendanceRecord, RecordChange
from tests.helpers import Recorder, World

ANNOUNCED = ("attendanceUpdated", "myAttendanceUpdated", "activeSessionsData")


async def http_check_in(
    http: httpx.AsyncClient, world: World, user: str, sid: str, **body: Any
) -> httpx.Response:
    return await http.post(
        f"/api/sessions/{sid}/check-in", json=body or None, headers=world.users[user].headers
    )


async def connected(recorders: Callable[[str], Recorder], live_url: str, world: World, user: str) -> Recorder:
    recorder = recorders(user)
    await recorder.connect(live_url, world.users[user].token)
    return recorder


# Absent, or no row yet: the roster's rows follow the start's announcement, and a missing row reads
# as absent everywhere.
NOT_CHECKED_IN = (None, ("absent", None))


async def record_of(app: Application, sid: str, user: str) -> tuple[str, str | None] | None:
    async with app.context.database.read() as db:
        row = (
            await db.execute(
                select(AttendanceRecord.status, AttendanceRecord.marked_by).where(
                    AttendanceRecord.session_id == sid, AttendanceRecord.user_id == user
                )
            )
        ).first()
    return None if row is None else (row[0], row[1])


async def changes(app: Application, sid: str) -> list[tuple[str, str, str | None, str | None, str | None]]:
    async with app.context.database.read() as db:
        rows = await db.execute(
            select(
                RecordChange.user_id,
                RecordChange.method,
                RecordChange.address,
                RecordChange.device_id,
                RecordChange.same_device_as,
            )
            .where(RecordChange.session_id == sid)
            .order_by(RecordChange.id)
        )
        return [(u, m, a, d, s) for u, m, a, d, s in rows]


def refusal_of(response: httpx.Response) -> dict[str, Any]:
    """The socket answer that mirrors an HTTP refusal (reason from the body, or the status's)."""
    body = response.json()
    reason = (
        body.get("reason") or {404: "not_found", 403: "forbidden", 409: "session_ended"}[response.status_code]
    )
    return {"ok": False, "reason": reason, "message": body["detail"]}


# ------------------------------------------------------------------------ success


async def test_a_check_in_is_acknowledged_with_the_http_record_and_announced_as_http_announces_it(
    live_url: str,
    world: World,
    app: Application,
    http: httpx.AsyncClient,
    recorders: Callable[[str], Recorder],
) -> None:
    session = await world.start()
    sid = session["id"]
    teacher = await connected(recorders, live_url, world, "teacher")
    watcher = await connected(recorders, live_url, world, "s3")
    s1 = await connected(recorders, live_url, world, "s1")
    s2 = await connected(recorders, live_url, world, "s2")
    await teacher.call("subscribeToCourse", {"course_id": world.course_id})
    await teacher.call("subscribeToSession", {"session_id": sid})
    await watcher.call("subscribeToCourse", {"course_id": world.course_id})
    for subscriber in (teacher, watcher):
        await subscriber.next("activeSessionsData")  # the subscription's own snapshot

    def seen() -> tuple[int, int]:
        return len(teacher.events), len(watcher.events)

    before = seen()
    answer = await s1.call("checkIn", {"session_id": sid, "device_id": "d-0001"})
    assert answer["ok"] is True
    assert set(answer) == {"ok", "record"}
    own = await s1.next("myAttendanceUpdated")
    update = await teacher.next("attendanceUpdated")
    await teacher.next("activeSessionsData")
    await watcher.next("activeSessionsData")
    await teacher.barrier(world.course_id)
    await watcher.barrier(world.course_id)
    by_socket = [teacher.events[before[0] :], watcher.events[before[1] :]]

    before = seen()
    response = await http_check_in(http, world, "s2", sid, device_id="d-0002")
    assert response.status_code == 200
    await s2.next("myAttendanceUpdated")
    await teacher.next("attendanceUpdated")
    await teacher.next("activeSessionsData")
    await watcher.next("activeSessionsData")
    await teacher.barrier(world.course_id)
    await watcher.barrier(world.course_id)
    by_http = [teacher.events[before[0] :], watcher.events[before[1] :]]

    # The ack's record has the HTTP body's shape, and the same values as the HTTP read.
    record = answer["record"]
    assert set(record) == set(response.json())
    assert record["user_id"] == "s1"
    assert record["status"] == "present"
    assert record["marked_by"] == "s1"
    assert record["audit"] is None  # the trail is the teacher's, as over HTTP
    assert own["status"] == record["status"]
    assert own["marked_at"] == record["marked_at"]
    # Every receiver got the same events, in the same order, with the same fields.
    for socket_events, http_events in zip(by_socket, by_http, strict=True):
        assert [name for name, _ in socket_events] == [name for name, _ in http_events]
        for (name, a), (_, b) in zip(socket_events, http_events, strict=True):
            assert set(a) == set(b), name
    assert update["audit"]["how"] == "check_in"
    assert update["audit"]["address"] == "127.0.0.1"
    assert update["audit"]["device_id"] == "d-0001"
    assert update["statistics"]["present"] == 1
    counts = [
        p["activeSessions"][0]["studentCount"]
        for n, p in by_socket[1] + by_http[1]
        if n == "activeSessionsData"
    ]
    assert counts == [1, 2]
    # The audit row: the socket's address, the device as given.
    assert await changes(app, sid) == [
        ("s1", "check_in", "127.0.0.1", "d-0001", None),
        ("s2", "check_in", "127.0.0.1", "d-0002", None),
    ]


async def test_a_repeat_answers_the_same_record_and_announces_nothing(
    live_url: str, world: World, app: Application, recorders: Callable[[str], Recorder]
) -> None:
    sid = (await world.start())["id"]
    teacher = await connected(recorders, live_url, world, "teacher")
    await teacher.call("subscribeToSession", {"session_id": sid})
    s1 = await connected(recorders, live_url, world, "s1")
    first = await s1.call("checkIn", {"session_id": sid})
    again = await s1.call("checkIn", {"session_id": sid, "device_id": "d-other"})
    assert first["ok"] is again["ok"] is True
    assert again["record"] == first["record"]
    await teacher.barrier(world.course_id)
    await s1.barrier(world.course_id)
    assert teacher.count("attendanceUpdated") == 1
    assert s1.count("myAttendanceUpdated") == 1
    assert [c[0] for c in await changes(app, sid)] == ["s1"]


async def test_a_device_that_checked_in_another_student_is_flagged(
    live_url: str, world: World, app: Application, recorders: Callable[[str], Recorder]
) -> None:
    sid = (await world.start())["id"]
    teacher = await connected(recorders, live_url, world, "teacher")
    await teacher.call("subscribeToSession", {"session_id": sid})
    for user in ("s1", "s2"):
        student = await connected(recorders, live_url, world, user)
        assert (await student.call("checkIn", {"session_id": sid, "device_id": "d-shared"}))["ok"] is True
    await teacher.next("attendanceUpdated")
    flagged = await teacher.next("attendanceUpdated")
    assert flagged["user_id"] == "s2"
    assert flagged["audit"]["same_device_as"] == "s1"
    assert (await changes(app, sid))[-1] == ("s2", "check_in", "127.0.0.1", "d-shared", "s1")


# ------------------------------------------------------------------------ refusals


async def test_code_rules_answer_as_http_does(
    live_url: str,
    world: World,
    app: Application,
    http: httpx.AsyncClient,
    recorders: Callable[[str], Recorder],
) -> None:
    sid = (await world.start(check_in_mode="code"))["id"]
    right = (await world.check_in_code(sid))["code"]
    wrong = "AAAAAA" if right != "AAAAAA" else "BBBBBB"
    s1 = await connected(recorders, live_url, world, "s1")

    missing = await s1.call("checkIn", {"session_id": sid})
    assert missing == refusal_of(await http_check_in(http, world, "s2", sid))
    assert missing["reason"] == "code_required"
    blank = await s1.call("checkIn", {"session_id": sid, "code": "   "})
    assert blank["reason"] == "code_required"
    bad = await s1.call("checkIn", {"session_id": sid, "code": wrong})
    assert bad == refusal_of(await http_check_in(http, world, "s2", sid, code=wrong))
    assert bad["reason"] == "code_invalid"
    error = await s1.next("activeSessionsError")  # also sent as the error event, for ack-less clients
    assert error == {
        "message": missing["message"],
        "code": "code_required",
        "event": "checkIn",
        "session_id": sid,
    }
    assert await record_of(app, sid, "s1") in NOT_CHECKED_IN

    typed = f"{right[:3].lower()}-{right[3:].lower()}"  # case and dashes ignored, as over HTTP
    good = await s1.call("checkIn", {"session_id": sid, "code": typed})
    assert good["ok"] is True
    assert good["record"]["status"] == "present"
    assert await record_of(app, sid, "s1") == ("present", "s1")


async def test_a_session_with_networks_refuses_a_socket_from_elsewhere(
    live_url: str,
    world: World,
    app: Application,
    http: httpx.AsyncClient,
    recorders: Callable[[str], Recorder],
) -> None:
    sid = (await world.start(allowed_networks=["10.20.0.0/16"]))["id"]
    s1 = await connected(recorders, live_url, world, "s1")
    answer = await s1.call("checkIn", {"session_id": sid})
    assert answer["reason"] == "network_not_allowed"
    assert "(your address is 127.0.0.1)" in answer["message"]
    assert answer == refusal_of(
        await http_check_in(http, world, "s2", sid)
    )  # the HTTP client is 127.0.0.1 too
    assert await changes(app, sid) == []


@pytest.mark.parametrize(
    ("user", "reason", "message"),
    [
        (
            "pending",
            "forbidden",
            "Your enrollment in this course is pending; ask the course's teacher to approve it",
        ),
        ("teacher", "forbidden", "Only approved students of the course can check in"),
        ("admin", "forbidden", "Only approved students of the course can check in"),
        ("rejected", "not_found", "Session {sid!r} not found"),
        ("outsider", "not_found", "Session {sid!r} not found"),
    ],
)
async def test_who_may_not_check_in_is_told_why(
    live_url: str,
    world: World,
    app: Application,
    http: httpx.AsyncClient,
    recorders: Callable[[str], Recorder],
    user: str,
    reason: str,
    message: str,
) -> None:
    sid = (await world.start())["id"]
    client = await connected(recorders, live_url, world, user)
    answer = await client.call("checkIn", {"session_id": sid})
    assert answer == {"ok": False, "reason": reason, "message": message.format(sid=sid)}
    assert answer == refusal_of(await http_check_in(http, world, user, sid))
    assert await changes(app, sid) == []


async def test_an_ended_or_unknown_session_is_refused(
    live_url: str, world: World, http: httpx.AsyncClient, recorders: Callable[[str], Recorder]
) -> None:
    sid = (await world.start())["id"]
    assert (await world.end(sid)).status_code == 200
    s1 = await connected(recorders, live_url, world, "s1")
    ended = await s1.call("checkIn", {"session_id": sid})
    assert ended == {
        "ok": False,
        "reason": "session_ended",
        "message": f"Session {sid!r} has ended; check-in is closed",
    }
    assert ended == refusal_of(await http_check_in(http, world, "s2", sid))
    unknown = await s1.call("checkIn", {"session_id": "no-such-session"})
    assert unknown == {"ok": False, "reason": "not_found", "message": "Session 'no-such-session' not found"}
    assert unknown == refusal_of(await http_check_in(http, world, "s2", "no-such-session"))


async def test_wrong_codes_over_http_and_the_socket_count_against_one_limit(
    live_url: str,
    world: World,
    app: Application,
    http: httpx.AsyncClient,
    recorders: Callable[[str], Recorder],
) -> None:
    sid = (await world.start(check_in_mode="code"))["id"]
    right = (await world.check_in_code(sid))["code"]
    wrong = "AAAAAA" if right != "AAAAAA" else "BBBBBB"
    teacher = await connected(recorders, live_url, world, "teacher")
    await teacher.call("subscribeToSession", {"session_id": sid})
    s1 = await connected(recorders, live_url, world, "s1")
    for _ in range(3):  # CHECK_IN_CODE_ATTEMPTS is 5: three over HTTP...
        assert (await http_check_in(http, world, "s1", sid, code=wrong)).json()["reason"] == "code_invalid"
    for _ in range(2):  # ...and two over the socket reach it
        assert (await s1.call("checkIn", {"session_id": sid, "code": wrong}))["reason"] == "code_invalid"
    for code in (wrong, right):  # now even the right code waits for the window
        limited = await s1.call("checkIn", {"session_id": sid, "code": code})
        assert limited["ok"] is False
        assert limited["reason"] == "too_many_attempts"
        assert "CHECK_IN_CODE_ATTEMPTS" in limited["message"]
        assert 1 <= limited["retry_after"] <= 60
    over_http = await http_check_in(http, world, "s1", sid, code=right)
    assert over_http.status_code == 429
    assert over_http.json()["detail"] == limited["message"]
    # The attempt that reached the limit flagged the student for the teacher, as over HTTP.
    flagged = await teacher.next("attendanceUpdated")
    assert flagged["user_id"] == "s1"
    assert flagged["code_attempts_blocked_at"] is not None
    assert await record_of(app, sid, "s1") in NOT_CHECKED_IN
    # Another student is not affected.
    s2 = await connected(recorders, live_url, world, "s2")
    assert (await s2.call("checkIn", {"session_id": sid, "code": right}))["ok"] is True


# ------------------------------------------------------------------------ payloads


@pytest.mark.parametrize(
    ("payload", "names"),
    [
        (None, "checkIn needs a payload {session_id}"),
        ((None,), "not null"),
        ([1, 2], "not an array"),
        ("abc", "not a string"),
        ({}, "session_id must be a non-empty string (missing)"),
        ({"session_id": 5}, "session_id must be a non-empty string (a number)"),
        ({"session_id": "  "}, "session_id must not be empty"),
        ({"session_id": "x" * 129}, "session_id is longer than 128 characters"),
        ({"session_id": "SID", "code": 123456}, "code must be a string (a number)"),
        ({"session_id": "SID", "code": "A" * 33}, "code is longer than 32 characters"),
        ({"session_id": "SID", "device_id": ["d"]}, "device_id must be a string (an array)"),
        ({"session_id": "SID", "device_id": "has space"}, "device_id must be 1 to 128 letters"),
        ({"session_id": "SID", "device_id": "d" * 129}, "device_id must be 1 to 128 letters"),
        (
            {"session_id": "SID", "pin": "1234"},
            "checkIn does not take 'pin'; send only session_id, code and device_id",
        ),
    ],
)
async def test_a_malformed_payload_is_refused_and_names_the_fix(
    live_url: str,
    world: World,
    app: Application,
    recorders: Callable[[str], Recorder],
    payload: Any,
    names: str,
) -> None:
    sid = (await world.start())["id"]
    if isinstance(payload, dict) and payload.get("session_id") == "SID":
        payload = {**payload, "session_id": sid}
    s1 = await connected(recorders, live_url, world, "s1")
    answer = await s1.client.call("checkIn", payload, timeout=5)
    assert answer["ok"] is False
    assert answer["reason"] == "invalid_payload"
    assert names in answer["message"]
    assert "send" in answer["message"]  # and what to send instead
    error = await s1.next("activeSessionsError")
    assert (error["code"], error["event"], error["message"]) == (
        "invalid_payload",
        "checkIn",
        answer["message"],
    )
    assert await record_of(app, sid, "s1") in NOT_CHECKED_IN
    # The connection stays usable.
    assert (await s1.call("checkIn", {"session_id": sid}))["ok"] is True


async def test_without_an_ack_a_check_in_still_happens_and_a_refusal_is_an_error_event(
    live_url: str, world: World, app: Application, recorders: Callable[[str], Recorder]
) -> None:
    sid = (await world.start())["id"]
    s1 = await connected(recorders, live_url, world, "s1")
    await s1.emit("checkIn", {"session_id": "no-such-session"})
    error = await s1.next("activeSessionsError")
    assert error == {
        "message": "Session 'no-such-session' not found",
        "code": "not_found",
        "event": "checkIn",
        "session_id": "no-such-session",
    }
    await s1.emit("checkIn", {"session_id": sid})
    own = await s1.next("myAttendanceUpdated")
    assert (own["session_id"], own["status"]) == (sid, "present")
    assert await record_of(app, sid, "s1") == ("present", "s1")


async def test_past_the_socket_rate_every_check_in_is_still_answered(
    live_url: str, world: World, recorders: Callable[[str], Recorder]
) -> None:
    sid = (await world.start())["id"]
    s1 = await connected(recorders, live_url, world, "s1")
    # The test server allows bursts of 100 events (SOCKET_RATE_BURST); 200 at once overflow it.
    answers = await asyncio.gather(*(s1.call("checkIn", {"session_id": sid}) for _ in range(200)))
    assert {a["ok"] for a in answers} == {True, False}
    limited = [a for a in answers if not a["ok"]]
    assert {a["reason"] for a in limited} == {"rate_limited"}
    assert limited[0]["message"] == "Too many events: at most 50 a second; slow down"
    assert limited[0]["retry_after"] == 1
    error = await s1.next("activeSessionsError")  # one error event a second at most, as for any event
    assert (error["code"], error["event"]) == ("rate_limited", "checkIn")


@pytest.mark.parametrize(
    ("failure", "answer"),
    [
        (
            OperationalError("UPDATE", {}, Exception("database is locked")),
            {
                "ok": False,
                "reason": "unavailable",
                "message": "The server cannot reach its database; try again shortly",
                "retry_after": 2,
            },
        ),
        (
            RuntimeError("a bug"),
            {"ok": False, "reason": "internal", "message": "Internal server error; try again"},
        ),
    ],
)
async def test_a_failure_is_answered_and_the_connection_stays_usable(
    live_url: str,
    world: World,
    app: Application,
    recorders: Callable[[str], Recorder],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    failure: Exception,
    answer: dict[str, Any],
) -> None:
    sid = (await world.start())["id"]
    s1 = await connected(recorders, live_url, world, "s1")

    async def failing(*args: Any, **kwargs: Any) -> Any:
        raise failure

    with monkeypatch.context() as patched:
        patched.setattr(app.realtime.service, "check_in", failing)
        assert await s1.call("checkIn", {"session_id": sid}) == answer
    assert any(
        "checkIn" in r.getMessage() and r.exc_info for r in caplog.records
    )  # logged, with its traceback
    assert (await s1.call("checkIn", {"session_id": sid}))["ok"] is True
