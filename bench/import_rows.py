#!/usr/bin/env python3
"""A roster import of 10,000 rows, on SQLite and on PostgreSQL: how long, and in how many transactions.

    .venv/bin/python bench/import_rows.py                  # both databases, 10,000 rows, 3 rounds
    .venv/bin/python bench/import_rows.py --db sqlite      # SQLite only
    .venv/bin/python bench/import_rows.py --rows 2000      # smaller

The app runs in this process (``create_app`` and its lifespan, as ``serve``
builds it); each request goes through the whole ASGI stack (hardening, the
router, the CSV parser, the service, the outbox) by httpx's ASGI transport, so
the time is the server's work without a network in between. Per round, on a
fresh course:

1. ``dry_run``: the file checked and counted, nothing written;
2. ``add``: every row a new student (users and enrollments written, one outbox
   row per enrollment);
3. ``change``: the same students, every status changed (approved -> pending);
4. ``same``: the same file again (all unchanged: reads only).

Every INSERT, UPDATE and DELETE of the roster's tables notes its transaction: an import that writes
must write in exactly one (and a dry run, or an unchanged file, in none). The
target is under 2 s for 10,000 rows. PostgreSQL is the tests'
throw-away server (``tests/infra/postgres.py``, Debian's ``postgresql``) made
durable (its default ``fsync`` and ``synchronous_commit``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event

ROOT = str(Path(__file__).resolve().parent.parent)
sys.path.insert(0, ROOT)

from attendance_live.app import create_app  # noqa: E402
from attendance_live.auth.tokens import TokenService  # noqa: E402
from attendance_live.config import Settings  # noqa: E402
from attendance_live.db.engine import Database  # noqa: E402
from attendance_live.db.migrate import upgrade  # noqa: E402

SECRET = "bench-secret-" + "x" * 40
PHASES = ("dry_run", "add", "change", "same")
COUNTED = {"dry_run": "added", "add": "added", "change": "changed", "same": "unchanged"}


def roster_csv(rows: int, status: str) -> bytes:
    lines = ["user_id,email,name,status"]
    lines += [f"stu-{i:05d},student{i}@example.edu,Student {i},{status}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


async def one_database(label: str, database_url: str, rows: int, rounds: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            access_token_secret=SECRET,
            database_url=database_url,
            secret_file=Path(tmp) / "secret",
            max_body_bytes=64 * 1024 * 1024,
        )
        database = Database(settings.database_url)
        await upgrade(database)
        await database.dispose()
        app = create_app(settings)
        tokens = TokenService(SECRET)
        teacher = tokens.mint("bench-teacher", name="Bench Teacher", role="teacher", ttl_seconds=3600)
        headers = {"Authorization": f"Bearer {teacher}"}
        # The transactions that wrote the roster: each write to its tables notes its transaction
        # (not the relay's pruning of old outbox and recovery rows, which runs on its own).
        writers: set[int] = set()

        def note_write(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            words = statement.split(None, 3)
            if words[0].upper() in ("INSERT", "UPDATE", "DELETE") and any(
                table in words[:3] for table in ("users", "enrollments", "roster_invites", "outbox")
            ):
                writers.add(id(conn.get_transaction()))

        engine = app.context.service.database.write_engine.sync_engine
        event.listen(engine, "before_cursor_execute", note_write)
        times: dict[str, list[float]] = {phase: [] for phase in PHASES}
        async with app.http.router.lifespan_context(app.http):
            transport = httpx.ASGITransport(app=app.asgi)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=120) as http:
                approved, pending = roster_csv(rows, "approved"), roster_csv(rows, "pending")
                for round_ in range(rounds):
                    course = f"bench-{round_}"
                    created = await http.post(
                        "/api/courses", json={"id": course, "code": course, "title": "Bench"}, headers=headers
                    )
                    assert created.status_code == 201, created.text
                    await app.context.service.users.flush()
                    url = f"/api/courses/{course}/enrollments/import"
                    csv_headers = {**headers, "Content-Type": "text/csv"}
                    for phase, body, query in (
                        ("dry_run", approved, "?dry_run=true"),
                        ("add", approved, ""),
                        ("change", pending, ""),
                        ("same", pending, ""),
                    ):
                        writers.clear()
                        started = time.perf_counter()
                        answer = await http.post(url + query, content=body, headers=csv_headers)
                        took = time.perf_counter() - started
                        assert answer.status_code == 200, answer.text[:300]
                        result = answer.json()
                        assert result[COUNTED[phase]] == rows, (phase, result)
                        writes = 0 if phase in ("dry_run", "same") else 1
                        assert len(writers) == writes, f"{phase}: {len(writers)} writing transactions"
                        times[phase].append(took)
                    await app.relay.idle()
        event.remove(engine, "before_cursor_execute", note_write)
        print(f"  {label}: done", flush=True)
        return times


def table(results: dict[str, dict[str, list[float]]], rows: int) -> None:
    print()
    print(f"roster import of {rows:,} rows (median of the rounds, seconds; one transaction per write)")
    print(f"{'database':<12}" + "".join(f"{phase:>10}" for phase in PHASES) + f"{'rows/s add':>12}")
    for label, times in results.items():
        medians = {phase: statistics.median(values) for phase, values in times.items()}
        cells = "".join(f"{medians[phase]:>10.2f}" for phase in PHASES)
        print(f"{label:<12}{cells}{rows / medians['add']:>12,.0f}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )
    print(f"command: {' '.join(sys.argv)}")
    results: dict[str, dict[str, list[float]]] = {}
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite+aiosqlite:///{tmp}/bench.db"
            results["SQLite"] = await one_database("SQLite", url, args.rows, args.rounds)
    if args.db in ("postgresql", "both"):
        from tests.infra.postgres import PostgresServer

        pg = PostgresServer(durable=True)
        pg.start()
        try:
            dsn = pg.create_database("bench_import")
            url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
            results["PostgreSQL"] = await one_database("PostgreSQL", url, args.rows, args.rounds)
        finally:
            pg.close()
    table(results, args.rows)


if __name__ == "__main__":
    asyncio.run(main())
