"""PostgreSQL restarted under a running node: 503s that say why, nothing half-written, recovery by itself."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.faults.conftest import Deployment, assert_clean_log
from tests.faults.live import (
    COURSE,
    STUDENTS,
    TEACHER_HEADERS,
    LiveClient,
    active_counts,
    api,
    check_in,
    counts_are,
    end_session,
    get_session,
    poll,
    readiness,
    start_session,
)
from tests.helpers import bearer
from tests.infra.postgres import PostgresServer

pytestmark = pytest.mark.faults


def assert_consistent(body: dict[str, Any]) -> None:
    """The statistics a session reports agree with its records."""
    statuses = [r["status"] for r in body["records"]]
    stats = body["statistics"]
    assert stats["total"] == len(statuses), body
    assert stats["present"] == sum(s in ("present", "late") for s in statuses), body
    assert stats["absent"] == statuses.count("absent"), body
    assert stats["excused"] == statuses.count("excused"), body


async def assert_unavailable(http: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> None:
    """``method path`` answers 503 with a ``detail`` that names the database, on a kept-alive connection."""
    what = f"{method} {path} while PostgreSQL is down"
    try:
        response = await http.request(method, path, **kwargs)
    except httpx.TransportError as exc:
        raise AssertionError(f"{what}: no response, the connection was closed ({exc!r})") from None
    assert response.status_code == 503, f"{what}: {response.status_code} {response.text}"
    detail = response.json().get("detail")
    assert isinstance(detail, str), f"{what}: {response.text}"
    assert "database" in detail.lower(), f"{what}: the detail should say the database is down: {detail!r}"


async def test_postgres_restart_gives_503_then_recovers_with_nothing_half_written(
    single: Deployment, postgres_server: PostgresServer
) -> None:
    (node,) = await single.start("a")
    watcher = LiveClient("watcher", "demo-student-5")
    try:
        await watcher.connect(node.url)
        async with api(node.url) as (http,):
            sid = (await start_session(http, "before the outage"))["id"]
            for student in ("demo-student-1", "demo-student-2"):
                await check_in(http, sid, student)
            await watcher.next("activeSessionsData", since=0, where=counts_are([2]))

            # Check-ins racing the shutdown: each one either answered 200 (then it
            # must be in the database afterwards) or was refused as a whole.
            async def racing_check_in() -> httpx.Response | Exception:
                try:
                    return await http.post(f"/api/sessions/{sid}/check-in", headers=bearer("demo-student-3"))
                except httpx.HTTPError as exc:
                    return exc

            racing = asyncio.create_task(racing_check_in())
            await asyncio.to_thread(postgres_server.stop)
            raced = await racing

            # During the outage: 503 with a clear message, for reads and writes alike.
            # Twice each: the first request may still find a pooled connection, the
            # second needs a new one (refused); both must be a 503, and the client's
            # kept-alive connection must stay usable.
            for _ in range(2):
                await assert_unavailable(http, "GET", f"/api/sessions/{sid}", headers=TEACHER_HEADERS)
                await assert_unavailable(
                    http, "POST", f"/api/sessions/{sid}/check-in", headers=bearer("demo-student-4")
                )
                await assert_unavailable(
                    http, "POST", f"/api/courses/{COURSE}/sessions", json={}, headers=TEACHER_HEADERS
                )
                await assert_unavailable(
                    http, "GET", f"/api/courses/{COURSE}/active-sessions", headers=TEACHER_HEADERS
                )
            status, ready = await readiness(http, node.url)
            assert status == 503, ready
            assert ready["status"] == "unavailable"
            assert str(ready["database"]).startswith("down"), ready
            assert (await http.get("/healthz")).status_code == 200, "liveness does not depend on the database"
            # A socket asking for a snapshot gets an error (or a cached snapshot that is
            # still true: nothing can change without the database), and stays connected.
            answer = await watcher.sio.call("checkActiveSessions", {"course_id": COURSE}, timeout=10)
            if "activeSessions" in answer:
                assert active_counts(answer) == [2], answer
            else:
                assert answer.get("code") == "internal", answer
            assert watcher.connected

            await asyncio.to_thread(postgres_server.start)

            async def answers() -> bool:
                return (await http.get(f"/api/sessions/{sid}", headers=TEACHER_HEADERS)).status_code == 200

            took = await poll(answers, timeout=30, what="the API answering again after PostgreSQL came back")
            print(f"API answered {took:.1f} s after PostgreSQL was back")
            # Recovered for good, not just once: a run of requests all succeed.
            for _ in range(10):
                for path in (f"/api/sessions/{sid}", f"/api/courses/{COURSE}/active-sessions"):
                    response = await http.get(path, headers=TEACHER_HEADERS)
                    assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"
            status, ready = await readiness(http, node.url)
            assert (status, ready.get("database")) == (200, "ok"), ready

            body = await get_session(http, sid)
            assert body["status"] == "active"
            assert body["topic"] == "before the outage"
            assert_consistent(body)
            statuses = {r["user_id"]: r["status"] for r in body["records"]}
            assert set(statuses) == set(STUDENTS)
            assert statuses["demo-student-1"] == statuses["demo-student-2"] == "present"
            assert statuses["demo-student-4"] == "absent", (
                "its check-in was answered 503: nothing may be written"
            )
            if isinstance(raced, httpx.Response) and raced.status_code == 200:
                assert statuses["demo-student-3"] == "present", "a check-in answered 200 must be kept"
            elif isinstance(raced, httpx.Response):
                assert raced.status_code == 503, f"{raced.status_code} {raced.text}"
            active = (
                await http.get(f"/api/courses/{COURSE}/active-sessions", headers=TEACHER_HEADERS)
            ).json()
            assert active_counts(active) == [body["statistics"]["present"]]

            # The service goes on: a check-in and the end, with their events.
            present = body["statistics"]["present"]
            mark = watcher.mark()
            await check_in(http, sid, "demo-student-4")
            await watcher.next("activeSessionsData", since=mark, where=counts_are([present + 1]))
            ended = await end_session(http, sid)
            assert ended["final_statistics"]["present"] == present + 1
            await watcher.next("courseSessionEnded", since=mark)
        assert watcher.count("connect") == 1, watcher.describe()
        assert_clean_log(node)
    finally:
        await watcher.close()
