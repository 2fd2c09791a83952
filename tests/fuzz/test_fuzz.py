"""Property-based probing (Hypothesis) of every input the server takes from a client.

* HTTP bodies for every endpoint that takes one: never a 500, only the
  documented statuses, and a refused request changes nothing.
* Socket.IO event payloads, for our events, reserved names and made-up ones:
  every answer is a payload or an ``activeSessionsError`` with a documented
  code, the connection stays up, and a refused request leaves the socket's
  rooms and identity as they were.
* Raw Engine.IO / Socket.IO text and binary frames after a real handshake:
  the server never crashes, and what happens to the connection is what an
  oracle written from the protocol specifications says, both ways: a frame the
  specifications accept leaves the connection answering, one they refuse
  closes it. The oracle is independent of the server's decoders: it parses
  with python-socketio's packet codec (strict JSON) and applies the
  Socket.IO v5 payload rules itself; hand-written vectors pin it down.

Example counts are small on purpose (CI has two cores): the file runs in well
under a minute. Each property shares one server across its examples, so state
comparisons are made before and after each example, not against a fresh world.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any, Literal

import httpx
import pytest
import socketio
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from socketio.packet import Packet as SocketIOPacket

from attendance_live.app import Application
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
    "role",
]
# Objects with the fields the API knows, holding values of any type.
near_bodies = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=4)
bodies = near_bodies | json_values

HTTP_STATUSES = {200, 201, 400, 401, 403, 404, 409, 413, 422}


async def _state(http: httpx.AsyncClient, world: World) -> Any:
    """What a refused request must not change: courses, roster, co-managers, sessions."""
    headers = world.admin.headers
    courses = (await http.get("/api/courses", headers=headers)).json()
    roster = (await http.get(f"/api/courses/{world.course_id}/enrollments", headers=headers)).json()
    managers = (await http.get(f"/api/courses/{world.course_id}/managers", headers=headers)).json()
    active = (await http.get(f"/api/courses/{world.course_id}/active-sessions", headers=headers)).json()
    return courses, roster, managers, active


@pytest.fixture
async def session_id(world: World) -> str:
    """An active session, for the record endpoint (shared by a property's examples)."""
    return str((await world.start())["id"])


@FUZZ
@given(body=bodies, target=st.sampled_from(["course", "enrollment", "batch", "start", "record", "manager"]))
async def test_http_bodies(
    http: httpx.AsyncClient, world: World, session_id: str, body: Any, target: str
) -> None:
    method, url = {
        "course": ("POST", "/api/courses"),
        "enrollment": ("PUT", f"/api/courses/{world.course_id}/enrollments/fuzz-user"),
        "batch": ("PUT", f"/api/courses/{world.course_id}/enrollments"),
        "start": ("POST", f"/api/courses/{world.course_id}/sessions"),
        "record": ("PUT", f"/api/sessions/{session_id}/records/s1"),
        "manager": ("PUT", f"/api/courses/{world.course_id}/managers/fuzz-user"),
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
    "checkIn",
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
        if event == "checkIn":  # answered in its own shape; no random payload names a live session
            assert answer["ok"] is False, answer
            assert answer["reason"] in {"invalid_payload", "not_found", "rate_limited"}, answer
            assert answer["message"], answer
            refused = True
        elif refused:
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


Verdict = Literal["answers", "closes", "leaves"]


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (RFC 8259)")


class _StrictJSON:
    """JSON as RFC 8259 has it (the standard library also takes NaN and Infinity)."""

    @staticmethod
    def loads(text: str) -> Any:
        return json.loads(text, parse_constant=_refuse_constant)

    dumps = staticmethod(json.dumps)


# python-socketio's codec with strict JSON (its ``json`` attribute is the codec's JSON module).
_OraclePacket: Any = type("_OraclePacket", (SocketIOPacket,), {"json": _StrictJSON})


MAX_ACK_DIGITS = 16  # docs/protocol.md, "Limits"


def _socketio_verdict(text: str) -> Verdict:
    """A Socket.IO v5 packet (the text after Engine.IO's ``4``), by the specification."""
    if text[:1] not in tuple("0123456"):
        return "closes"  # an unknown packet type (or none)
    kind = int(text[0])
    if kind in (5, 6):
        # A binary packet: valid or not, the probe that follows is no attachment.
        return "closes"
    try:
        packet = _OraclePacket(encoded_packet=text)
    except Exception:  # python-socketio refuses it: broken JSON, an id too long, ...
        return "closes"
    if packet.attachment_count:
        return "closes"  # an attachment count ("1-") on a packet that is not binary
    rest = text[1:]
    if rest.startswith("/"):  # the namespace, up to its comma
        rest = rest[rest.find(",") + 1 :] if "," in rest else ""
    ack_id = rest[: next((i for i, c in enumerate(rest) if not c.isdigit()), len(rest))]
    if not ack_id.isascii() or len(ack_id) > MAX_ACK_DIGITS:
        return "closes"  # ack ids are ASCII digits, at most 16 of them
    data, namespace = packet.data, packet.namespace or "/"
    if kind == 0:
        return "answers" if data is None or isinstance(data, dict) else "closes"
    if kind == 1:
        if data is not None:
            return "closes"
        return "leaves" if namespace == "/" else "answers"
    if kind == 2:
        ok = isinstance(data, list) and bool(data) and isinstance(data[0], str)
        return "answers" if ok else "closes"
    if kind == 3:
        return "answers" if isinstance(data, list) and packet.id is not None else "closes"
    return "closes"  # 4: clients do not send CONNECT_ERROR


def spec_verdict(frame: str | bytes) -> Verdict:
    """What the specifications (and docs/protocol.md, "Malformed packets") say the connection
    does after ``frame``: still answers, closes, or leaves the default namespace (DISCONNECT)."""
    if isinstance(frame, bytes):
        return "closes"  # a binary message no binary packet announced
    kind = frame[:1]
    if kind not in tuple("0123456"):
        return "closes"  # an unknown Engine.IO packet type (or none)
    if kind == "1":
        return "closes"  # the client's CLOSE
    if kind == "4":
        return _socketio_verdict(frame[1:])
    return "answers"  # OPEN, PING, PONG, UPGRADE, NOOP mean nothing on an open websocket


PROBE = '42999["checkActiveSessions",{"course_id":"cs101"}]'


async def _observe(ws: Any, world: World, verdict: Verdict) -> str:
    """What the connection did after the frame, as a verdict. A ``leaves`` connection is asked
    to join the namespace again (its reply proves it is open); the others get the probe."""
    if verdict == "leaves":
        await ws.send("40" + json.dumps({"token": world.users["s1"].token}))
        wanted = '40{"sid"'
    else:
        await ws.send(PROBE)
        wanted = "43999"
    try:
        # A bound, not a measurement: the reply or the close comes in milliseconds.
        async with asyncio.timeout(10):
            async for message in ws:
                if str(message).startswith(wanted):
                    return "leaves" if verdict == "leaves" else "answers"
    except websockets.ConnectionClosed:
        return "closes"
    except TimeoutError:
        return "stalled (neither answered nor closed)"
    return "closes"


async def _check_frame(live_url: str, world: World, frame: str | bytes) -> None:
    expected = spec_verdict(frame)
    url = live_url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    async with websockets.connect(url) as ws:
        assert str(await ws.recv()).startswith("0{")
        await ws.send("40" + json.dumps({"token": world.users["s1"].token}))
        assert str(await ws.recv()).startswith('40{"sid"')
        await ws.send(frame)
        seen = await _observe(ws, world, expected)
    assert seen == expected, f"after {frame!r} the connection {seen}; the specification says it {expected}"
    # Whatever happened, the server still takes new connections and answers them.
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{live_url}/healthz")).status_code == 200


# Hand-written: what the specifications say, so the oracle itself is checked.
VECTORS: list[tuple[str | bytes, Verdict]] = [
    ('42["anything"]', "answers"),
    ('42["checkActiveSessions",{"course_id":"cs101"}]', "answers"),
    ('427["unknownEvent",1,2]', "answers"),
    ('42/elsewhere,["x"]', "answers"),  # a namespace this connection is not in: ignored
    ("43999[]", "answers"),  # an ack nobody waits for: ignored
    ("40", "answers"),  # already connected: ignored
    ("40/nope,{}", "answers"),  # an unknown namespace: CONNECT_ERROR, the connection stays
    ("41/elsewhere,", "answers"),
    ("2", "answers"),
    ("3", "answers"),
    ("6", "answers"),
    ("41", "leaves"),
    ("1", "closes"),
    ("", "closes"),
    ("7", "closes"),
    ("4", "closes"),
    ("47[]", "closes"),
    ('44{"message":"x"}', "closes"),
    ("42{}", "closes"),
    ("42[]", "closes"),
    ("42[1]", "closes"),
    ('42"event"', "closes"),
    ('42["a",NaN]', "closes"),
    ('42["a"', "closes"),
    ("43[1]", "closes"),  # an ACK without its id
    ("41{}", "closes"),
    ("40[1]", "closes"),
    ('451-["a",{"_placeholder":true,"num":0}]', "closes"),  # the probe is not the attachment
    ('45["a"]', "closes"),
    ("42" + "1" * 17 + '["a"]', "closes"),
    ('42²["a"]', "closes"),
    ("4٣[1]", "closes"),
    (b"\x00\x01", "closes"),
]


@pytest.mark.parametrize(("frame", "verdict"), VECTORS)
def test_the_oracle_follows_the_specification(frame: str | bytes, verdict: Verdict) -> None:
    assert spec_verdict(frame) == verdict


@pytest.mark.parametrize("frame", [frame for frame, _ in VECTORS])
async def test_raw_packet_vectors(live_url: str, world: World, frame: str | bytes) -> None:
    await _check_frame(live_url, world, frame)


@FUZZ
@given(frame=frames)
async def test_raw_packets(live_url: str, world: World, app: Application, frame: str | bytes) -> None:
    await _check_frame(live_url, world, frame)
