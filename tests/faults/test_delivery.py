"""The outbox's loss windows, with real nodes (PostgreSQL and Redis, or SQLite): each event once, in order.

Each test compares what every client received with the stream stored in the
database (``outbox``): the course events after the test's first change, each
exactly once, in position order, with their position as the offset argument;
count-only snapshots in between carry the position reached, so offsets never
go back.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from attendance_live.config import normalise_database_url
from attendance_live.db.engine import Database
from attendance_live.service.outbox import Outbox
from tests.faults.conftest import Deployment, assert_clean_log, prepare_database
from tests.faults.live import (
    COURSE,
    LiveClient,
    Seen,
    api,
    check_in,
    end_session,
    get_session,
    poll,
    start_session,
)
from tests.infra.redis import RedisServer
from tests.process import ServerProcess, cli_env

pytestmark = pytest.mark.faults

Stored = tuple[int, str, dict[str, Any]]  # (position, event, payload)


async def last_position(deployment: Deployment) -> int:
    database = Database(normalise_database_url(deployment.env["DATABASE_URL"]))
    try:
        return await database.run_read(Outbox(database.dialect).last_position)
    finally:
        await database.dispose()


async def course_stream(deployment: Deployment, after: int) -> list[Stored]:
    """The demo course's stored course events after position ``after``."""
    database = Database(normalise_database_url(deployment.env["DATABASE_URL"]))
    outbox = Outbox(database.dialect)
    try:
        rows = await database.run_read(lambda conn: outbox.read_course_events(conn, [COURSE], after, 2**62))
    finally:
        await database.dispose()
    assert rows is not None
    return [(row.position, row.kind, row.payload) for row in rows]


async def assert_got_exactly(client: LiveClient, since: int, stream: list[Stored]) -> None:
    """``client`` received ``stream``, each event once, in order, and no offset went back."""
    last = stream[-1][0]
    await client.wait(
        lambda s: s.offset == last and s.name == stream[-1][1],
        since=since,
        timeout=15,
        what=f"the stream's last event (position {last})",
    )
    seen: list[Seen] = [s for s in client.since(since) if s.offset is not None]
    keys = {(position, event) for position, event, _ in stream}
    got = [(s.offset, s.name, s.data) for s in seen if (s.offset, s.name) in keys]
    assert got == stream, client.describe(since)
    offsets = [s.offset for s in seen if s.offset is not None]
    assert offsets == sorted(offsets), client.describe(since)


async def test_redis_down_while_sessions_start_and_end_every_client_gets_every_event_in_order(
    cluster: Deployment, redis_running: RedisServer
) -> None:
    a, b = await cluster.start("a", "b")
    on_a, on_b = LiveClient("on-a", "demo-student-4"), LiveClient("on-b", "demo-student-5")
    try:
        await on_a.connect(a.url)
        await on_b.connect(b.url)
        base = await last_position(cluster)
        marks = {on_a.name: on_a.mark(), on_b.name: on_b.mark()}
        redis_running.stop()
        async with api(a.url, b.url) as (via_a, via_b):
            first = await start_session(via_a, "during the outage")
            await check_in(via_b, first["id"], "demo-student-1")
            second = await start_session(via_b, "also during the outage")
            await end_session(via_a, first["id"])
            await end_session(via_b, second["id"])
        redis_running.start()
        stream = await course_stream(cluster, base)
        assert [event for _, event, _ in stream] == [
            "courseSessionStarted",
            "activeSessionsData",
            "courseSessionStarted",
            "activeSessionsData",
            "courseSessionEnded",
            "activeSessionsData",
            "courseSessionEnded",
            "activeSessionsData",
        ]
        for client in (on_a, on_b):
            await assert_got_exactly(client, marks[client.name], stream)
            assert client.snapshot == {"course_id": COURSE, "activeSessions": []}
            assert client.count("connect") == 1, client.describe()
        for node in (a, b):
            assert_clean_log(node)
    finally:
        await on_a.close()
        await on_b.close()


async def test_two_nodes_changing_one_course_at_once_leave_every_client_on_the_same_state_and_offset(
    cluster: Deployment,
) -> None:
    a, b = await cluster.start("a", "b")
    clients = [
        LiveClient("ws-on-a", "demo-student-4"),
        LiveClient("ws-on-b", "demo-student-5"),
        LiveClient("polling-on-b", "demo-student-1"),
    ]
    try:
        await clients[0].connect(a.url)
        await clients[1].connect(b.url)
        await clients[2].connect(b.url, ("polling",))
        base = await last_position(cluster)
        marks = [client.mark() for client in clients]
        async with api(a.url, b.url) as (via_a, via_b):
            one, two = await asyncio.gather(start_session(via_a, "on a"), start_session(via_b, "on b"))
            await asyncio.gather(
                *(
                    check_in(via, session["id"], student)
                    for session in (one, two)
                    for via, student in (
                        (via_a, "demo-student-1"),
                        (via_b, "demo-student-2"),
                        (via_a, "demo-student-3"),
                    )
                )
            )
            await asyncio.gather(end_session(via_b, one["id"]), end_session(via_a, two["id"]))
            for session in (one, two):
                assert (await get_session(via_a, session["id"]))["final_statistics"]["present"] == 3
        stream = await course_stream(cluster, base)
        assert sorted(event for _, event, _ in stream) == sorted(
            ["courseSessionStarted", "courseSessionEnded"] * 2 + ["activeSessionsData"] * 4
        )
        assert stream[-1][1:] == ("activeSessionsData", {"course_id": COURSE, "activeSessions": []})
        for client, mark in zip(clients, marks, strict=True):
            await assert_got_exactly(client, mark, stream)
            last = client.since(mark)[-1]
            # The same final state and the same last offset on every client, on either node.
            assert (last.name, last.offset, last.data) == ("activeSessionsData", *stream[-1][::2]), (
                client.describe(mark)
            )
    finally:
        for client in clients:
            await client.close()


@pytest.fixture
async def sqlite_pair(tmp_path: Path) -> AsyncIterator[Deployment]:
    """Two processes on one SQLite file, no Redis: they learn of each other's events from the outbox."""
    env = cli_env(f"sqlite:///{tmp_path / 'shared.db'}")
    deployment = Deployment(tmp_path, env, await asyncio.to_thread(prepare_database, env, tmp_path))
    try:
        yield deployment
    finally:
        await deployment.close()


@pytest.fixture(params=["postgresql-redis", "sqlite"])
def deployment(request: pytest.FixtureRequest) -> Deployment:
    fixture = "cluster" if request.param == "postgresql-redis" else "sqlite_pair"
    found: Deployment = request.getfixturevalue(fixture)
    return found


async def test_a_node_killed_right_after_its_commit_has_its_event_delivered_by_the_other_node(
    deployment: Deployment,
) -> None:
    cluster = deployment
    # Node a kills itself (SIGKILL) after committing a session start, before any relay ran.
    doomed = ServerProcess(
        {**cluster.env, "KILL_AFTER_COMMIT_FOR_TESTS": "courseSessionStarted"}, cluster.tmp / "a.log"
    )
    cluster.nodes["a"] = doomed
    (b,) = await cluster.start("b")
    await doomed.start()
    watcher = LiveClient("watcher-on-b", "demo-student-5")
    try:
        await watcher.connect(b.url)
        base = await last_position(cluster)
        mark = watcher.mark()
        async with httpx.AsyncClient(base_url=doomed.url, timeout=10) as via_a:
            with pytest.raises(httpx.TransportError):
                await start_session(via_a, "announced by nobody")
        process = doomed.process
        assert process is not None

        async def died() -> bool:
            return process.poll() is not None

        await poll(died, timeout=10, what="node a killing itself after its commit")
        assert process.returncode == -signal.SIGKILL
        assert "killing this process after its commit" in doomed.log()
        stream = await course_stream(cluster, base)
        assert [event for _, event, _ in stream] == ["courseSessionStarted", "activeSessionsData"]
        assert stream[0][2]["topic"] == "announced by nobody"
        await assert_got_exactly(watcher, mark, stream)
        async with httpx.AsyncClient(base_url=b.url, timeout=10) as via_b:
            session = await get_session(via_b, stream[0][2]["session_id"])
        assert session["status"] == "active"
        assert_clean_log(b)
    finally:
        await watcher.close()
