"""Redis stopped for at least ten seconds: every subscriber is still served (the outbox); /readyz says so."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.faults.conftest import Deployment, assert_clean_log
from tests.faults.live import (
    LiveClient,
    api,
    check_in,
    counts_are,
    end_session,
    poll,
    readiness,
    start_session,
)
from tests.infra.redis import RedisServer

pytestmark = pytest.mark.faults

OUTAGE_SECONDS = 10.0


async def test_redis_outage_keeps_nodes_serving_and_fan_out_resumes_by_itself(
    cluster: Deployment, redis_running: RedisServer
) -> None:
    a, b = await cluster.start("a", "b")
    on_a, on_b = (
        LiveClient("subscriber-on-a", "demo-student-4"),
        LiveClient("subscriber-on-b", "demo-student-5"),
    )
    try:
        await on_a.connect(a.url)
        await on_b.connect(b.url)
        async with api(a.url, b.url) as (via_a, via_b), httpx.AsyncClient(timeout=10) as http:
            for node in (a, b):
                status, body = await readiness(http, node.url)
                assert (status, body.get("redis")) == (200, "ok"), body

            # Fan-out works before the outage.
            mark_b = on_b.mark()
            sid = (await start_session(via_a))["id"]
            await on_b.next("activeSessionsData", since=mark_b, where=counts_are([0]))

            redis_running.stop()
            stopped_at = time.monotonic()

            async def both_say_redis_down() -> bool:
                answers = [await readiness(http, node.url) for node in (a, b)]
                return all(
                    status == 503
                    and body.get("status") == "unavailable"
                    and str(body.get("redis", "")).startswith("down")
                    and body.get("database") == "ok"
                    for status, body in answers
                )

            await poll(
                both_say_redis_down,
                timeout=OUTAGE_SECONDS - 2,
                what="/readyz on both nodes saying redis is down",
            )

            # Each node still serves its own subscribers, and the API still works.
            mark_a, mark_b = on_a.mark(), on_b.mark()
            await check_in(via_a, sid, "demo-student-1")
            await on_a.next(
                "activeSessionsData",
                since=mark_a,
                where=counts_are([1]),
                timeout=5,
                what="a check-in through a, to a subscriber on a, while Redis is down",
            )
            await check_in(via_b, sid, "demo-student-2")
            await on_b.next(
                "activeSessionsData",
                since=mark_b,
                where=counts_are([2]),
                timeout=5,
                what="a check-in through b, to a subscriber on b, while Redis is down",
            )
            # Across nodes too: a's relay reads b's check-in from the outbox (its poll), no Redis needed.
            await on_a.next(
                "activeSessionsData",
                since=mark_a,
                where=counts_are([2]),
                timeout=5,
                what="a check-in through b reaching a subscriber on a through the outbox while Redis is down",
            )
            # Order, not time: all of that arrived while Redis was still down (it is started again
            # only below), and both nodes still say so.
            assert await both_say_redis_down(), "/readyz stopped saying redis is down during the outage"

            # The outage lasts at least OUTAGE_SECONDS (the pub/sub retries run out of their first
            # attempts); however long the checks above took, nothing is asserted about it.
            await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped_at)))
            redis_running.start()

            async def both_ready() -> bool:
                answers = [await readiness(http, node.url) for node in (a, b)]
                return all(status == 200 and body.get("redis") == "ok" for status, body in answers)

            took = await poll(
                both_ready, timeout=30, what="/readyz on both nodes back to ready after Redis returned"
            )
            print(f"readyz ok {took:.1f} s after Redis was back")

            # Cross-node fan-out again, in both directions, without restarting anything.
            mark_a, mark_b = on_a.mark(), on_b.mark()
            await check_in(via_a, sid, "demo-student-3")
            await on_b.next(
                "activeSessionsData",
                since=mark_b,
                where=counts_are([3]),
                timeout=15,
                what="a check-in through a reaching a subscriber on b after Redis returned",
            )
            await on_a.next("activeSessionsData", since=mark_a, where=counts_are([3]))
            await end_session(via_b, sid)
            await on_a.next(
                "courseSessionEnded",
                since=mark_a,
                timeout=15,
                what="an end through b reaching a subscriber on a after Redis returned",
            )
            await on_a.next("activeSessionsData", since=mark_a, where=lambda d: d["activeSessions"] == [])
            await on_b.next("courseSessionEnded", since=mark_b)
            await on_b.next("activeSessionsData", since=mark_b, where=lambda d: d["activeSessions"] == [])
        for client in (on_a, on_b):
            assert client.count("connect") == 1, f"{client.name} lost its connection: {client.describe()}"
            assert client.count("activeSessionsError") == 0, client.describe()
        for node in (a, b):
            assert_clean_log(node)
    finally:
        await on_a.close()
        await on_b.close()
