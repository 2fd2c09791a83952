#!/usr/bin/env python3
"""Webhook delivery throughput: a burst of course events, all delivered, signed, in order per course.

    .venv/bin/python bench/term_webhooks.py --courses 20 --sessions 10

One process: our app (SQLite in a temporary directory, the default settings, loopback allowed for
webhooks) and a receiver on loopback that verifies every signature with the Standard Webhooks
reference verifier. One global endpoint takes session.started and session.ended. The teacher of each
of ``--courses`` courses starts and ends ``--sessions`` sessions through the service (the events are
committed as fast as the service takes them); the clock runs from the first commit to the last
delivery received. Prints the events, the time, deliveries per second, the lag of the last delivery
after the last commit, and checks that each message arrived once and each course's in order.
Loopback only; bounded by ``--timeout``.
"""

# A benchmark driver: time limits are parameters.

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

from attendance_live.app import create_app  # noqa: E402
from attendance_live.auth.tokens import Identity  # noqa: E402
from attendance_live.config import Settings  # noqa: E402
from attendance_live.db.engine import Database  # noqa: E402
from attendance_live.db.migrate import upgrade  # noqa: E402


async def main(courses: int, sessions: int, limit_seconds: float) -> dict[str, Any]:
    workdir = tempfile.mkdtemp(prefix="bench-term-")
    url = f"sqlite+aiosqlite:///{workdir}/bench.db"
    database = Database(url)
    await upgrade(database)
    await database.dispose()
    settings = Settings(
        access_token_secret="bench-" + "x" * 40,
        database_url=url,
        secret_file=f"{workdir}/secret",
        webhook_allowed_networks=(ipaddress.ip_network("127.0.0.0/8"),),
    )
    app = create_app(settings)
    expected = courses * sessions * 2
    got: list[tuple[str, str, str]] = []
    done = asyncio.Event()
    secret: dict[str, str] = {}

    async def receive(request: web.Request) -> web.Response:
        raw = await request.read()
        body = Webhook(secret["value"]).verify(raw, dict(request.headers))
        got.append((request.headers["webhook-id"], body["data"]["course_id"], body["type"]))
        if len(got) >= expected:
            done.set()
        return web.Response(status=204)

    receiver = web.Application()
    receiver.router.add_post("/hook", receive)
    runner = web.AppRunner(receiver, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    admin = Identity("bench-admin", "Bench Admin", None, "admin")
    result: dict[str, Any] = {"courses": courses, "sessions_per_course": sessions, "events": expected}
    async with app.http.router.lifespan_context(app.http):
        service = app.context.service
        created = await app.term.webhooks.create_endpoint(
            admin, url=f"http://127.0.0.1:{port}/hook", event_types=["session.started", "session.ended"]
        )
        secret["value"] = created.secret
        teachers = []
        for n in range(courses):
            teacher = Identity(f"bench-teacher-{n}", f"Teacher {n}", None, "teacher")
            await service.create_course(teacher, course_id=f"bench-{n}", code=f"B{n}", title=f"Bench {n}")
            teachers.append(teacher)
        started = time.perf_counter()

        async def course_run(n: int) -> None:
            for _ in range(sessions):
                view = await service.start_session(teachers[n], f"bench-{n}")
                await service.end_session(teachers[n], view.id)

        await asyncio.gather(*(course_run(n) for n in range(courses)))
        committed = time.perf_counter()
        await asyncio.wait_for(done.wait(), limit_seconds)
        finished = time.perf_counter()
    await runner.cleanup()
    per_course: dict[str, list[str]] = defaultdict(list)
    for _, course, kind in got:
        per_course[course].append(kind)
    in_order = all(k == ["session.started", "session.ended"] * sessions for k in per_course.values())
    result.update(
        delivered=len(got),
        unique=len({g[0] for g in got}),
        in_order_per_course=in_order,
        commit_seconds=round(committed - started, 3),
        total_seconds=round(finished - started, 3),
        deliveries_per_second=round(len(got) / (finished - started), 1),
        last_delivery_after_last_commit_seconds=round(finished - committed, 3),
    )
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--courses", type=int, default=20)
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.courses, args.sessions, args.timeout)), indent=2))
