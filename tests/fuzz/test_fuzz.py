"""Property-based probing (Hypothesis) of every input the server takes from a client.

* HTTP bodies for every endpoint that takes one: never a 500, only the
  documented statuses, and a refused request changes nothing.
* Socket.IO event payloads, for our events, reserved names and made-up ones:
  every answer is a payload or an ``activeSessionsError`` with a documented
  code, the connection stays up, and a refused request leaves the socket's
  rooms and identity as they were.
* Raw Engine.IO / Socket.IO text and binary frames after a real handshake:
  the server never crashes; a connection ends only in the documented cases
  (the client closed it: an Engine.IO CLOSE, a Socket.IO DISCONNECT, a frame it
  cannot parse at the Engine.IO level; or a message over the size limit), and
  otherwise still answers a well-formed request afterwards.

Example counts are small on purpose (CI has two cores): the file runs in well
under a minute. Each property shares one server across its examples, so state
comparisons are made before and after each example, not against a fresh world.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import socketio
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attendance_live.app import Application
from attendance_live.transport.eio_packets import PacketError, PacketType, decode_frame
from attendance_live.transport.sio_packets import SocketPacketError, decode_packet
from tests.helpers import World

FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,  # the same examples on every run: a failure here is reproducible
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
FIELDS = [
    "id",
    "code",
    "title",
    "status",
    "name",
    "email",
    "topic",
    "max_duration_minutes",
    "late_after_minutes",
    "remarks",
    "enrollments",
    "user_id",
    "course_id",
    "session_id",
    "token",
]
# Objects with the fields the API knows, holding values of any type.
near_bodies = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=4)
bodies = near_bodies | json_values

HTTP_STATUSES = {200, 201, 400, 401, 403, 404, 409, 413, 422}


async def _state(http: httpx.AsyncClient, world: World) -> Any:
    """What a refused request must not change: courses, roster, sessions."""
    headers = world.admin.headers
    courses = (await http.get("/api/courses", headers=headers)).json()
    roster = (await http.get(f"/api/courses/{world.course_id}/enrollments", headers=headers)).json()
    active = (await http.get(f"/api/courses/{world.course_id}/active-sessions", headers=headers)).json()
    return courses, roster, active


@pytest.fixture
async def session_id(world: World) -> str:
    """An active session, for the record endpoint (shared by a property's examples)."""
    return str((await world.start())["id"])


@FUZZ
@given(body=bodies, target=st.sampled_from(["course", "enrollment", "batch", "start", "record"]))
async def test_http_bodies(
    http: httpx.AsyncClient, world: World, session_id: str, body: Any, target: str
) -> None:
    method, url = {
        "course": ("POST", "/api/courses"),
        "enrollment": ("PUT", f"/api/courses/{world.course_id}/enrollments/fuzz-user"),
        "batch": ("PUT", f"/api/courses/{world.course_id}/enrollments"),
        "start": ("POST", f"/api/courses/{world.course_id}/sessions"),
        "record": ("PUT", f"/api/sessions/{session_id}/records/s1"),
    }[target]
    before = await _state(http, world)
    response = await http.request(method, url, json=body, headers=world.teacher.headers)
    assert response.status_code in HTTP_STATUSES, (response.status_code, response.text)
    if response.status_code >= 400:
        assert isinstance(response.json()["detail"], str)
        assert await _state(http, world) == before, "a refused request changed something"
    else:
        assert isinstance(response.json(), dict)


@FUZZ
@given(raw=st.binary(max_size=200), content_type=st.sampled_from(["application/json", "text/plain", ""]))
async def test_http_raw_bytes(http: httpx.AsyncClient, world: World, raw: bytes, content_type: str) -> None:
    before = await _state(http, world)
    response = await http.post(
        f"/api/courses/{world.course_id}/sessions",
        content=raw,
        headers={**world.teacher.headers, "Content-Type": content_type},
    )
    assert response.status_code in HTTP_STATUSES, (response.status_code, response.text)
    if response.status_code >= 400:
        assert await _state(http, world) == before


# ------------------------------------------------------------------ socket events

OUR_EVENTS = [
    "subscribeToCourse",
    "unsubscribeFromCourse",
    "checkActiveSessions",
    "subscribeToSession",
    "unsubscribeFromSession",
    "refreshToken",
]
RESERVED = ["connect", "disconnect", "disconnecting", "connect_error", "newListener", "removeListener"]
ERROR_CODES = {"invalid_payload", "forbidden", "rate_limited", "internal"}
socket_payloads = bodies | st.binary(max_size=16)


@pytest.fixture
async def s1_client(live_url: str, world: World) -> AsyncIterator[socketio.AsyncClient]:
    """Student s1, connected and subscribed to the course (shared by a property's examples)."""
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(live_url, auth={"token": world.users["s1"].token}, transports=["websocket"])
    await client.call("subscribeToCourse", {"course_id": world.course_id}, timeout=5)
    yield client
    await client.disconnect()


@FUZZ
@given(
    event=st.sampled_from(OUR_EVENTS) | st.sampled_from(RESERVED) | st.text(max_size=20),
    payload=socket_payloads,
)
async def test_socket_event_payloads(
    s1_client: socketio.AsyncClient, world: World, app: Application, event: str, payload: Any
) -> None:
    client = s1_client
    realtime = app.realtime
    (socket,) = realtime.user_sockets["s1"]
    sid = socket.sid
    rooms_before = sorted(socket.rooms)
    if event in OUR_EVENTS:
        answer = await client.call(event, payload, timeout=5)
        refused = isinstance(answer, dict) and "code" in answer and "message" in answer
        if refused:
            assert answer["code"] in ERROR_CODES - {"internal"}, answer
        else:
            assert answer is None or isinstance(answer, dict)
    else:
        await client.emit(event, payload)
        refused = True  # an unknown or reserved event is never acted on
    # The connection is up and still answers as s1.
    check = await client.call("checkActiveSessions", {"course_id": world.course_id}, timeout=5)
    assert check is None or check.get("course_id") == world.course_id or check.get("code") == "rate_limited"
    assert client.connected
    assert realtime.user_sockets["s1"] == {socket}
    assert realtime.connections[sid].identity.user_id == "s1"
    if refused:
        assert sorted(socket.rooms) == rooms_before
    if event == "unsubscribeFromCourse" or (event == "subscribeToCourse" and not refused):
        await client.call("subscribeToCourse", {"course_id": world.course_id}, timeout=5)  # back as it was


# -------------------------------------------------------------------- raw packets

sio_types = st.sampled_from("0123456")
raw_text = (
    st.text(max_size=60)
    | st.builds(lambda t, rest: "4" + t + rest, sio_types, st.text(max_size=40))
    | st.builds(lambda v: "42" + json.dumps(v), json_values)
    | st.builds(lambda n, v: f"42{n}" + json.dumps(v), st.integers(0, 2**40), json_values)
    | st.builds(lambda t, v: "4" + t + json.dumps(v), sio_types, json_values)
    | st.builds(lambda t, rest: f"45{t}-" + rest, st.integers(0, 3), st.text(max_size=20))
)
frames = raw_text | st.binary(max_size=40)


def _may_stop_answering(frame: str | bytes) -> bool:
    """The documented cases (docs/protocol.md, "Malformed packets") in which a connection stops
    answering: the client closed it (an Engine.IO CLOSE, a Socket.IO DISCONNECT), announced a
    binary packet (types 5 and 6), after which its next messages are taken as the attachments, or
    sent a packet that does not decode (the connection is closed, as Node and the official suite
    require). The transport's own decoders say which frames decode."""
    if isinstance(frame, bytes):
        return True  # a binary message no binary packet announced
    if frame[:1] == "1" or frame.startswith(("41", "45", "46")):
        return True
    try:
        packet = decode_frame(frame)
        if packet.type is PacketType.MESSAGE:
            decode_packet(str(packet.data))
    except (PacketError, SocketPacketError):
        return True
    return False


@FUZZ
@given(frame=frames)
async def test_raw_packets(live_url: str, world: World, app: Application, frame: str | bytes) -> None:
    url = live_url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    async with websockets.connect(url) as ws:
        assert str(await ws.recv()).startswith("0{")
        await ws.send("40" + json.dumps({"token": world.users["s1"].token}))
        assert str(await ws.recv()).startswith('40{"sid"')
        await ws.send(frame)
        await ws.send('42999["checkActiveSessions",{"course_id":"cs101"}]')
        answered = False
        with contextlib.suppress(websockets.ConnectionClosed, TimeoutError):
            async with asyncio.timeout(1):  # answers come in milliseconds; this bounds a stall
                async for message in ws:
                    if str(message).startswith("43999"):
                        answered = True
                        break
        if not answered:
            assert _may_stop_answering(frame), f"the connection stopped answering after {frame!r}"
    # Whatever happened, the server still takes new connections and answers them.
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{live_url}/healthz")).status_code == 200
