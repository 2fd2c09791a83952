"""Connection state recovery across nodes and restarts, with real processes.

Each test: a client follows the demo course and keeps its pid and offset (as
socket.io-client does, ``tests.recovering``); it goes away; sessions start and
end meanwhile; it comes back with ``auth: {token, pid, offset}``, somewhere
else or after a restart. It must get the same pid and exactly the course
events committed while it was away, each once, in order, before any new one.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.faults.conftest import Deployment, prepare_database
from tests.faults.live import COURSE, api, end_session, start_session
from tests.faults.test_nginx import node_address, node_behind
from tests.helpers import token
from tests.infra.nginx import NginxServer
from tests.process import ServerProcess, cli_env
from tests.recovering import Received, RecoveringClient

pytestmark = pytest.mark.faults

NginxFactory = Callable[[Sequence[str]], NginxServer]


def session_events(received: Sequence[Received]) -> list[tuple[str, str]]:
    """Each course event as (name, the session it is about; for a snapshot, its active ids)."""
    out = []
    for r in received:
        if r.name == "activeSessionsData":
            out.append((r.name, ",".join(s["sessionId"] for s in r.data["activeSessions"])))
        else:
            out.append((r.name, r.data["session_id"]))
    return out


def start_end(session_id: str) -> list[tuple[str, str]]:
    """What one session started and then ended sends to its course's room."""
    return [
        ("courseSessionStarted", session_id),
        ("activeSessionsData", session_id),
        ("courseSessionEnded", session_id),
        ("activeSessionsData", ""),
    ]


def assert_offsets_increase(client: RecoveringClient) -> None:
    offsets = [int(r.offset) for r in client.since(0) if r.offset is not None]
    assert offsets == sorted(set(offsets)), f"offsets each once, increasing: {offsets}"


async def sessions_while_away(http: httpx.AsyncClient, count: int = 2) -> list[str]:
    ids = []
    for n in range(count):
        session = await start_session(http, f"while away {n}")
        await end_session(http, session["id"])
        ids.append(session["id"])
    return ids


async def follower(url: str, transport: str = "websocket") -> RecoveringClient:
    """demo-student-1, subscribed to the demo course, with one live event seen (so it has an offset)."""
    client = RecoveringClient("follower", token("demo-student-1"))
    reply = await client.connect(url, transport)
    assert reply.name == "connect", reply
    assert reply.data.get("pid"), f"the CONNECT reply carries a pid: {reply.data}"
    await client.call("subscribeToCourse", {"course_id": COURSE})
    return client


async def see_one_live(client: RecoveringClient, http: httpx.AsyncClient) -> None:
    mark = client.mark()
    session = await start_session(http, "seen live")
    await end_session(http, session["id"])
    await client.next("activeSessionsData", since=mark, where=lambda d: d["activeSessions"] == [])
    assert session_events(client.since(mark)) == start_end(session["id"])
    assert client.offset is not None


async def recovers(
    client: RecoveringClient,
    url: str,
    missed: list[str],
    http: httpx.AsyncClient,
    transport: str = "websocket",
) -> None:
    """Reconnect to ``url``: same pid, the missed sessions' events in order, then a new one live."""
    pid = client.pid
    mark = client.mark()
    reply = await client.connect(url, transport)
    assert reply.name == "connect", reply
    assert reply.data["pid"] == pid, "the same pid: socket.io-client sets socket.recovered"
    assert client.recovered
    after = await start_session(http, "after the recovery")
    await client.next("courseSessionStarted", since=mark, where=lambda d: d["session_id"] == after["id"])
    await client.next("activeSessionsData", since=mark, where=lambda d: bool(d["activeSessions"]))
    expected = [event for sid in missed for event in start_end(sid)]
    expected += [("courseSessionStarted", after["id"]), ("activeSessionsData", after["id"])]
    assert session_events(client.since(mark)) == expected, client.describe(mark)
    assert_offsets_increase(client)
    await end_session(http, after["id"])


@dataclass
class TwoNodes:
    a: ServerProcess
    b: ServerProcess
    via_a: httpx.AsyncClient
    via_b: httpx.AsyncClient
    client: RecoveringClient  # on a, subscribed, one live session seen


@pytest.fixture
async def two_nodes(cluster: Deployment) -> AsyncIterator[TwoNodes]:
    a, b = await cluster.start("a", "b")
    client = await follower(a.url)
    try:
        async with api(a.url, b.url) as (via_a, via_b):
            await see_one_live(client, via_a)
            yield TwoNodes(a, b, via_a, via_b, client)
    finally:
        await client.close()


async def test_a_reconnection_lands_on_another_node(two_nodes: TwoNodes) -> None:
    n = two_nodes
    await n.client.drop()
    missed = await sessions_while_away(n.via_a)
    await recovers(n.client, n.b.url, missed, n.via_b)


async def test_a_reconnection_after_its_node_was_killed(two_nodes: TwoNodes) -> None:
    n = two_nodes
    mark = n.client.mark()
    assert await n.a.signal(signal.SIGKILL) == -signal.SIGKILL
    await n.client.wait(
        lambda r: r.name == "disconnect", since=mark, timeout=30, what="the disconnect when a died"
    )
    # a never wrote the disconnect: the state says "connected", and may be claimed.
    missed = await sessions_while_away(n.via_b)
    await recovers(n.client, n.b.url, missed, n.via_b)


@pytest.fixture
async def sqlite_node(tmp_path: Path) -> AsyncIterator[Deployment]:
    env = cli_env(f"sqlite+aiosqlite:///{tmp_path / 'single.db'}")
    deployment = Deployment(tmp_path, env, prepare_database(env, tmp_path))
    try:
        yield deployment
    finally:
        await deployment.close()


async def test_a_restarted_single_node_on_sqlite(sqlite_node: Deployment) -> None:
    (node,) = await sqlite_node.start("only")
    client = await follower(node.url)
    try:
        async with api(node.url) as (http,):
            await see_one_live(client, http)
            await client.drop()
            missed = await sessions_while_away(http)
        assert await node.signal(signal.SIGKILL) == -signal.SIGKILL
        await node.start()  # a new process: the state and the stream are in the database
        async with api(node.url) as (http,):
            await recovers(client, node.url, missed, http)
    finally:
        await client.close()


async def test_a_long_polling_client_moved_by_nginx_to_another_node(
    cluster: Deployment, nginx_factory: NginxFactory
) -> None:
    a, b = await cluster.start("a", "b")
    nodes = {node_address(a.url): a, node_address(b.url): b}
    nginx = nginx_factory(list(nodes))
    client = await follower(nginx.url, "polling")
    try:
        async with api(nginx.url) as (http,):
            await see_one_live(client, http)
            home = nodes[await node_behind(nginx, http)]
            mark = client.mark()
            assert await home.signal(signal.SIGTERM) in (0, -signal.SIGTERM)
            await client.wait(
                lambda r: r.name == "disconnect",
                since=mark,
                timeout=30,
                what="the disconnect when home stopped",
            )
            missed = await sessions_while_away(http)  # through nginx: on the other node
            await recovers(client, nginx.url, missed, http, "polling")
            other = nodes[await node_behind(nginx, http)]
            assert other is not home, "nginx moved the client to the other node"
    finally:
        await client.close()


async def test_a_student_removed_while_away_recovers_nothing_of_the_course(two_nodes: TwoNodes) -> None:
    n = two_nodes
    client = n.client
    await client.drop()
    await sessions_while_away(n.via_a, 1)
    teacher = {"Authorization": f"Bearer {token('demo-teacher', 'teacher')}"}
    removed = await n.via_b.put(
        f"/api/courses/{COURSE}/enrollments/demo-student-1", json={"status": "rejected"}, headers=teacher
    )
    assert removed.status_code == 200, removed.text
    mark = client.mark()
    reply = await client.connect(n.b.url)
    assert reply.data["pid"] == client.replies[0]["pid"]
    later = await start_session(n.via_b, "after the removal")
    await end_session(n.via_b, later["id"])
    # A round trip on the same connection: whatever was sent before it has arrived.
    await client.call("unsubscribeFromSession", {"session_id": "none"})
    assert client.since(mark) == [], f"nothing of the course: {client.describe(mark)}"


async def test_another_users_or_a_forged_pid_recovers_nothing_on_any_node(two_nodes: TwoNodes) -> None:
    n = two_nodes
    victim = n.client
    await victim.drop()
    missed = await sessions_while_away(n.via_a, 1)
    assert victim.pid is not None
    for pid in (victim.pid, "A" * 32):
        thief = RecoveringClient("thief", token("demo-student-2"))
        try:
            reply = await thief.connect(n.b.url, auth={"token": thief.token, "pid": pid, "offset": "0"})
            assert reply.name == "connect", reply
            assert reply.data["pid"] not in (victim.pid, pid), "a fresh pid"
            live = await start_session(n.via_b, "while the thief listens")
            await end_session(n.via_b, live["id"])
            missed.append(live["id"])
            await thief.call("unsubscribeFromSession", {"session_id": "none"})  # a round trip
            assert thief.since(0) == [], f"nothing replayed, no room joined: {thief.describe()}"
        finally:
            await thief.close()
    # The victim's session was not spent by the attempts: it recovers all it missed.
    await recovers(victim, n.b.url, missed, n.via_b)
