"""Tokens that end on live sockets, reserved event names, per-user socket caps, handshake timeouts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import pytest
import socketio
import websockets

from attendance_live.app import Application
from attendance_live.config import Settings
from tests.helpers import Recorder, World

Make = Callable[[str], Recorder]
ISO_MS_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
MAX_SOCKETS = 3


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"max_sockets_per_user": MAX_SOCKETS, "connect_timeout_seconds": 1, "ping_timeout_seconds": 1}
    )


def exp_iso(token: str) -> str:
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    stamp = datetime.fromtimestamp(exp, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def on_disconnect(recorder: Recorder) -> asyncio.Event:
    gone = asyncio.Event()

    async def mark(*_: Any) -> None:
        gone.set()

    recorder.client.on("disconnect", mark)
    return gone


async def subscribed(make: Make, url: str, token: str, name: str, course: str = "cs101") -> Recorder:
    recorder = make(name)
    await recorder.connect(url, token)
    await recorder.call("subscribeToCourse", {"course_id": course})
    return recorder


# ------------------------------------------------------------------ expiry


async def test_at_exp_the_socket_leaves_its_rooms_is_told_and_is_disconnected(
    live_url: str, world: World, recorders: Make, app: Application
) -> None:
    short = world.tokens.mint("s1", name="Alice", ttl_seconds=2)
    student = await subscribed(recorders, live_url, short, "short-lived")
    gone = on_disconnect(student)
    other = await subscribed(recorders, live_url, world.users["s2"].token, "s2")
    assert app.realtime.room_size("course:cs101") == 2

    expired = await student.next("tokenExpired", timeout=10)
    assert expired == {"expired_at": exp_iso(short)}
    assert ISO_MS_Z.match(expired["expired_at"])
    await asyncio.wait_for(gone.wait(), 5)  # disconnected by the server
    assert app.realtime.room_size("course:cs101") == 1

    await world.start(topic="After expiry")
    await other.next("courseSessionStarted")  # the course's event went out...
    await other.barrier("cs101")
    assert student.names() == ["activeSessionsData", "tokenExpired"]  # ...and not to the expired socket


async def test_refresh_moves_the_deadline_and_a_new_connection_works_after_expiry(
    live_url: str, world: World, recorders: Make, app: Application
) -> None:
    keeps = await subscribed(recorders, live_url, world.tokens.mint("s1", ttl_seconds=2), "refreshes")
    lapses = await subscribed(recorders, live_url, world.tokens.mint("s2", ttl_seconds=2), "lapses")
    fresh = world.tokens.mint("s1", name="Alice Renamed", ttl_seconds=3600)
    answer = await keeps.call("refreshToken", {"token": fresh})
    assert answer == {"expires_at": exp_iso(fresh)}
    assert await keeps.next("tokenRefreshed") == answer

    await lapses.next("tokenExpired", timeout=10)  # the old deadline has passed for both
    session = await world.start()
    started = await keeps.next("courseSessionStarted")
    assert started["session_id"] == session["id"]
    assert keeps.count("tokenExpired") == 0

    # The lapsed client connects again with a new token, as socket.io-client's auth callback does.
    again = await subscribed(recorders, live_url, world.users["s2"].token, "again")
    assert (await again.call("checkActiveSessions", {"course_id": "cs101"}))["activeSessions"][0][
        "sessionId"
    ] == session["id"]


async def test_a_refresh_with_a_lower_role_leaves_what_that_role_may_not_follow(
    live_url: str, world: World, recorders: Make, app: Application
) -> None:
    # Issue 23: an admin's socket refreshed with a student token (same user) kept the course's
    # events and the roster's attendanceUpdated (audit addresses, device ids).
    session = await world.start(topic="Before")
    sid = session["id"]
    admin = await subscribed(recorders, live_url, world.admin.token, "admin")
    await admin.call("subscribeToSession", {"session_id": sid})
    teacher = await subscribed(recorders, live_url, world.teacher.token, "teacher")
    await teacher.call("subscribeToSession", {"session_id": sid})
    student = await subscribed(recorders, live_url, world.users["s1"].token, "s1")

    # The teacher's token now says student: it is still the course's teacher (from data).
    for recorder, user_id, name in ((admin, "admin", "Ada Admin"), (teacher, "teacher", "Grace Hopper")):
        lower = world.tokens.mint(user_id, name=name, role="student", ttl_seconds=3600)
        answer = await recorder.call("refreshToken", {"token": lower})
        assert answer == {"expires_at": exp_iso(lower)}
    # A student refreshing as a student keeps its course.
    again = world.tokens.mint("s1", name="Alice", role="student", ttl_seconds=3600)
    assert "expires_at" in await student.call("refreshToken", {"token": again})

    (admin_socket,) = app.realtime.user_sockets["admin"]
    assert app.realtime.connections[admin_socket.sid].courses == {}
    # No course, roster or join-request room is left (managers:, where join requests go).
    assert not {room for room in admin_socket.rooms if room.startswith(("course:", "session:", "managers:"))}
    (teacher_socket,) = app.realtime.user_sockets["teacher"]
    assert "managers:cs101" in teacher_socket.rooms  # still the course's teacher, from data

    assert (await world.check_in("s2", sid)).status_code == 200
    roster = await teacher.next("attendanceUpdated")
    assert roster["user_id"] == "s2"
    assert (await world.end(sid)).status_code == 200
    later = await world.start(topic="After")
    for recorder in (teacher, student):
        assert (await recorder.next("courseSessionStarted"))["session_id"] == later["id"]
    await admin.call("checkActiveSessions", {"course_id": "other"})  # a round trip: all sent has arrived
    assert admin.count("attendanceUpdated") == 0
    assert admin.count("courseSessionEnded") == 0
    assert admin.count("courseSessionStarted") == 0
    # Asking again is answered as for any student of no relation.
    refused = await admin.call("subscribeToCourse", {"course_id": "cs101"})
    assert refused["code"] == "forbidden"
    refused = await admin.call("subscribeToSession", {"session_id": later["id"]})
    assert refused["code"] == "forbidden"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (None, "invalid_payload"),
        ("a-token", "invalid_payload"),
        ({"token": 5}, "invalid_payload"),
        ({"token": ""}, "invalid_payload"),
        ({}, "invalid_payload"),
        ({"token": "not-a-jwt"}, "forbidden"),
        ("other-user", "forbidden"),
        ("expired", "forbidden"),
        ("foreign-secret", "forbidden"),
    ],
)
async def test_a_refused_refresh_changes_nothing(
    live_url: str, world: World, recorders: Make, app: Application, payload: object, code: str
) -> None:
    token = world.tokens.mint("s1", ttl_seconds=600)
    student = await subscribed(recorders, live_url, token, "s1")
    (socket,) = app.realtime.user_sockets["s1"]
    sid = socket.sid
    before = app.realtime.connections[sid].expires_at
    named = {
        "other-user": {"token": world.users["s2"].token},
        "expired": {"token": world.tokens.mint("s1", ttl_seconds=-5)},
        "foreign-secret": {
            "token": jwt.encode({"sub": "s1", "exp": 9999999999}, "z" * 40, algorithm="HS256")
        },
    }
    answer = await student.call(
        "refreshToken", named.get(payload, payload) if isinstance(payload, str) else payload
    )
    assert answer["code"] == code
    assert answer["event"] == "refreshToken"
    assert (await student.next("activeSessionsError"))["code"] == code
    assert app.realtime.connections[sid].expires_at == before
    assert app.realtime.connections[sid].identity.user_id == "s1"
    assert student.count("tokenRefreshed") == 0
    assert (await student.call("checkActiveSessions", {"course_id": "cs101"}))["course_id"] == "cs101"


# ---------------------------------------------------------------- reserved names


class RawSocket:
    """A Socket.IO client spoken by hand over a websocket, to send what no library would."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.frames: list[str] = []
        self._ack = 0

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, live_url: str, token: str) -> Any:
        url = live_url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
        async with websockets.connect(url) as ws:
            assert str(await ws.recv()).startswith("0{")
            await ws.send("40" + json.dumps({"token": token}))
            assert str(await ws.recv()).startswith('40{"sid"')
            yield cls(ws)

    async def send(self, *data: Any) -> None:
        await self.ws.send("42" + json.dumps(list(data)))

    async def call(self, *data: Any) -> Any:
        self._ack += 1
        await self.ws.send(f"42{self._ack}" + json.dumps(list(data)))
        prefix = f"43{self._ack}"
        while True:
            frame = str(await asyncio.wait_for(self.ws.recv(), 5))
            if frame == "2":
                await self.ws.send("3")
                continue
            if frame.startswith(prefix):
                return json.loads(frame[len(prefix) :])[0]
            self.frames.append(frame)

    def events(self) -> list[str]:
        return [json.loads(f[2:])[0] for f in self.frames if f.startswith("42")]


async def test_reserved_event_names_never_reach_a_handler(
    live_url: str, world: World, recorders: Make, app: Application, http: httpx.AsyncClient
) -> None:
    """42["disconnect"] used to run the disconnect handler: after it, rejecting the student's
    enrollment left the socket in the course room and the student kept receiving."""
    witness = await subscribed(recorders, live_url, world.users["s2"].token, "s2")
    async with RawSocket.connect(live_url, world.users["s1"].token) as student:
        assert (await student.call("subscribeToCourse", {"course_id": "cs101"}))["course_id"] == "cs101"
        await student.send("disconnect")
        await student.send("disconnect", "transport close")
        await student.send("connect", {}, {"token": world.users["outsider"].token})
        for name in ("disconnecting", "connect_error", "newListener", "removeListener"):
            await student.send(name, {"course_id": "cs101"})
        # Still connected, still s1, still one socket for s1 and none for the outsider.
        assert (await student.call("checkActiveSessions", {"course_id": "cs101"}))["course_id"] == "cs101"
        assert len(app.realtime.user_sockets["s1"]) == 1
        assert "outsider" not in app.realtime.user_sockets
        assert app.realtime.room_size("course:cs101") == 2

        rejected = await http.put(
            "/api/courses/cs101/enrollments/s1", json={"status": "rejected"}, headers=world.teacher.headers
        )
        assert rejected.status_code == 200
        session = await world.start(topic="After rejection")
        assert (await witness.next("courseSessionStarted"))["session_id"] == session["id"]
        refused = await student.call("checkActiveSessions", {"course_id": "cs101"})
        assert refused["code"] == "forbidden"
        assert "courseSessionStarted" not in student.events()  # out of the room: nothing reached it
        assert app.realtime.room_size("course:cs101") == 1


# ------------------------------------------------------------------ socket caps


async def test_a_connection_beyond_max_sockets_per_user_is_refused(
    live_url: str, world: World, recorders: Make
) -> None:
    sockets = [recorders(f"tab-{i}") for i in range(MAX_SOCKETS)]
    for recorder in sockets:
        await recorder.connect(live_url, world.users["s1"].token)
    client = socketio.AsyncClient(reconnection=False)
    messages: list[str] = []

    async def on_error(data: Any) -> None:
        messages.append(data["message"])

    client.on("connect_error", on_error)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(live_url, auth={"token": world.users["s1"].token}, transports=["websocket"])
    await client.disconnect()
    assert messages == [
        f"Too many connections: this user already has {MAX_SOCKETS} open (MAX_SOCKETS_PER_USER); "
        "close one and connect again"
    ]
    other_user = recorders("s2")
    await other_user.connect(live_url, world.users["s2"].token)  # the cap is per user
    await sockets[0].close()
    replacement = recorders("replacement")
    await replacement.connect(live_url, world.users["s1"].token)  # room again once one closed


# ------------------------------------------------------------------- timeouts


async def _closed_by_server(ws: websockets.ClientConnection) -> list[str]:
    frames: list[str] = []

    async def drain() -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for frame in ws:
                frames.append(str(frame))

    await asyncio.wait_for(drain(), 10)  # bounded; without the timeout it would hang
    return frames


async def test_a_handshake_that_never_joins_is_closed(live_url: str, app: Application) -> None:
    url = live_url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    async with websockets.connect(url) as ws:
        opened = json.loads(str(await ws.recv())[1:])
        assert opened["sid"] in app.realtime.server.engine.sessions
        await _closed_by_server(ws)  # no Socket.IO CONNECT sent: closed after CONNECT_TIMEOUT_SECONDS
    assert opened["sid"] not in app.realtime.server.engine.sessions


async def test_an_upgrade_that_never_completes_is_closed(live_url: str, app: Application) -> None:
    async with httpx.AsyncClient() as http:
        opened = await http.get(f"{live_url}/socket.io/?EIO=4&transport=polling", timeout=5)
    sid = json.loads(opened.text[1:])["sid"]
    url = live_url.replace("http", "ws") + f"/socket.io/?EIO=4&transport=websocket&sid={sid}"
    async with websockets.connect(url) as ws:
        frames = await _closed_by_server(ws)  # no "2probe" sent: closed after PING_TIMEOUT_SECONDS
    assert frames == []


async def test_a_malformed_packet_closes_that_connection_with_one_info_line(
    live_url: str, world: World, recorders: Make, caplog: pytest.LogCaptureFixture
) -> None:
    # As Node's socket.io and the official protocol suite: a packet that does not decode closes
    # that one connection (a client could not have meant anything by it); one INFO line each, no
    # traceback, and nobody else notices.
    bystander = await subscribed(recorders, live_url, world.users["s2"].token, "s2")
    malformed = ("4x", "42{", '42["a",{"b":', "4abc")
    with caplog.at_level(logging.INFO, logger="attendance_live.transport"):
        for frame in malformed:
            async with RawSocket.connect(live_url, world.users["s1"].token) as student:
                await student.ws.send(frame)
                await _closed_by_server(student.ws)
    transport = [r for r in caplog.records if r.name.startswith("attendance_live.transport")]
    assert [r for r in transport if r.levelno >= logging.WARNING] == []
    closed = [r.getMessage() for r in transport if "closing it" in r.getMessage()]
    assert len(closed) == len(malformed), [r.getMessage() for r in transport]
    assert all(r.exc_info is None for r in transport)
    answer = await bystander.call("checkActiveSessions", {"course_id": "cs101"})
    assert answer["course_id"] == "cs101"
