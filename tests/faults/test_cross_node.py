"""Two nodes, Redis and PostgreSQL: a teacher's actions on one node reach all subscribers once, in order."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.faults.conftest import Deployment
from tests.faults.live import (
    COURSE,
    LiveClient,
    check_in,
    counts_are,
    end_session,
    start_session,
)

pytestmark = pytest.mark.faults

EXPECTED = [
    "courseSessionStarted",
    "activeSessionsData",  # the started session, studentCount 0
    "activeSessionsData",  # studentCount 1 after the check-in
    "courseSessionEnded",
    "activeSessionsData",  # no active session
]


def assert_round(client: LiveClient, since: int, session_id: str, label: str) -> None:
    seen = client.since(since)
    assert [s.name for s in seen] == EXPECTED, f"{client.name} ({label}): {client.describe(since)}"
    started, before, after, ended, empty = (s.data for s in seen)
    assert started["course_id"] == COURSE
    assert started["session_id"] == session_id
    assert started["teacher_id"] == "demo-teacher"
    assert started["started_by"]
    assert [(a["sessionId"], a["studentCount"]) for a in before["activeSessions"]] == [(session_id, 0)]
    assert [(a["sessionId"], a["studentCount"]) for a in after["activeSessions"]] == [(session_id, 1)]
    assert ended["session_id"] == session_id
    stats: dict[str, Any] = ended["final_statistics"]
    assert (stats["present"], stats["absent"], stats["total"]) == (1, 4, 5)
    assert empty == {"course_id": COURSE, "activeSessions": []}


async def test_events_reach_subscribers_on_both_nodes_exactly_once_in_order(cluster: Deployment) -> None:
    a, b = await cluster.start("a", "b")
    # Subscribers that are not the students who check in (no myAttendanceUpdated for them).
    on_a, on_b = (
        LiveClient("subscriber-on-a", "demo-student-4"),
        LiveClient("subscriber-on-b", "demo-student-5"),
    )
    try:
        await on_a.connect(a.url)
        await on_b.connect(b.url)
        for through, student in ((a, "demo-student-1"), (b, "demo-student-2")):
            marks = {on_a.name: on_a.mark(), on_b.name: on_b.mark()}
            async with httpx.AsyncClient(base_url=through.url, timeout=10) as http:
                session_id = (await start_session(http, f"through {through.url}"))["id"]
                for client in (on_a, on_b):
                    await client.next(
                        "activeSessionsData",
                        since=marks[client.name],
                        where=counts_are([0]),
                    )
                await check_in(http, session_id, student)
                for client in (on_a, on_b):
                    await client.next(
                        "activeSessionsData",
                        since=marks[client.name],
                        where=counts_are([1]),
                    )
                await end_session(http, session_id)
                for client in (on_a, on_b):
                    await client.next(
                        "activeSessionsData",
                        since=marks[client.name],
                        where=lambda d: d["activeSessions"] == [],
                    )
            # Nothing twice: listen a while longer, then the whole sequence must be exact.
            await on_a.quiet(1.0)
            await on_b.quiet(1.0)
            for client in (on_a, on_b):
                assert_round(client, marks[client.name], session_id, f"teacher through {through.url}")
        for client in (on_a, on_b):
            assert client.count("connect") == 1, client.describe()
            assert client.count("activeSessionsError") == 0, client.describe()
    finally:
        await on_a.close()
        await on_b.close()
