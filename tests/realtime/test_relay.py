"""The relay (``realtime.relay``): position order, each row once, gaps filled from the database, offsets.

The relay runs against the real service and database; its rooms are a
recording stand-in for the transport, so each test sees exactly what would
be written to this node's sockets, with the arguments.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any, cast

import pytest

from attendance_live.app import Application
from attendance_live.metrics import Metrics
from attendance_live.realtime.relay import Relay
from attendance_live.realtime.relay_messages import decode_rows, encode_rows
from attendance_live.service.outbox import OutboxRow
from tests.helpers import World


class Rooms:
    """This node's rooms as the relay sees them: everyone is in every room; broadcasts are recorded."""

    listening = True

    def __init__(self) -> None:
        self.sent: list[tuple[str, tuple[Any, ...]]] = []  # (room, (event, *args))
        self.removed: list[tuple[str, str]] = []
        self.added: list[tuple[str, str, int]] = []
        self.adapter = self
        self.namespace = self

    def room_size(self, room: str) -> int:
        return 1

    def encode(self, event: str, *args: Any) -> tuple[Any, ...]:
        return (event, *args)

    def broadcast_local(self, packet: tuple[Any, ...], rooms: Iterable[str], skip: object) -> int:
        (room,) = rooms
        self.sent.append((room, packet))
        return 1

    def remove_user_from_course(self, user_id: str, course_id: str) -> None:
        self.removed.append((user_id, course_id))

    def add_user_to_course(self, user_id: str, course_id: str, position: int) -> None:
        self.added.append((user_id, course_id, position))

    def events(self, room: str = "course:cs101") -> list[tuple[Any, ...]]:
        return [packet for to, packet in self.sent if to == room]


@pytest.fixture
def rooms() -> Rooms:
    return Rooms()


async def make_relay(app: Application, rooms: Rooms, *, offsets: bool = True) -> AsyncIterator[Relay]:
    relay = Relay(
        cast(Any, rooms), app.context.service, Metrics(), redis_url=None, offsets=offsets, poll_seconds=30
    )
    await relay.start()
    try:
        yield relay
    finally:
        await relay.close()


@pytest.fixture
async def relay(app: Application, rooms: Rooms) -> AsyncIterator[Relay]:
    async for relay in make_relay(app, rooms):
        yield relay


def row(position: int, kind: str = "activeSessionsData", course: str = "cs101", **payload: Any) -> OutboxRow:
    return OutboxRow(position, course, kind, {"course_id": course, "n": position, **payload})


async def test_rows_are_delivered_in_position_order_each_once(relay: Relay, rooms: Rooms) -> None:
    p = relay.position
    relay.offer([row(p + 2)])
    assert rooms.sent == []  # waits for p + 1
    assert relay.position == p
    relay.offer([row(p + 3), row(p + 1)])
    assert rooms.events() == [
        ("activeSessionsData", {"course_id": "cs101", "n": p + 1}, str(p + 1)),
        ("activeSessionsData", {"course_id": "cs101", "n": p + 2}, str(p + 2)),
        ("activeSessionsData", {"course_id": "cs101", "n": p + 3}, str(p + 3)),
    ]
    assert relay.position == p + 3
    relay.offer([row(p + 1), row(p + 3), row(p + 2)])  # again (Redis and the poll both brought them)
    assert len(rooms.sent) == 3


async def test_a_gap_is_filled_from_the_database_before_the_row_after_it(
    app: Application, relay: Relay, rooms: Rooms, world: World
) -> None:
    service = app.context.service
    rooms.sent.clear()  # the world's enrollments (enrollmentChanged to each student)
    heard: list[OutboxRow] = []
    # This relay is not told of these commits (a node that died before publishing them) ...
    service.row_sinks.remove(relay.committed)
    service.row_sinks.append(heard.extend)
    session = await world.start()
    await world.end(session["id"])
    assert [r.kind for r in heard] == [
        "courseSessionStarted",
        "activeSessionsData",
        "courseSessionEnded",
        "activeSessionsData",
    ]
    assert rooms.sent == []
    # ... but hears of the last one: it delivers the three before it from the database first.
    relay.offer(heard[-1:])
    assert rooms.sent == []
    await relay.idle()
    assert rooms.events() == [(r.kind, r.payload, str(r.position)) for r in heard]
    assert relay.position == heard[-1].position


async def test_the_poll_delivers_what_nobody_announced(
    app: Application, relay: Relay, rooms: Rooms, world: World
) -> None:
    app.context.service.row_sinks.remove(relay.committed)
    session = await world.start()
    await relay.catch_up()
    assert [packet[0] for packet in rooms.events()] == ["courseSessionStarted", "activeSessionsData"]
    assert rooms.events()[0][1]["session_id"] == session["id"]


async def test_offsets_off_sends_the_payload_alone(app: Application, rooms: Rooms, world: World) -> None:
    async for relay in make_relay(app, rooms, offsets=False):
        session = await world.start()
        await relay.idle()
        assert [len(packet) for packet in rooms.events()] == [2, 2]
        assert rooms.events()[0][1]["session_id"] == session["id"]


async def test_records_reach_the_student_and_the_roster_and_move_the_count(
    relay: Relay, rooms: Rooms, world: World
) -> None:
    session = await world.start()
    sid = session["id"]
    # the world's enrollments told each student (enrollmentChanged); not what this test follows
    rooms.sent[:] = [sent for sent in rooms.sent if not sent[0].startswith("user:")]
    assert (await world.check_in("s1", sid)).status_code == 200
    await relay.idle()
    (mine,) = rooms.events("user:s1")
    assert mine[0] == "myAttendanceUpdated"
    assert len(mine) == 2  # not a course event: no offset
    assert mine[1]["status"] == "present"
    assert "audit" not in mine[1]
    (roster,) = rooms.events(f"session:{sid}")
    assert roster[0] == "attendanceUpdated"
    assert roster[1]["user_id"] == "s1"
    assert roster[1]["statistics"]["present"] == 1
    assert roster[1]["audit"]["how"] == "check_in"
    course = rooms.events()
    assert [packet[0] for packet in course] == [
        "courseSessionStarted",
        "activeSessionsData",
        "activeSessionsData",
    ]
    count = course[-1]
    assert count[1]["activeSessions"][0]["studentCount"] == 1
    # A count-only snapshot is not stored: it carries the position reached when it was sent.
    assert count[2] == str(relay.position)


async def test_an_enrollment_change_moves_the_user_into_or_out_of_the_room(
    relay: Relay, rooms: Rooms
) -> None:
    p = relay.position
    relay.offer(
        [
            row(p + 1, "enrollment", user_id="s1", status="approved"),
            row(p + 2, "enrollment", user_id="s2", status="rejected"),
            row(p + 3, "enrollment", user_id="s3", status="pending", requested=True, name="Sam", email=None),
        ]
    )
    assert rooms.added == [("s1", "cs101", p + 1)]  # followed from its own row on
    assert rooms.removed == [("s2", "cs101"), ("s3", "cs101")]
    assert rooms.sent == [
        ("user:s1", ("enrollmentChanged", {"course_id": "cs101", "status": "approved"})),
        ("user:s2", ("enrollmentChanged", {"course_id": "cs101", "status": "rejected"})),
        ("user:s3", ("enrollmentChanged", {"course_id": "cs101", "status": "pending"})),
        (
            "managers:cs101",
            (
                "enrollmentRequested",
                {
                    "course_id": "cs101",
                    "user_id": "s3",
                    "name": "Sam",
                    "email": None,
                    "status": "pending",
                    "requested_at": None,
                },
            ),
        ),
    ]


def test_the_redis_message_carries_the_rows() -> None:
    rows = [row(7, "courseSessionStarted", session_id="x"), row(8)]
    assert decode_rows(encode_rows("node-1", rows)) == ("node-1", rows)
    for bad in (b"not json", b'{"node": "x"}', b'{"node": "x", "rows": [[1, 2]]}'):
        with pytest.raises(ValueError, match="not an outbox message"):
            decode_rows(bad)
