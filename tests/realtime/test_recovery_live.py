"""Connection state recovery through the real server (uvicorn on loopback), with a scripted stream.

The test plays the relay: ``ScriptedStream.deliver`` gives a course event the
next position and writes it to the course's room on this node (with its
offset, as the relay does), so the test decides exactly which events are
committed while a client is away. The client speaks the protocol as
socket.io-client does (``tests.recovering``). The tests with the real relay
and real processes are in ``tests/faults/test_recovery_nodes.py`` and
``tests/js/recovery.test.mjs``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from typing import Any

import pytest
from sqlalchemy import select

from attendance_live.app import Application
from attendance_live.config import Settings
from attendance_live.db.models import RecoverySession
from attendance_live.realtime.stream import CourseEvent
from attendance_live.vocabulary import course_room
from tests.helpers import FakeClock, World
from tests.recovering import RecoveringClient

COURSE = "cs101"


class ScriptedStream:
    """A CourseStream the test writes: every event delivered is stored and sent to the room."""

    def __init__(self, app: Application) -> None:
        self.namespace = app.realtime.namespace
        self.position = 0
        self.events: list[CourseEvent] = []
        self.failing = False  # reads raise, as when the database is away

    def deliver(self, event: str, payload: dict[str, Any], course_id: str = COURSE) -> int:
        self.position += 1
        self.events.append(CourseEvent(self.position, course_id, event, payload))
        packet = self.namespace.encode(event, payload, str(self.position))
        self.namespace.adapter.broadcast_local(packet, [course_room(course_id)], None)
        return self.position

    async def read_course_events(
        self, courses: Collection[str], after: int, upto: int
    ) -> Sequence[CourseEvent] | None:
        if self.failing:
            raise OSError("the database is unreachable")
        return [e for e in self.events if e.course_id in courses and after < e.position <= upto]

    def session(self, n: int) -> list[tuple[str, dict[str, Any]]]:
        """What a start then an end of session ``n`` send to the room (the payloads abridged)."""
        return [
            ("courseSessionStarted", {"course_id": COURSE, "session_id": f"s{n}"}),
            ("activeSessionsData", {"course_id": COURSE, "activeSessions": [{"sessionId": f"s{n}"}]}),
            ("courseSessionEnded", {"course_id": COURSE, "session_id": f"s{n}"}),
            ("activeSessionsData", {"course_id": COURSE, "activeSessions": []}),
        ]


@pytest.fixture
async def stream(app: Application) -> ScriptedStream:
    scripted = ScriptedStream(app)
    app.realtime.stream = scripted
    return scripted


@pytest.fixture
async def clients() -> AsyncIterator[list[RecoveringClient]]:
    made: list[RecoveringClient] = []
    yield made
    for client in made:
        await client.close()


async def subscribed(made: list[RecoveringClient], url: str, world: World, user: str) -> RecoveringClient:
    client = RecoveringClient(user, world.users[user].token)
    made.append(client)
    reply = await client.connect(url)
    assert reply.name == "connect", reply
    ack = await client.call("subscribeToCourse", {"course_id": COURSE})
    assert ack[0]["course_id"] == COURSE, ack
    return client


async def stored(app: Application, pid: str) -> RecoverySession | None:
    async with app.context.database.read() as db:
        found: RecoverySession | None = (
            await db.execute(select(RecoverySession).where(RecoverySession.pid == pid))
        ).scalar_one_or_none()
        return found


def received(client: RecoveringClient, mark: int) -> list[tuple[str, Any, str | None]]:
    return [(r.name, r.data, r.offset) for r in client.since(mark)]


def expected(stream: ScriptedStream, first: int, last: int) -> list[tuple[str, Any, str | None]]:
    return [(e.event, e.payload, str(e.position)) for e in stream.events if first <= e.position <= last]


async def test_a_blip_recovers_every_missed_event_in_order_before_new_ones(
    live_url: str, world: World, stream: ScriptedStream, app: Application, clients: list[RecoveringClient]
) -> None:
    for name, payload in stream.session(1)[:2]:
        stream.deliver(name, payload)  # before the client subscribed: not its business
    client = await subscribed(clients, live_url, world, "s1")
    pid = client.pid
    assert pid is not None
    assert len(pid) >= 22, "at least 128 random bits"
    row = await stored(app, pid)
    assert row is not None, "the subscription was answered after the pid's state had the course"
    assert row.user_id == "s1"
    assert row.disconnected_at is None

    mark = client.mark()
    stream.deliver(*stream.session(1)[2])
    seen = stream.deliver(*stream.session(1)[3])
    await client.next("activeSessionsData", since=mark, where=lambda d: d["activeSessions"] == [])
    assert received(client, mark) == expected(stream, 3, 4)
    assert client.offset == str(seen)

    await client.drop()
    for name, payload in stream.session(2) + stream.session(3):
        stream.deliver(name, payload)  # committed while the client is away

    mark = client.mark()
    reply = await client.connect(live_url)
    assert reply.data["pid"] == pid
    assert client.recovered
    stream.deliver(*stream.session(4)[0])  # live, after the recovery
    await client.next("courseSessionStarted", since=mark, where=lambda d: d["session_id"] == "s4")
    assert received(client, mark) == expected(stream, 5, 13), "the missed ones in order, then the new one"
    # The same subscriptions: nothing to resubscribe, and the pid's row is claimed again.
    row = await stored(app, pid)
    assert row is not None
    assert row.disconnected_at is None


async def test_without_an_offset_everything_since_the_subscription_is_replayed(
    live_url: str, world: World, stream: ScriptedStream, clients: list[RecoveringClient]
) -> None:
    stream.deliver(*stream.session(1)[0])
    client = await subscribed(clients, live_url, world, "s1")
    await client.drop()
    for name, payload in stream.session(1)[1:]:
        stream.deliver(name, payload)
    mark = client.mark()
    assert client.offset is None  # it received no course event with an offset
    reply = await client.connect(live_url)
    assert reply.data["pid"] == client.replies[0]["pid"]
    await client.next("activeSessionsData", since=mark, where=lambda d: d["activeSessions"] == [])
    assert received(client, mark) == expected(stream, 2, 4)


async def test_a_forged_or_another_users_pid_recovers_nothing(
    live_url: str, world: World, stream: ScriptedStream, clients: list[RecoveringClient]
) -> None:
    victim = await subscribed(clients, live_url, world, "s1")
    assert victim.pid is not None
    await victim.drop()
    stream.deliver(*stream.session(1)[0])

    for pid in (victim.pid, "A" * 32, 42, ""):
        thief = RecoveringClient("s2", world.users["s2"].token)
        clients.append(thief)
        reply = await thief.connect(live_url, auth={"token": thief.token, "pid": pid, "offset": "0"})
        assert reply.name == "connect"
        assert reply.data["pid"] not in (victim.pid, pid), "a fresh pid"
        answer = await thief.call("checkActiveSessions", {"course_id": COURSE})  # a round trip
        assert answer[0]["course_id"] == COURSE
        assert thief.since(0) == [], f"nothing replayed, no room joined: {thief.describe()}"
        mark = thief.mark()
        stream.deliver(*stream.session(1)[1])
        await thief.call("checkActiveSessions", {"course_id": COURSE})
        assert thief.since(mark) == [], "not subscribed to anything"
        await thief.close()

    # The victim's own session was not spent by the attempts.
    mark = victim.mark()
    reply = await victim.connect(live_url)
    assert reply.data["pid"] == victim.pid
    await victim.next("activeSessionsData", since=mark, where=lambda d: d["activeSessions"] != [])
    assert received(victim, mark)[0] == expected(stream, 1, 1)[0]


async def test_a_live_connections_pid_is_not_given_to_a_second_connection(
    live_url: str, world: World, stream: ScriptedStream, clients: list[RecoveringClient]
) -> None:
    # Issue 23: a second connection of the same user sending a live connection's pid got that
    # pid and its events.
    live = await subscribed(clients, live_url, world, "s1")
    assert live.pid is not None
    second = RecoveringClient("s1", world.users["s1"].token)
    clients.append(second)
    reply = await second.connect(live_url, auth={"token": second.token, "pid": live.pid, "offset": "0"})
    assert reply.name == "connect"
    assert reply.data["pid"] != live.pid, "a fresh pid"
    assert not second.recovered
    mark = live.mark()
    position = stream.deliver(*stream.session(1)[0])
    await live.next("courseSessionStarted", since=mark)
    await second.call("checkActiveSessions", {"course_id": COURSE})  # a round trip
    assert second.since(0) == [], f"nothing replayed, no room joined: {second.describe()}"

    # Once the first connection has ended, its pid is recovered, once.
    await live.drop()
    mark = live.mark()
    reply = await live.connect(live_url)
    assert reply.data["pid"] == live.pid
    assert live.recovered
    later = stream.deliver(*stream.session(1)[1])  # its subscription came back with the pid
    await live.next("activeSessionsData", since=mark)
    assert received(live, mark) == expected(stream, later, later)
    assert position < later


async def test_a_student_removed_meanwhile_recovers_nothing_of_that_course(
    live_url: str, world: World, stream: ScriptedStream, clients: list[RecoveringClient]
) -> None:
    client = await subscribed(clients, live_url, world, "s1")
    await client.drop()
    stream.deliver(*stream.session(1)[0])
    response = await world.http.put(
        f"/api/courses/{COURSE}/enrollments/s1", json={"status": "rejected"}, headers=world.teacher.headers
    )
    assert response.status_code == 200, response.text
    stream.deliver(*stream.session(1)[1])

    mark = client.mark()
    reply = await client.connect(live_url)
    assert reply.data["pid"] == client.replies[0]["pid"], "the session itself is recovered"
    await client.call("checkActiveSessions", {"course_id": COURSE})  # answered: forbidden
    stream.deliver(*stream.session(1)[2])
    await client.call("unsubscribeFromSession", {"session_id": "x"})  # a round trip
    assert client.since(mark) == [], f"nothing of the course: {client.describe(mark)}"


async def test_after_the_window_a_fresh_session_and_resubscribing_works(
    live_url: str, world: World, stream: ScriptedStream, clock: FakeClock, clients: list[RecoveringClient]
) -> None:
    client = await subscribed(clients, live_url, world, "s1")
    first_pid = client.pid
    await client.drop()
    stream.deliver(*stream.session(1)[0])
    clock.advance(seconds=121)  # RECOVERY_WINDOW_SECONDS is 120
    mark = client.mark()
    reply = await client.connect(live_url)
    assert reply.data["pid"] != first_pid
    assert not client.recovered
    await client.call("checkActiveSessions", {"course_id": COURSE})
    assert client.since(mark) == [], "no subscriptions, nothing replayed"
    await client.call("subscribeToCourse", {"course_id": COURSE})
    mark = client.mark()
    stream.deliver(*stream.session(1)[1])
    await client.next("activeSessionsData", since=mark)
    assert received(client, mark) == expected(stream, 2, 2)


async def test_an_unsubscribed_course_is_not_recovered(
    live_url: str, world: World, stream: ScriptedStream, clients: list[RecoveringClient]
) -> None:
    client = await subscribed(clients, live_url, world, "s1")
    await client.call("unsubscribeFromCourse", {"course_id": COURSE})
    await client.drop()
    stream.deliver(*stream.session(1)[0])
    mark = client.mark()
    reply = await client.connect(live_url)
    assert reply.data["pid"] == client.replies[0]["pid"]
    stream.deliver(*stream.session(1)[1])
    await client.call("checkActiveSessions", {"course_id": COURSE})
    assert client.since(mark) == []


async def test_a_failure_during_recovery_gives_a_fresh_session_and_nothing_partial(
    live_url: str, world: World, stream: ScriptedStream, app: Application, clients: list[RecoveringClient]
) -> None:
    client = await subscribed(clients, live_url, world, "s1")
    await client.drop()
    stream.deliver(*stream.session(1)[0])
    stream.failing = True
    mark = client.mark()
    reply = await client.connect(live_url)
    assert reply.data["pid"] != client.replies[0]["pid"], "a fresh pid"
    stream.failing = False
    stream.deliver(*stream.session(1)[1])
    await client.call("checkActiveSessions", {"course_id": COURSE})
    assert client.since(mark) == [], f"no room joined, nothing replayed: {client.describe(mark)}"
    assert app.realtime.room_size(course_room(COURSE)) == 0


class TestRecoveryOff:
    """``EVENT_OFFSETS=false`` or ``RECOVERY_WINDOW_SECONDS=0``: no pid, no state, no recovery."""

    @pytest.fixture(
        params=[{"event_offsets": False}, {"recovery_window_seconds": 0}], ids=["offsets", "window"]
    )
    def settings(self, settings: Settings, request: pytest.FixtureRequest) -> Settings:
        return settings.model_copy(update=request.param)

    async def test_no_pid_and_no_recovery(
        self,
        live_url: str,
        world: World,
        app: Application,
        stream: ScriptedStream,
        clients: list[RecoveringClient],
    ) -> None:
        assert app.realtime.recovery is None
        client = await subscribed(clients, live_url, world, "s1")
        assert client.replies[0].keys() == {"sid"}
        await client.drop()
        stream.deliver(*stream.session(1)[0])
        mark = client.mark()
        reply = await client.connect(live_url, auth={"token": client.token, "pid": "A" * 32, "offset": "0"})
        assert reply.data.keys() == {"sid"}
        await client.call("checkActiveSessions", {"course_id": COURSE})
        assert client.since(mark) == []
