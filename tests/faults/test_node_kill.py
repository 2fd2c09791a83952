"""A node killed with SIGKILL mid-session and started again: nothing lost, clients come back by themselves."""

from __future__ import annotations

import signal

import httpx
import pytest

from tests.faults.conftest import Deployment
from tests.faults.live import (
    COURSE,
    LiveClient,
    check_in,
    counts_are,
    end_session,
    get_session,
    start_session,
)

pytestmark = pytest.mark.faults


async def test_sigkill_keeps_session_and_check_ins_and_the_client_resubscribes_to_a_true_snapshot(
    cluster: Deployment,
) -> None:
    a, b = await cluster.start("a", "b")
    # The seed's hook: default transports (polling, then upgrade), reconnection on.
    watcher = LiveClient("watcher-on-a", "demo-student-5")
    try:
        await watcher.connect(a.url, transports=("polling", "websocket"))
        async with httpx.AsyncClient(base_url=a.url, timeout=10) as via_a:
            session = await start_session(via_a, "killed mid-session")
            sid = session["id"]
            for count, student in enumerate(("demo-student-1", "demo-student-2"), start=1):
                await check_in(via_a, sid, student)
                await watcher.next("activeSessionsData", since=0, where=counts_are([count]))

        before = watcher.snapshot
        assert before is not None
        mark = watcher.mark()
        assert await a.signal(signal.SIGKILL) == -signal.SIGKILL
        await watcher.next("disconnect", since=mark, timeout=10, what="the disconnect when node a died")

        # While a is dead, the course goes on through b.
        async with httpx.AsyncClient(base_url=b.url, timeout=10) as via_b:
            await check_in(via_b, sid, "demo-student-3")

        await a.start()
        reconnected = await watcher.next("connect", since=mark, timeout=30, what="automatic reconnection")
        snapshot = await watcher.next(
            "activeSessionsData", since=reconnected.seq, what="the snapshot of the re-subscription"
        )
        assert snapshot.data["course_id"] == COURSE
        assert len(snapshot.data["activeSessions"]) == 1, snapshot.data
        item = snapshot.data["activeSessions"][0]
        assert item["sessionId"] == sid
        assert item["teacherId"] == "demo-teacher"
        assert item["studentCount"] == 3, "the true count, with the check-in made through b meanwhile"
        assert item["startedAt"] == before["activeSessions"][0]["startedAt"]

        async with httpx.AsyncClient(base_url=a.url, timeout=10) as via_a:
            body = await get_session(via_a, sid)
            assert body["status"] == "active"
            assert body["topic"] == "killed mid-session"
            assert {r["user_id"]: r["status"] for r in body["records"]} == {
                "demo-student-1": "present",
                "demo-student-2": "present",
                "demo-student-3": "present",
                "demo-student-4": "absent",
                "demo-student-5": "absent",
            }
            stats = body["statistics"]
            assert (stats["present"], stats["absent"], stats["total"]) == (3, 2, 5)

            # Live updates flow again on the new connection, from either node.
            mark = watcher.mark()
            async with httpx.AsyncClient(base_url=b.url, timeout=10) as via_b:
                await check_in(via_b, sid, "demo-student-4")
            await watcher.next("activeSessionsData", since=mark, where=counts_are([4]))
            ended = await end_session(via_a, sid)
            assert ended["final_statistics"]["present"] == 4
            end_event = await watcher.next("courseSessionEnded", since=mark)
            assert end_event.data["session_id"] == sid
            assert end_event.data["final_statistics"]["present"] == 4
            await watcher.next(
                "activeSessionsData", since=end_event.seq, where=lambda d: d["activeSessions"] == []
            )
        assert watcher.count("connect") == 2, watcher.describe()
        assert watcher.count("activeSessionsError") == 0, watcher.describe()
    finally:
        await watcher.close()
