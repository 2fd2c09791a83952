"""The outbox (``service.outbox``): rows in the change's transaction, gap-free positions, pruning.

Run on SQLite and, with ``ATTENDANCE_TEST_DATABASE=postgresql``, on PostgreSQL,
where the concurrency test is two nodes' connection pools writing at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from attendance_live.app import Application, create_app
from attendance_live.config import Settings
from attendance_live.db.engine import Database
from attendance_live.db.models import OutboxEvent, RecoverySession
from attendance_live.service.outbox import Outbox
from tests.helpers import FakeClock, World, bearer

Row = tuple[int, str, int, str, dict[str, Any]]


async def stored(database: Database) -> list[Row]:
    """Every outbox row: (position, course, course offset, kind, payload), in position order."""

    def read(conn: Connection) -> list[Row]:
        t = OutboxEvent.__table__
        found = conn.execute(
            select(t.c.id, t.c.course_id, t.c.course_offset, t.c.kind, t.c.payload).order_by(t.c.id)
        )
        return [(i, c, o, k, orjson.loads(p)) for i, c, o, k, p in found]

    return await database.run_read(read)


def assert_gap_free(rows: list[Row]) -> None:
    """Positions 1..n, and each course's offsets 1..m in position order."""
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1))
    per_course: dict[str, list[int]] = {}
    for _, course, offset, _, _ in rows:
        per_course.setdefault(course, []).append(offset)
    for course, offsets in per_course.items():
        assert offsets == list(range(1, len(offsets) + 1)), course


async def test_every_change_is_stored_as_clients_receive_it(
    world: World, app: Application, http: httpx.AsyncClient
) -> None:
    database = app.context.database
    before = await stored(database)
    # The world's enrollments are rows of their own: one per change, with the status.
    assert [(r[1], r[3], r[4]) for r in before if r[1] == "cs101"] == [
        ("cs101", "enrollment", {"user_id": uid, "status": status})
        for uid, status in (
            ("s1", "approved"),
            ("s2", "approved"),
            ("s3", "approved"),
            ("pending", "pending"),
            ("rejected", "rejected"),
        )
    ]

    session = await world.start(topic="Outbox")
    sid = session["id"]
    # Two check-ins at once: one grouped transaction, or two; a row each either way.
    responses = await asyncio.gather(world.check_in("s1", sid), world.check_in("s2", sid))
    assert [r.status_code for r in responses] == [200, 200]
    marked = await http.put(
        f"/api/sessions/{sid}/records/s3", json={"status": "excused"}, headers=world.teacher.headers
    )
    assert marked.status_code == 200
    assert (await world.end(sid)).status_code == 200

    rows = await stored(database)
    assert_gap_free(rows)
    new = rows[len(before) :]
    assert [r[3] for r in new] == [
        "courseSessionStarted",
        "activeSessionsData",
        "record",
        "record",
        "record",
        "courseSessionEnded",
        "activeSessionsData",
    ]
    started, snapshot, first, second, mark, ended, last = (r[4] for r in new)
    assert started == {
        "course_id": "cs101",
        "session_id": sid,
        "teacher_id": "teacher",
        "teacher_name": "Grace Hopper",
        "started_by": "Grace Hopper",
        "started_at": session["started_at"],
        "topic": "Outbox",
    }
    assert snapshot == {
        "course_id": "cs101",
        "activeSessions": [
            {
                "sessionId": sid,
                "teacherId": "teacher",
                "studentCount": 0,
                "startedAt": session["started_at"],
                "topic": "Outbox",
                "totalStudents": 3,
            }
        ],
    }
    assert {first["user_id"], second["user_id"]} == {"s1", "s2"}
    for row in (first, second):
        assert row["session_id"] == sid
        assert row["count_changed"] is True
        assert row["record"]["status"] == "present"
        assert row["record"]["audit"]["how"] == "check_in"
    assert mark["user_id"] == "s3"
    assert mark["count_changed"] is False  # absent -> excused does not move studentCount
    assert mark["record"]["status"] == "excused"
    assert ended["session_id"] == sid
    final = ended["final_statistics"]
    assert {k: final[k] for k in ("present", "late", "absent", "excused", "total")} == {
        "present": 2,
        "late": 0,
        "absent": 0,
        "excused": 1,
        "total": 3,
    }
    assert final["attendance_rate"] == pytest.approx(2 / 3, abs=0.01)
    assert ended["ended_by"] == "Grace Hopper"
    assert last == {"course_id": "cs101", "activeSessions": []}


async def test_a_change_that_does_not_commit_stores_nothing(
    world: World, app: Application, http: httpx.AsyncClient
) -> None:
    session = await world.start()
    assert (await world.check_in("s1", session["id"])).status_code == 200
    assert (await world.end(session["id"])).status_code == 200
    before = await stored(app.context.database)
    assert (await world.end(session["id"])).status_code == 409
    assert (await world.check_in("s2", session["id"])).status_code == 409
    refused = await http.put(
        "/api/courses/cs101/enrollments/s9", json={"status": "approved"}, headers=bearer("s1")
    )
    assert refused.status_code == 403
    assert await stored(app.context.database) == before


@pytest.fixture
async def second_node(
    settings: Settings, clock: FakeClock, app: Application
) -> AsyncIterator[httpx.AsyncClient]:
    """Another node on the same database (its own pools, service and relay), over HTTP."""
    node = create_app(settings, clock=clock)
    async with (
        node.http.router.lifespan_context(node.http),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=node.asgi), base_url="http://node-b") as client,
    ):
        yield client


async def test_positions_stay_gap_free_and_in_commit_order_with_two_nodes_writing_at_once(
    world: World, app: Application, second_node: httpx.AsyncClient
) -> None:
    """Whenever a reader sees position n, it sees every position below n (commit order)."""
    teacher = world.teacher.headers
    courses = [f"race-{i}" for i in range(4)]
    for course in courses:
        created = await world.http.post(
            "/api/courses", json={"id": course, "code": course, "title": course}, headers=teacher
        )
        assert created.status_code == 201
        for student in ("s1", "s2", "s3"):
            put = await world.http.put(
                f"/api/courses/{course}/enrollments/{student}", json={"status": "approved"}, headers=teacher
            )
            assert put.status_code == 201
    observer = Database(app.context.settings.database_url)
    seen: list[int] = []
    stop = asyncio.Event()

    async def observe() -> None:
        while not stop.is_set():
            ids = await observer.run_read(
                lambda conn: list(conn.execute(select(OutboxEvent.id).order_by(OutboxEvent.id)).scalars())
            )
            assert ids == list(range(1, len(ids) + 1)), "a position became visible before one below it"
            seen.append(len(ids))
            await asyncio.sleep(0)

    async def lesson(node: httpx.AsyncClient, course: str) -> None:
        started = await node.post(f"/api/courses/{course}/sessions", json={}, headers=teacher)
        assert started.status_code == 201, started.text
        sid = started.json()["id"]
        checked = await asyncio.gather(
            *(
                node.post(f"/api/sessions/{sid}/check-in", headers=world.users[s].headers)
                for s in ("s1", "s2", "s3")
            )
        )
        assert [c.status_code for c in checked] == [200, 200, 200]
        ended = await node.post(f"/api/sessions/{sid}/end", headers=teacher)
        assert ended.status_code == 200, ended.text

    watcher = asyncio.create_task(observe())
    try:
        # Both nodes change every course at once, twice over.
        await asyncio.gather(
            *(lesson(node, course) for course in courses for node in (world.http, second_node, world.http))
        )
    finally:
        stop.set()
        await watcher
        await observer.dispose()
    rows = await stored(app.context.database)
    assert_gap_free(rows)
    assert len(seen) > 1
    for course in courses:
        kinds = [r[3] for r in rows if r[1] == course and r[3] != "enrollment"]
        assert kinds.count("courseSessionStarted") == kinds.count("courseSessionEnded") == 3
        assert kinds.count("record") == 9
        # The snapshot stored last is the course's true final state: nothing active.
        last = [r[4] for r in rows if r[1] == course and r[3] == "activeSessionsData"][-1]
        assert last == {"course_id": course, "activeSessions": []}
    # Node b's last rows reach this node's relay with its next poll (no Redis here): read now.
    await app.relay.catch_up()
    await app.relay.idle()
    assert app.relay.position == rows[-1][0]


async def test_pruning_keeps_the_stream_contiguous_and_its_end(
    world: World, app: Application, clock: FakeClock
) -> None:
    database, outbox = app.context.database, Outbox(app.context.database.dialect)
    session = await world.start()
    first = await stored(database)
    clock.advance(hours=2)
    await world.end(session["id"])
    rows = await stored(database)
    old = len(first)

    deleted = await database.run_write(lambda conn: outbox.prune(conn, clock(), 3600, 120))
    assert deleted == old
    after = await stored(database)
    assert after == rows[old:]
    # Recovery from before the oldest row is refused; from just before it, exact.
    assert (
        await database.run_read(lambda c: outbox.read_course_events(c, ["cs101"], old - 1, rows[-1][0]))
        is None
    )
    replay = await database.run_read(lambda c: outbox.read_course_events(c, ["cs101"], old, rows[-1][0]))
    assert replay is not None
    assert [(r.position, r.kind) for r in replay] == [(r[0], r[3]) for r in rows[old:]]
    # Everything older than the retention, yet the newest row stays: the next position is unchanged.
    clock.advance(hours=2)
    assert await database.run_write(lambda conn: outbox.prune(conn, clock(), 3600, 120)) == len(after) - 1
    assert [r[0] for r in await stored(database)] == [rows[-1][0]]
    again = await world.start()
    assert [r[0] for r in await stored(database)][-2:] == [rows[-1][0] + 1, rows[-1][0] + 2]
    assert again["status"] == "active"


async def test_pruning_drops_recovery_states_past_their_window_or_left_by_a_dead_node(
    app: Application, clock: FakeClock
) -> None:
    database, outbox = app.context.database, Outbox(app.context.database.dialect)
    now = clock()
    states = {
        "fresh": (now, None),
        "just-disconnected": (now, now - timedelta(seconds=60)),
        "window-passed": (now, now - timedelta(seconds=121)),
        "dead-node": (now - timedelta(seconds=3601), None),
    }
    await database.run_write(
        lambda conn: conn.execute(
            insert(RecoverySession),
            [
                {"pid": pid, "user_id": "s1", "courses": "{}", "updated_at": updated, "disconnected_at": gone}
                for pid, (updated, gone) in states.items()
            ],
        )
    )
    await database.run_write(lambda conn: outbox.prune(conn, now, 3600, 120))
    kept = await database.run_read(lambda conn: sorted(conn.execute(select(RecoverySession.pid)).scalars()))
    assert kept == ["fresh", "just-disconnected"]
