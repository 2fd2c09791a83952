"""nginx (deploy/nginx/attendance-live.conf) in front of two nodes on Redis and PostgreSQL."""

from __future__ import annotations

import itertools
import signal
import time
from collections.abc import Callable, Sequence

import httpx
import pytest

from tests.faults.conftest import Deployment
from tests.faults.live import (
    COURSE,
    TEACHER_HEADERS,
    LiveClient,
    active_counts,
    api,
    check_in,
    counts_are,
    end_session,
    poll,
    start_session,
)
from tests.helpers import bearer
from tests.infra.nginx import NginxServer

pytestmark = pytest.mark.faults

NginxFactory = Callable[[Sequence[str]], NginxServer]
EXTRA_STUDENTS = [f"extra-{n:02d}" for n in range(24)]
TOGGLED = "demo-student-4"  # its record is toggled by the teacher; never checked in
SETTLE_TIMEOUT_SECONDS = 45.0


def node_address(url: str) -> str:
    return url.removeprefix("http://")


async def test_nginx_proxies_the_api_health_metrics_and_dashboard(
    cluster: Deployment, nginx_factory: NginxFactory
) -> None:
    a, b = await cluster.start("a", "b")
    nginx = nginx_factory([node_address(a.url), node_address(b.url)])
    async with api(nginx.url) as (http,):
        assert (await http.get("/healthz")).status_code == 200
        ready = await http.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json() == {"status": "ready", "database": "ok", "redis": "ok"}
        me = await http.get("/api/me", headers=TEACHER_HEADERS)
        assert me.json()["id"] == "demo-teacher"
        assert me.headers.get("x-request-id"), "nginx passes its request id, the node echoes it"
        missing = await http.get("/api/courses/demo-course", headers={"Authorization": "Bearer nope"})
        assert missing.status_code == 401
        assert missing.headers.get("www-authenticate") == "Bearer"
        metrics = await http.get("/metrics")  # allowed from loopback only
        assert metrics.status_code == 200
        assert metrics.headers["content-type"].startswith("text/plain")
        assert (await http.get("/openapi.json")).json()["info"]["title"] == "attendance-live"
        assert (await http.get("/docs")).status_code == 200
        page = await http.get("/courses/demo-course")
        assert page.status_code == 200
        assert "text/html" in page.headers["content-type"]
        created = await http.post(
            "/api/courses",
            json={"id": "via-nginx", "code": "NGX1", "title": "Proxied"},
            headers=TEACHER_HEADERS,
        )
        assert created.status_code == 201, created.text


async def settle(
    clients: Sequence[LiveClient], http: httpx.AsyncClient, sid: str, students: list[str]
) -> int:
    """Check students in one by one until every client gets the change as a live event on a steady connection.

    After a node comes back, a long-polling client that failed over may be
    moved back to it once (the hash maps it there again; the node it is on
    then answers "Invalid session" and the client reconnects). Each change is
    either a live event or part of the snapshot the client gets on
    re-subscribing, so the state stays true; this waits until the live path
    works for every client. Returns the present count.
    """
    deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
    while True:
        marks = {c.name: c.mark() for c in clients}
        student = students.pop(0)
        response = await http.post(f"/api/sessions/{sid}/check-in", headers=bearer(student))
        assert response.status_code == 200, response.text
        present = (await http.get(f"/api/courses/{COURSE}/active-sessions", headers=TEACHER_HEADERS)).json()
        expected = active_counts(present)
        live = True
        for client in clients:
            try:
                await client.next(
                    "activeSessionsData",
                    since=marks[client.name],
                    where=counts_are(expected),
                    timeout=5,
                    what=f"studentCount {expected}",
                )
            except AssertionError:
                live = False
                continue
            if client.count("connect", marks[client.name]) or client.count("disconnect", marks[client.name]):
                live = False  # it came with a reconnection: try again on the steady connection
        if live:
            return expected[0]
        assert time.monotonic() < deadline, "clients behind nginx did not settle: " + "; ".join(
            f"{c.name}: {c.describe()}" for c in clients
        )


async def node_behind(nginx: NginxServer, http: httpx.AsyncClient) -> str:
    """The node nginx sends this machine's clients to (all of loopback hashes to one node)."""
    response = await http.get("/healthz")
    assert response.status_code == 200, response.text
    request_id = response.headers["x-request-id"]
    found: list[str] = []

    async def logged() -> bool:
        upstream = nginx.upstream_of(request_id)
        if upstream:
            found.append(upstream)
        return bool(upstream)

    await poll(logged, timeout=5, interval=0.05, what=f"request {request_id} in nginx's access log")
    return found[0]


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_a_client_behind_nginx_survives_a_restart_of_its_node(
    cluster: Deployment, nginx_factory: NginxFactory, transport: str
) -> None:
    a, b = await cluster.start("a", "b")
    nodes = {node_address(a.url): a, node_address(b.url): b}
    nginx = nginx_factory(list(nodes))
    client = LiveClient(f"{transport}-via-nginx", "demo-student-5")
    students = ["demo-student-1", "demo-student-2", "demo-student-3", *EXTRA_STUDENTS]
    try:
        async with api(nginx.url) as (http,):
            for student in EXTRA_STUDENTS:
                response = await http.put(
                    f"/api/courses/{COURSE}/enrollments/{student}",
                    json={"status": "approved", "name": student},
                    headers=TEACHER_HEADERS,
                )
                assert response.status_code in (200, 201), response.text
            await client.connect(nginx.url, (transport,))
            assert client.transport == transport
            sid = (await start_session(http, "behind nginx"))["id"]
            await client.next("courseSessionStarted", since=0)

            # Sticky: a run of events over long-polling without a single reconnection.
            for expected in (1, 2, 3):
                await check_in(http, sid, students.pop(0))
                await client.next("activeSessionsData", since=0, where=counts_are([expected]))
            assert client.count("connect") == 1, f"the client was bounced between nodes: {client.describe()}"

            # Restart the node the client is on (SIGTERM, then serve again).
            home = nodes[await node_behind(nginx, http)]
            mark = client.mark()
            assert await home.signal(signal.SIGTERM) in (0, -signal.SIGTERM)
            await client.next(
                "disconnect", since=mark, timeout=5, what="the disconnect when its node stopped"
            )
            await client.next(
                "connect", since=mark, timeout=15, what="a reconnection through nginx to the other node"
            )
            await home.start()
            present = await settle([client], http, sid, students)
            assert client.count("connect", mark) == 1, client.describe(mark)

            if transport == "polling":
                # Once nginx uses the restarted node again, the hash sends the poll
                # requests back there: that node does not know the Engine.IO session
                # (400), and the client reconnects once more, on its home node.
                mark = client.mark()

                toggles = itertools.cycle(("present", "absent"))

                async def moved_back() -> bool:
                    if client.count("connect", mark) > 0:
                        return True
                    # Server-to-client traffic (a record toggled by the teacher), so the
                    # pending poll returns and the next one goes out through nginx.
                    response = await http.put(
                        f"/api/sessions/{sid}/records/{TOGGLED}",
                        json={"status": next(toggles)},
                        headers=TEACHER_HEADERS,
                    )
                    assert response.status_code == 200, response.text
                    return False

                await poll(
                    moved_back, timeout=30, interval=0.3, what="the polling client moving back to its node"
                )
                await http.put(
                    f"/api/sessions/{sid}/records/{TOGGLED}",
                    json={"status": "absent"},
                    headers=TEACHER_HEADERS,
                )
                present = await settle([client], http, sid, students)
                assert client.count("connect", mark) == 1, client.describe(mark)
            print(f"{transport}: {client.describe()}")

            mark = client.mark()
            ended = await end_session(http, sid)
            assert ended["final_statistics"]["present"] == present
            end_event = await client.next("courseSessionEnded", since=mark)
            assert end_event.data["session_id"] == sid
            await client.next("activeSessionsData", since=mark, where=lambda d: d["activeSessions"] == [])
        assert client.count("activeSessionsError") == 0, client.describe()
        assert client.count("connect_error") == 0, client.describe()
    finally:
        await client.close()
