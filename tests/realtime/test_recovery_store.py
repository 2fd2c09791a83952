"""realtime.recovery: the pid state store (claims, window, compare-and-set) and the replay loop.

The store runs on the test database (SQLite, or PostgreSQL with
``ATTENDANCE_TEST_DATABASE=postgresql``); the replay loop runs against a
``CourseStream`` of the test's own, which lets the test move the relay's
position while a read is in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from typing import Any, TypeVar

import orjson
import pytest
from sqlalchemy import Connection, select, update
from sqlalchemy.exc import OperationalError

from attendance_live.config import Settings
from attendance_live.db.engine import Database
from attendance_live.db.migrate import upgrade
from attendance_live.db.models import RecoverySession
from attendance_live.realtime import recovery
from attendance_live.realtime.recovery import NODE_DEAD_SECONDS, RecoveryStore, SharedReads, replay
from attendance_live.realtime.stream import CourseEvent, CourseStream
from tests.helpers import FakeClock

WINDOW = 120
T = TypeVar("T")


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Database]:
    db = Database(settings.database_url)
    await upgrade(db)
    yield db
    await db.dispose()


@pytest.fixture
def store(database: Database, clock: FakeClock) -> RecoveryStore:
    return RecoveryStore(database, clock, window_seconds=WINDOW)


async def stored(database: Database, pid: str) -> dict[str, Any] | None:
    async with database.read() as db:
        row = (
            await db.execute(select(RecoverySession).where(RecoverySession.pid == pid))
        ).scalar_one_or_none()
    if row is None:
        return None
    return {
        "user_id": row.user_id,
        "courses": orjson.loads(row.courses),
        "disconnected": row.disconnected_at is not None,
    }


# ------------------------------------------------------------------- the store


async def test_a_pid_is_stored_once_it_follows_a_course(store: RecoveryStore, database: Database) -> None:
    state = store.fresh("s1")
    other = store.fresh("s1")
    assert state.pid != other.pid
    assert len(state.pid) >= 22  # at least 128 random bits, url-safe
    await state.sync()
    assert await stored(database, state.pid) is None, "nothing to recover: no row"
    state.courses["cs101"] = 7
    await state.sync()
    assert await stored(database, state.pid) == {
        "user_id": "s1",
        "courses": {"cs101": 7},
        "disconnected": False,
    }
    state.courses["cs102"] = 9
    del state.courses["cs101"]
    await state.sync()
    assert await stored(database, state.pid) == {
        "user_id": "s1",
        "courses": {"cs102": 9},
        "disconnected": False,
    }


async def test_a_disconnected_pid_is_claimed_by_its_user_within_the_window(
    store: RecoveryStore, database: Database, clock: FakeClock
) -> None:
    state = store.fresh("s1")
    state.courses.update({"cs101": 3, "cs102": 5})
    await state.sync()
    state.disconnected(forget=False)
    await store.idle()
    assert (await stored(database, state.pid) or {})["disconnected"] is True

    assert await store.claim(state.pid, "s2") is None, "another user's pid recovers nothing"
    assert await store.claim("x" * 32, "s1") is None, "an unknown pid recovers nothing"
    assert await store.claim("short", "s1") is None
    clock.advance(seconds=WINDOW)
    claimed = await store.claim(state.pid, "s1")
    assert claimed is not None
    assert claimed.pid == state.pid
    assert claimed.courses == {"cs101": 3, "cs102": 5}
    assert (await stored(database, state.pid) or {})["disconnected"] is False


async def test_past_the_window_nothing_is_claimed(store: RecoveryStore, clock: FakeClock) -> None:
    state = store.fresh("s1")
    state.courses["cs101"] = 3
    await state.sync()
    state.disconnected(forget=False)
    await store.idle()
    clock.advance(seconds=WINDOW + 1)
    assert await store.claim(state.pid, "s1") is None


async def test_after_a_claim_the_previous_connection_writes_nothing(
    store: RecoveryStore, database: Database, clock: FakeClock
) -> None:
    # The old node died holding the connection (its disconnect never stored); once its heartbeat
    # is stale the pid may be claimed, and if the old node comes back to write late, its writes
    # must not overwrite the recovered state.
    old_node = RecoveryStore(database, clock, window_seconds=WINDOW)
    await old_node.beat()
    old = old_node.fresh("s1")
    old.courses["cs101"] = 3
    await old.sync()
    clock.advance(seconds=NODE_DEAD_SECONDS + 1)
    claimed = await store.claim(old.pid, "s1")  # disconnected_at is null: its node never said
    assert claimed is not None
    new = store.resumed(claimed, "s1")
    new.courses["cs102"] = 8
    await new.sync()

    old.courses["cs103"] = 9
    await old.sync()
    old.disconnected(forget=False)
    await old_node.idle()
    assert old.lost
    assert await stored(database, old.pid) == {
        "user_id": "s1",
        "courses": {"cs101": 3, "cs102": 8},
        "disconnected": False,
    }


async def test_a_live_connections_pid_is_never_claimed(
    store: RecoveryStore, database: Database, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 23: a second connection sending a live connection's pid got that pid and its events.
    monkeypatch.setattr(recovery, "CLAIM_WAIT_SECONDS", 0.3)
    here = store.fresh("s1")
    here.courses["cs101"] = 3
    await here.sync()
    assert await store.claim(here.pid, "s1") is None, "live on this node"

    other_node = RecoveryStore(database, clock, window_seconds=WINDOW)
    await other_node.beat()
    there = other_node.fresh("s1")
    there.courses["cs101"] = 3
    await there.sync()
    assert await store.claim(there.pid, "s1") is None, "live on another node, which is alive"
    assert not there.lost
    there.courses["cs102"] = 4
    await there.sync()  # still the pid's holder
    assert not there.lost

    # Its connection ends while a claim waits: the claim gets it.
    monkeypatch.setattr(recovery, "CLAIM_WAIT_SECONDS", 30.0)
    waiting = asyncio.create_task(store.claim(there.pid, "s1"))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    there.disconnected(forget=False)
    claimed = await waiting
    assert claimed is not None
    assert claimed.courses == {"cs101": 3, "cs102": 4}


@pytest.mark.parametrize("nodes", ["one node", "two nodes"])
async def test_of_simultaneous_claims_exactly_one_wins(
    store: RecoveryStore, database: Database, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, nodes: str
) -> None:
    # Issue 23: two simultaneous claims both succeeded (5 of 5 trials).
    monkeypatch.setattr(recovery, "CLAIM_WAIT_SECONDS", 0.3)
    other = store if nodes == "one node" else RecoveryStore(database, clock, window_seconds=WINDOW)
    await store.beat()
    await other.beat()
    for _trial in range(5):
        state = store.fresh("s1")
        state.courses["cs101"] = 3
        await state.sync()
        state.disconnected(forget=False)
        await store.idle()
        first, second = await asyncio.gather(store.claim(state.pid, "s1"), other.claim(state.pid, "s1"))
        winners = [claim for claim in (first, second) if claim is not None]
        assert len(winners) == 1, (first, second)
        # The winner's connection is live: a later claim is refused too.
        holder = (store if first is not None else other).resumed(winners[0], "s1")
        assert await other.claim(state.pid, "s1") is None
        assert await store.claim(state.pid, "s1") is None
        holder.courses["cs102"] = 1
        await holder.sync()
        assert not holder.lost


async def test_a_forgotten_pid_is_deleted(store: RecoveryStore, database: Database) -> None:
    state = store.fresh("s1")
    state.courses["cs101"] = 3
    await state.sync()
    state.courses.clear()
    state.disconnected(forget=True)
    await store.idle()
    assert await stored(database, state.pid) is None
    assert await store.claim(state.pid, "s1") is None


async def test_a_row_that_is_not_ours_recovers_nothing(store: RecoveryStore, database: Database) -> None:
    state = store.fresh("s1")
    state.courses["cs101"] = 3
    await state.sync()
    for bad in ('["cs101"]', '{"cs101": "3"}', '{"cs 101": 3}', '{"cs101": -1}', "not json"):

        def corrupt(conn: Connection, bad: str = bad) -> None:
            conn.execute(update(RecoverySession).where(RecoverySession.pid == state.pid).values(courses=bad))

        await database.run_write(corrupt)
        assert await store.claim(state.pid, "s1") is None, bad


class Unreachable(Database):
    async def run_write_grouped(
        self,
        work: Callable[[Connection], T],
        *,
        finish: Callable[[Connection, list[T]], None] | None = None,
        order: str = "",
    ) -> T:
        raise OperationalError("INSERT", {}, ConnectionRefusedError("connection refused"))


async def test_a_failed_write_reaches_the_subscriber(settings: Settings, clock: FakeClock) -> None:
    database = Unreachable(settings.database_url)
    try:
        state = RecoveryStore(database, clock, window_seconds=WINDOW).fresh("s1")
        state.courses["cs101"] = 3
        with pytest.raises(OperationalError):
            await state.sync()
        assert state.version is None
        assert not state.lost
    finally:
        await database.dispose()


# ------------------------------------------------------------- the replay loop


def ev(position: int, course_id: str, event: str = "courseSessionStarted") -> CourseEvent:
    return CourseEvent(position, course_id, event, {"course_id": course_id, "n": position})


class Stream:
    """A CourseStream whose relay position the test moves (``on_read`` runs inside each read)."""

    def __init__(self, events: Sequence[CourseEvent], *, position: int, oldest: int = 1) -> None:
        self.events = list(events)
        self.position = position
        self.oldest = oldest
        self.reads: list[tuple[int, int]] = []
        self.on_read: Callable[[], None] | None = None

    async def read_course_events(
        self, courses: Collection[str], after: int, upto: int
    ) -> Sequence[CourseEvent] | None:
        self.reads.append((after, upto))
        await asyncio.sleep(0)
        if self.on_read is not None:
            self.on_read()
        if after < self.oldest - 1:
            return None
        return [e for e in self.events if e.course_id in courses and after < e.position <= upto]


def _stream(stream: Stream) -> CourseStream:
    return stream


async def test_replay_sends_each_course_what_it_missed_after_max_offset_and_joined_at() -> None:
    stream = Stream([ev(n, "a" if n % 2 else "b") for n in range(1, 11)] + [ev(11, "c")], position=11)
    joined: list[Sequence[str]] = []
    events = await replay(_stream(stream), lambda: {"a": 2, "b": 6}, 4, joined.append, catch_up_seconds=1)
    assert events is not None
    assert [(e.position, e.course_id) for e in events] == [(5, "a"), (7, "a"), (8, "b"), (9, "a"), (10, "b")]
    assert joined == [["a", "b"]]
    # Without an offset: from where each course was joined.
    events = await replay(_stream(stream), lambda: {"a": 2, "b": 6}, None, joined.append, catch_up_seconds=1)
    assert events is not None
    assert [e.position for e in events] == [3, 5, 7, 8, 9, 10]


async def test_replay_reads_again_when_the_relay_moved_during_a_read() -> None:
    stream = Stream([ev(n, "a") for n in range(1, 6)], position=3)
    moves = iter([5, None])

    def deliver() -> None:  # events 4 and 5 are delivered to the room while the first read runs
        position = next(moves, None)
        if position is not None:
            stream.position = position

    stream.on_read = deliver
    joined: list[Sequence[str]] = []
    events = await replay(_stream(stream), lambda: {"a": 1}, None, joined.append, catch_up_seconds=1)
    assert events is not None
    assert [e.position for e in events] == [2, 3, 4, 5], "each once, in order"
    assert stream.reads == [(1, 3), (3, 5)]
    assert joined == [["a"]]


async def test_replay_waits_for_this_nodes_relay_to_reach_the_clients_offset() -> None:
    stream = Stream([ev(n, "a") for n in range(1, 9)], position=4)

    async def relay_catches_up() -> None:
        await asyncio.sleep(0.05)
        stream.position = 8

    catching_up = asyncio.create_task(relay_catches_up())
    joined: list[Sequence[str]] = []
    events = await replay(_stream(stream), lambda: {"a": 1}, 6, joined.append, catch_up_seconds=5)
    await catching_up
    assert events is not None
    assert [e.position for e in events] == [7, 8]
    assert joined == [["a"]]


async def test_replay_refuses_when_the_relay_never_reaches_the_offset_or_events_are_gone() -> None:
    joined: list[Sequence[str]] = []
    forged = Stream([ev(1, "a")], position=1)
    assert await replay(_stream(forged), lambda: {"a": 0}, 999, joined.append, catch_up_seconds=0.1) is None
    pruned = Stream([ev(n, "a") for n in range(5, 9)], position=8, oldest=5)
    assert await replay(_stream(pruned), lambda: {"a": 1}, 2, joined.append, catch_up_seconds=1) is None
    assert joined == [], "no room joined when refused"
    # From the oldest retained position - 1 on, nothing is missing.
    events = await replay(_stream(pruned), lambda: {"a": 1}, 4, joined.append, catch_up_seconds=1)
    assert events is not None
    assert [e.position for e in events] == [5, 6, 7, 8]


async def test_a_course_the_user_was_removed_from_during_the_replay_is_neither_replayed_nor_joined() -> None:
    stream = Stream([ev(1, "a"), ev(2, "b"), ev(3, "a"), ev(4, "b")], position=4)
    courses = {"a": 0, "b": 0}

    def remove_b() -> None:  # the relay delivered b's removal while the replay read
        courses.pop("b", None)

    stream.on_read = remove_b
    joined: list[Sequence[str]] = []
    events = await replay(_stream(stream), lambda: courses, None, joined.append, catch_up_seconds=1)
    assert events is not None
    assert [(e.position, e.course_id) for e in events] == [(1, "a"), (3, "a")]
    assert joined == [["a"]]


async def test_nothing_followed_nothing_replayed() -> None:
    stream = Stream([ev(1, "a")], position=1)
    joined: list[Sequence[str]] = []
    assert await replay(_stream(stream), dict, 1, joined.append, catch_up_seconds=1) == []
    assert joined == [[]]
    assert stream.reads == []


async def test_a_storm_of_recoveries_shares_its_reads() -> None:
    stream = Stream([ev(n, "a") for n in range(1, 5)], position=4)
    shared = SharedReads(_stream(stream))
    results = await asyncio.gather(*(shared.read_course_events(["a"], 1, 4) for _ in range(50)))
    assert all([e.position for e in r or []] == [2, 3, 4] for r in results)
    assert stream.reads == [(1, 4)], "one read for fifty identical ones"
    assert shared.position == 4
    assert [e.position for e in await shared.read_course_events(["a"], 2, 4) or []] == [3, 4]
    assert stream.reads == [(1, 4), (2, 4)]


async def test_a_failed_shared_read_is_not_reused() -> None:
    stream = Stream([ev(1, "a")], position=1)
    calls = 0

    def fail_once() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("the database went away")

    stream.on_read = fail_once
    shared = SharedReads(_stream(stream))
    with pytest.raises(OSError, match="went away"):
        await shared.read_course_events(["a"], 0, 1)
    assert [e.position for e in await shared.read_course_events(["a"], 0, 1) or []] == [1]
