"""The check-in scenarios: a burst of students checking in over HTTP, and over their sockets.

* check-in: ``--burst`` students (1,000) check in within one second, open
  loop and evenly spread (``--dup`` of them send twice at the same instant);
  latency, and the exact final count. Ours runs the session in ``code`` mode:
  the generator reads the current code as the teacher and every student sends
  it (the peer has no codes: open mode). Durable SQLite.
* checkin-socket (ours only: the peer has no check-in event): the same burst,
  each student on its own connected socket, subscribed to the course as the
  dashboard is, sending ``checkIn {session_id, code}`` with an ack; the
  latency runs from the emit to its ack. Same schedule, duplicates (twice on
  the same socket at the same instant), code mode and exactness check.
* checkin-pg: the same burst on PostgreSQL (fsync and synchronous commits on)
  with two of our nodes over Redis, the students split between them.

The burst's rate is the schedule's (``--burst`` requests over one second): the
report gives it as the offered rate, not as the server's capacity.
"""

# A benchmark driver: time limits are parameters, and blocking calls between measurements are fine.
# ruff: noqa: ASYNC221

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import sys
from typing import Any

import aiohttp

from .harness import BURST_COURSE, STUDENT_PREFIX, Harness
from .reporting import pct
from .servers import (
    HOST,
    REDIS_PIDS,
    ROOT,
    Server,
    log,
    machine_busy,
    monotonic,
    peak_mib,
    redis_server,
    tree_cpu,
    wait_healthy,
)


async def checkin_burst(
    h: Harness,
    srv: Server,
    scenario: str = "checkin",
    others: tuple[Server, ...] = (),
    services: tuple[int, ...] = (),
) -> None:
    """The burst, sent to ``srv`` (and ``others``, round robin); the subscriber watches ``srv``.

    ``services``: the process ids of what the nodes use (PostgreSQL, Redis), whose CPU is
    reported with the nodes' as "all processes"."""
    kind = srv.kind
    n = h.args.burst
    targets = [srv, *others]
    # one subscriber (a student of the course) watches activeSessionsData
    await h.lg.tokens(h.secret, STUDENT_PREFIX, 0, 1, name="one")
    await h.lg.open(
        host=HOST,
        port=srv.port,
        mode="sio",
        course_id=BURST_COURSE,
        gate="all",
        concurrency=1,
        tokens="one",
    )
    coded = kind == "ours"
    st, body = await h.api(
        srv,
        "POST",
        f"/api/courses/{BURST_COURSE}/sessions",
        h.teacher,
        {"topic": "bench", "check_in_mode": "code"} if coded else {"topic": "bench"},
    )
    if st != 201:
        raise RuntimeError(f"{kind}: start session -> {st} {body}")
    sid = body["id"]
    check_in_body = None
    if coded:  # what the projector shows; its grace (5 s) outlasts the one-second burst
        st, code = await h.api(srv, "GET", f"/api/sessions/{sid}/check-in-code", h.teacher)
        if st != 200:
            raise RuntimeError(f"{kind}: check-in code -> {st} {code}")
        check_in_body = {"code": code["code"]}
    await h.lg.arm("activeSessionsData", keep=True)
    conn = aiohttp.TCPConnector(limit=h.args.burst_pool, force_close=False)
    results: list[tuple[int, float]] = []
    async with aiohttp.ClientSession(connector=conn) as http:
        urls = [f"http://{HOST}:{t.port}" for t in targets]
        await asyncio.gather(
            *(h.get(http, urls[k % len(urls)] + "/healthz") for k in range(h.args.burst_pool))
        )
        await asyncio.sleep(0.2)

        async def one(i: int) -> None:
            t = monotonic()
            try:
                async with http.post(
                    f"{urls[i % len(urls)]}/api/sessions/{sid}/check-in",
                    json=check_in_body,
                    headers={"Authorization": f"Bearer {h.burst_tokens[i]}"},
                ) as r:
                    await r.read()
                    results.append((r.status, (monotonic() - t) * 1000))
            except asyncio.CancelledError:  # still unanswered at the time limit: a lower bound
                results.append((0, (monotonic() - t) * 1000))
                raise
            except aiohttp.ClientError as exc:
                results.append((-1, (monotonic() - t) * 1000))
                log(f"  check-in error: {exc}")

        # evenly spread over one second; the first `dup` students fire twice at the same instant
        plan = sorted([(i / n, i) for i in range(n)] + [(i / n, i) for i in range(min(h.args.dup, n))])
        for target in targets:
            target.reset_peak()
        c0 = sum(target.cpu() for target in targets)
        s0 = sum(tree_cpu(pid) for pid in services)
        g0 = await h.gen_cpu()
        m0 = machine_busy()
        tasks = []
        t_start = monotonic()
        for at, i in plan:
            delay = t_start + at - monotonic()
            if delay > 0.0005:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(i)))
        _, pending = await asyncio.wait(tasks, timeout=h.args.event_timeout)
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.wait(pending)
            log(f"  check-in {kind}: {len(pending)} requests unanswered after {h.args.event_timeout}s")
        t_end = monotonic()
        c1 = sum(target.cpu() for target in targets)
        s1 = sum(tree_cpu(pid) for pid in services)
        g1 = await h.gen_cpu()
        m1 = machine_busy()
    # exact count: the session as the teacher sees it, and the subscriber's last studentCount
    outcome = await burst_outcome(h, srv, sid, n)
    await h.lg.wait("activeSessionsData", timeout=0.1, times=False)
    await h.api(srv, "POST", f"/api/sessions/{sid}/end", h.teacher)
    await h.lg.close()
    statuses: dict[str, int] = {}
    for s, _ in results:
        key = {0: "unanswered", -1: "error"}.get(s, str(s))
        statuses[key] = statuses.get(key, 0) + 1
    sample = burst_sample(
        h,
        [ms for _, ms in results],
        sum(1 for s, _ in results if s == 200),
        statuses,
        (t_start, t_end),
        **outcome,
        server_cpu_s=c1 - c0,
        cpu_per_checkin_ms=(c1 - c0) / n * 1000,
        all_cpu_per_checkin_ms=(c1 - c0 + s1 - s0) / n * 1000,
        peak_mib=peak_mib(targets),
        gen_cpu_s=g1 - g0,
        other_cpu_s=(m1 - m0) - (c1 - c0) - (g1 - g0),
    )
    h.add(scenario, kind, sample)
    log(
        f"  {scenario} {kind}: {len(results)} req, p50 {sample['p50_ms']:.1f} p95 {sample['p95_ms']:.1f} "
        f"p99 {sample['p99_ms']:.1f} max {sample['max_ms']:.1f} ms, present={outcome['present']} "
        f"records={outcome['records']} unique={outcome['unique_records']} "
        f"last studentCount={outcome['last_studentCount']} exact={outcome['exact']} statuses={statuses}"
    )


def burst_sample(
    h: Harness, lat: list[float], ok: int, statuses: dict[str, int], timing: tuple[float, float], **rest: Any
) -> dict[str, Any]:
    """The keys every check-in burst reports (latency over every request, answered or not)."""
    t_start, t_end = timing
    return {
        "requests": len(lat),
        "statuses": statuses,
        "ok": ok,
        "errors": len(lat) - ok,
        "p50_ms": pct(lat, 50),
        "p95_ms": pct(lat, 95),
        "p99_ms": pct(lat, 99),
        "max_ms": max(lat) if lat else None,
        # The open loop sends on the schedule (n requests over one second): this is the offered
        # rate the server kept up with, not its capacity.
        "completed_per_s": len(lat) / (t_end - t_start),
        "burst_s": t_end - t_start,
        **rest,
    }


async def burst_outcome(h: Harness, srv: Server, sid: str, n: int) -> dict[str, Any]:
    """The session as the teacher sees it after a burst, and the subscribers' last studentCount."""
    _, sess = await h.api(srv, "GET", f"/api/sessions/{sid}", h.teacher)
    stats = sess.get("statistics", {}) if isinstance(sess, dict) else {}
    records = sess.get("records", []) if isinstance(sess, dict) else []
    ids = [r["user_id"] for r in records]
    marked = [r["user_id"] for r in records if r.get("status") in ("present", "late")]
    last_count = None
    deadline = monotonic() + 5
    while monotonic() < deadline:
        last = await h.lg.last("activeSessionsData")
        if last:
            data = json.loads(last[2:])[1]
            sess_items = [a for a in data.get("activeSessions", []) if a.get("sessionId") == sid]
            last_count = sess_items[0]["studentCount"] if sess_items else None
            if last_count == n:
                break
        await asyncio.sleep(0.1)
    exact = (
        stats.get("present") == n and len(marked) == n and len(set(marked)) == n and len(ids) == len(set(ids))
    )
    return {
        "present": stats.get("present"),
        "total": stats.get("total"),
        "records": len(ids),
        "unique_records": len(set(ids)),
        "last_studentCount": last_count,
        "exact": exact and last_count == n,
    }


async def checkin_socket_burst(h: Harness, srv: Server, scenario: str = "checkin-socket") -> None:
    """The burst over the socket: every student checks in on its own connection (``checkIn``)."""
    n = h.args.burst
    await h.lg.tokens(h.secret, STUDENT_PREFIX, 0, n, name="burst")
    opened = await h.lg.open(
        host=HOST,
        port=srv.port,
        mode="sio",
        course_id=BURST_COURSE,
        gate="all",
        concurrency=h.args.ramp_concurrency,
        tokens="burst",
        timeout=h.args.open_timeout,
    )
    if opened["opened"] != n:
        raise RuntimeError(f"{scenario}: {opened['opened']} of {n} sockets connected: {opened['errors']}")
    st, body = await h.api(
        srv,
        "POST",
        f"/api/courses/{BURST_COURSE}/sessions",
        h.teacher,
        {"topic": "bench", "check_in_mode": "code"},
    )
    if st != 201:
        raise RuntimeError(f"{scenario}: start session -> {st} {body}")
    sid = body["id"]
    st, code = await h.api(srv, "GET", f"/api/sessions/{sid}/check-in-code", h.teacher)
    if st != 200:
        raise RuntimeError(f"{scenario}: check-in code -> {st} {code}")
    await asyncio.sleep(1.0)  # the start's announcement to the n sockets is not part of the burst
    await h.lg.arm("activeSessionsData", keep=True)
    srv.reset_peak()
    c0, g0, m0 = srv.cpu(), await h.gen_cpu(), machine_busy()
    t_start = monotonic() + 0.2  # every worker has its schedule before the first emit
    results, t_end = await h.lg.acked(
        "checkIn",
        {"session_id": sid, "code": code["code"]},
        total=n,
        dup=min(h.args.dup, n),
        at=t_start,
        timeout=h.args.event_timeout,
    )
    c1, g1, m1 = srv.cpu(), await h.gen_cpu(), machine_busy()
    outcome = await burst_outcome(h, srv, sid, n)
    await h.lg.wait("activeSessionsData", timeout=0.1, times=False)
    await h.api(srv, "POST", f"/api/sessions/{sid}/end", h.teacher)
    await h.lg.close()  # not h.teardown: its row is the teardown of N, not of this burst's sockets
    deadline = monotonic() + h.args.settle_timeout
    while monotonic() < deadline:  # the next phase must not pay for these disconnects
        before = srv.cpu()
        await asyncio.sleep(0.25)
        if srv.cpu() - before < 0.25 * 0.1:
            break
    statuses: dict[str, int] = {}
    for _, status in results:
        statuses[status] = statuses.get(status, 0) + 1
    sample = burst_sample(
        h,
        [ms for ms, _ in results],
        statuses.get("ok", 0),
        statuses,
        (t_start, t_end),
        **outcome,
        server_cpu_s=c1 - c0,
        cpu_per_checkin_ms=(c1 - c0) / n * 1000,
        peak_mib=peak_mib([srv]),
        gen_cpu_s=g1 - g0,
        other_cpu_s=(m1 - m0) - (c1 - c0) - (g1 - g0),
    )
    h.add(scenario, srv.kind, sample)
    log(
        f"  {scenario} {srv.kind}: {sample['requests']} checkIn, p50 {sample['p50_ms']:.1f} "
        f"p95 {sample['p95_ms']:.1f} p99 {sample['p99_ms']:.1f} max {sample['max_ms']:.1f} ms, "
        f"present={outcome['present']} records={outcome['records']} unique={outcome['unique_records']} "
        f"last studentCount={outcome['last_studentCount']} exact={outcome['exact']} statuses={statuses}"
    )


async def checkin_postgres(h: Harness) -> None:
    """The check-in burst on a durable PostgreSQL with two of our nodes over Redis."""
    if not shutil.which("redis-server"):
        h.notes.append("checkin-pg: not available: apt-get install redis-server")
        return
    sys.path.insert(0, ROOT)
    from tests.infra.postgres import PostgresServer  # the tests' throw-away server, made durable

    try:
        pg = PostgresServer(durable=True)
        pg.start()
    except Exception as exc:
        h.notes.append(f"checkin-pg: not available: {exc}".splitlines()[0][:300])
        return
    try:
        with redis_server(h.logdir, "redis-pg") as url:
            services = tuple(pid for pid in (pg.pid, REDIS_PIDS.get(url)) if pid is not None)
            await _checkin_postgres(h, url, pg.create_database("bench"), services)  # its DSN
    finally:
        pg.close()


async def _checkin_postgres(h: Harness, url: str, database_url: str, services: tuple[int, ...]) -> None:
    a = h.make("ours", "pgA", url, database_url)
    b = h.make("ours", "pgB", url, database_url)
    try:
        migrated = subprocess.run(
            [h.args.ours, "migrate"], env=a.env, capture_output=True, text=True, check=False
        )
        if migrated.returncode != 0:
            raise RuntimeError(f"migrate failed: {migrated.stderr[-300:]}")
        a.start()
        b.start()
        await wait_healthy(h.http, a)
        await wait_healthy(h.http, b)
        ready, h.ours_ready = h.ours_ready, False  # a fresh database: enrol again
        try:
            await h.setup(a)
        finally:
            h.ours_ready = ready
        await h.warmup(a)
        await h.warmup(b)  # both nodes' connection pools filled before the measured burst
        for _ in range(h.args.rounds):
            async with h.profile(a, "checkin-pg"):
                await checkin_burst(h, a, "checkin-pg", others=(b,), services=services)
    except Exception as exc:
        h.notes.append(f"checkin-pg: failed: {exc or type(exc).__name__}".splitlines()[0][:300])
    finally:
        with contextlib.suppress(Exception):
            await h.lg.close()
        a.stop()
        b.stop()
