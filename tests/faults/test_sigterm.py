"""SIGTERM: in-flight requests finish, sockets close at once so clients move on, the process exits cleanly."""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
from collections import Counter
from dataclasses import dataclass

import httpx
import pytest

from tests.faults.conftest import Deployment, assert_clean_log, full_log
from tests.faults.live import (
    COURSE,
    TEACHER_HEADERS,
    LiveClient,
    active_counts,
    api,
    counts_are,
    get_session,
    start_session,
)
from tests.helpers import bearer

pytestmark = pytest.mark.faults

FLOOD_STUDENTS = [f"flood-{n:02d}" for n in range(60)]
WORKERS = 6
MAX_REQUESTS_PER_WORKER = 150
RESPONSES_BEFORE_SIGTERM = 24
DISCONNECT_WITHIN_SECONDS = 5.0


@dataclass
class Outcome:
    kind: str  # "check-in", "session", "active"
    student: str | None
    status: int | None  # None: no response
    problem: str | None = None  # what was wrong with a response, or why there was none


def no_response(exc: httpx.HTTPError) -> bool:
    """The request got no response at all (as opposed to a response cut short)."""
    if isinstance(exc, httpx.ConnectError | httpx.ReadError | httpx.WriteError):
        return True
    return isinstance(exc, httpx.RemoteProtocolError) and "without sending a response" in str(exc)


async def test_sigterm_finishes_requests_closes_sockets_and_exits_cleanly(cluster: Deployment) -> None:
    a, b = await cluster.start("a", "b")
    async with api(a.url, b.url) as (via_a, via_b):
        for student in FLOOD_STUDENTS:
            response = await via_a.put(
                f"/api/courses/{COURSE}/enrollments/{student}",
                json={"status": "approved", "name": student},
                headers=TEACHER_HEADERS,
            )
            assert response.status_code in (200, 201), response.text
        sid = (await start_session(via_a, "drained by SIGTERM"))["id"]

    on_a_ws = LiveClient("websocket-on-a", "demo-student-1", reconnection=False)
    on_a_polling = LiveClient("polling-on-a", "demo-student-2", reconnection=False)
    on_b = LiveClient("subscriber-on-b", "demo-student-3")
    try:
        await on_a_ws.connect(a.url, ("websocket",))
        await on_a_polling.connect(a.url, ("polling",))
        await on_b.connect(b.url)

        outcomes: list[Outcome] = []
        students = iter(FLOOD_STUDENTS)
        enough = asyncio.Event()
        listener_closed = asyncio.Event()

        async def worker(number: int, http: httpx.AsyncClient) -> None:
            kinds = itertools.cycle(("check-in", "session", "active"))
            for _ in range(MAX_REQUESTS_PER_WORKER):
                if listener_closed.is_set():
                    return
                kind = next(kinds)
                student = next(students, None) if kind == "check-in" else None
                if kind == "check-in" and student is None:
                    kind = "session"
                if kind == "check-in":
                    request = http.build_request(
                        "POST", f"/api/sessions/{sid}/check-in", headers=bearer(str(student))
                    )
                elif kind == "session":
                    request = http.build_request("GET", f"/api/sessions/{sid}", headers=TEACHER_HEADERS)
                else:
                    request = http.build_request(
                        "GET", f"/api/courses/{COURSE}/active-sessions", headers=TEACHER_HEADERS
                    )
                try:
                    response = await http.send(request)
                except httpx.HTTPError as exc:
                    outcomes.append(Outcome(kind, student, None, repr(exc)))
                    if not no_response(exc):
                        return  # a response cut short: recorded, and the assertion below reports it
                    if isinstance(exc, httpx.ConnectError):
                        listener_closed.set()
                    continue
                problem = None
                try:
                    body = response.json()
                    if (
                        response.status_code == 200
                        and kind != "active"
                        and "id" not in body
                        and "user_id" not in body
                    ):
                        problem = f"an incomplete body: {response.text[:200]}"
                except ValueError:
                    problem = f"not JSON: {response.text[:200]!r}"
                outcomes.append(Outcome(kind, student, response.status_code, problem))
                if sum(o.status is not None for o in outcomes) >= RESPONSES_BEFORE_SIGTERM:
                    enough.set()

        async with httpx.AsyncClient(base_url=a.url, timeout=15) as flood_http:
            workers = [asyncio.create_task(worker(n, flood_http)) for n in range(WORKERS)]
            await asyncio.wait_for(enough.wait(), 30)
            marks = {c.name: c.mark() for c in (on_a_ws, on_a_polling)}
            sent_at = time.monotonic()
            exit_code = asyncio.create_task(a.signal(signal.SIGTERM))
            for client in (on_a_ws, on_a_polling):
                seen = await client.next(
                    "disconnect",
                    since=marks[client.name],
                    timeout=DISCONNECT_WITHIN_SECONDS,
                    what="the disconnect after SIGTERM",
                )
                print(f"{client.name}: disconnect {seen.at - sent_at:.2f} s after SIGTERM")
            code = await exit_code
            print(f"node a exited with {code} {time.monotonic() - sent_at:.2f} s after SIGTERM")
            listener_closed.set()
            await asyncio.wait_for(asyncio.gather(*workers), 30)

        tally = Counter((o.kind, o.status if o.status is not None else "no response") for o in outcomes)
        print("flood outcomes:", dict(tally))
        assert code in (0, -signal.SIGTERM), f"exit status {code}:\n{full_log(a)[-4000:]}"
        log = full_log(a)
        assert "Application shutdown complete" in log, log[-4000:]
        assert_clean_log(a)

        # Every response was whole and none was a 5xx.
        bad = [o for o in outcomes if o.status is not None and (o.status >= 500 or o.problem)]
        assert not bad, f"responses that were 5xx or incomplete: {bad}"
        cut_short = [
            o
            for o in outcomes
            if o.status is None
            and o.problem
            and "without sending" not in o.problem
            and not any(e in o.problem for e in ("ConnectError", "ReadError", "WriteError"))
        ]
        assert not cut_short, f"responses cut short: {cut_short}"
        assert all(o.status in (200, None) for o in outcomes), [
            o for o in outcomes if o.status not in (200, None)
        ]
        answered = {o.student for o in outcomes if o.kind == "check-in" and o.status == 200}
        unanswered = {o.student for o in outcomes if o.kind == "check-in" and o.status is None}
        assert answered, "no check-in was answered before SIGTERM"

        async with api(b.url) as (via_b,):
            body = await get_session(via_b, sid)
        assert body["status"] == "active", "a SIGTERM must not end the session"
        present = {r["user_id"] for r in body["records"] if r["status"] in ("present", "late")}
        assert answered <= present, f"check-ins answered 200 but not stored: {answered - present}"
        # A request that got no answer was not carried out either (in flight means finished).
        assert not (unanswered & present), f"check-ins stored but never answered: {unanswered & present}"
        stats = body["statistics"]
        assert stats["present"] == len(present)
        assert stats["total"] == len(body["records"])

        # The subscriber on b saw every committed change (node a sent its last events before exiting).
        await on_b.next(
            "activeSessionsData",
            since=0,
            where=counts_are([len(present)]),
            timeout=10,
            what=f"a snapshot with all {len(present)} check-ins, on node b",
        )
        # The clients that were on a move to b and get the true state there.
        for client, transports in ((on_a_ws, ("websocket",)), (on_a_polling, ("polling",))):
            snapshot = await client.connect(b.url, transports)
            assert active_counts(snapshot.data) == [len(present)], snapshot.data
    finally:
        for client in (on_a_ws, on_a_polling, on_b):
            await client.close()
