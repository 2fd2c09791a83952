"""``Database.upsert`` (one INSERT … ON CONFLICT for SQLite and PostgreSQL alike); grouped units."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from attendance_live.db.engine import GROUP_ATTEMPTS, Database
from attendance_live.db.models import User

T0 = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
T1 = datetime(2024, 1, 15, 11, 0, tzinfo=UTC)


def _row(user_id: str, name: str, at: datetime) -> dict[str, object]:
    return {"id": user_id, "name": name, "email": None, "role": "student", "created_at": at, "updated_at": at}


async def _users(database: Database) -> list[tuple[str, str, datetime]]:
    async with database.read() as db:
        rows = await db.execute(select(User.id, User.name, User.updated_at).order_by(User.id))
        return [(uid, name, at) for uid, name, at in rows]


async def test_do_nothing_keeps_the_stored_row(database: Database) -> None:
    async with database.write() as db:
        await db.execute(database.upsert(User, _row("u1", "First", T0), key=[User.id]))
        await db.execute(database.upsert(User, _row("u1", "Second", T1), key=[User.id]))
    assert await _users(database) == [("u1", "First", T0)]


async def test_do_update_sets_what_update_returns_from_excluded(database: Database) -> None:
    async with database.write() as db:
        await db.execute(database.upsert(User, [_row("u1", "First", T0)], key=[User.id]))
        statement = database.upsert(
            User,
            [_row("u1", "Renamed", T1), _row("u2", "New", T1)],
            key=[User.id],
            update=lambda excluded: {"name": excluded.name, "updated_at": excluded.updated_at},
        )
        await db.execute(statement)
    assert await _users(database) == [("u1", "Renamed", T1), ("u2", "New", T1)]
    async with database.read() as db:
        created = (await db.execute(select(User.created_at).where(User.id == "u1"))).scalar_one()
        assert created == T0  # not in update(): kept
        assert (await db.execute(select(func.count()).select_from(User))).scalar_one() == 2


async def test_returning_reports_only_inserted_rows(database: Database) -> None:
    async def insert(name: str) -> tuple[object, ...] | None:
        statement = database.upsert(User, _row("u1", name, T0), key=["id"]).returning(User.name)
        row = await database.run_write(lambda conn: conn.execute(statement).first())
        return None if row is None else tuple(row)

    assert await insert("First") == ("First",)
    assert await insert("Second") is None  # the conflict inserted nothing


class Refused(Exception):
    pass


async def test_grouped_writes_commit_together_and_a_failing_unit_undoes_only_itself(
    database: Database,
) -> None:
    def unit(user_id: str, fail: bool = False) -> Callable[[Connection], str]:
        def work(conn: Connection) -> str:
            conn.execute(insert(User).values(_row(user_id, user_id, T0)))
            if fail:
                raise Refused(user_id)  # after its write: the savepoint must undo it
            return user_id

        return work

    units = [database.run_write_grouped(unit(f"u{n}", fail=n == 3)) for n in range(8)]
    outcomes = await asyncio.gather(*units, return_exceptions=True)
    assert [o if isinstance(o, str) else type(o).__name__ for o in outcomes] == [
        "u0",
        "u1",
        "u2",
        "Refused",
        "u4",
        "u5",
        "u6",
        "u7",
    ]
    # Answered after the commit: a fresh reader sees every kept row, and not the refused one.
    assert [uid for uid, _, _ in await _users(database)] == ["u0", "u1", "u2", "u4", "u5", "u6", "u7"]

    def name_of(user_id: str) -> Callable[[Connection], object]:
        return lambda conn: conn.execute(select(User.name).where(User.id == user_id)).scalar()

    reads = await asyncio.gather(*(database.run_read_grouped(name_of(f"u{n}")) for n in range(8)))
    assert reads == ["u0", "u1", "u2", None, "u4", "u5", "u6", "u7"]


async def test_a_group_runs_its_units_in_their_order_and_answers_each_its_own(database: Database) -> None:
    ran: list[str] = []

    def unit(name: str) -> Callable[[Connection], str]:
        def work(_conn: Connection) -> str:
            ran.append(name)
            return name

        return work

    # Two nodes locking the same rows sort them the same way (db/engine.py says why).
    orders = ["check-in s b", "check-in s a", "", "check-in s c", "recovery p"]
    answers = await asyncio.gather(*(database.run_write_grouped(unit(o), order=o) for o in orders))
    assert answers == orders
    assert ran == sorted(orders)


class _Deadlock(Exception):
    sqlstate = "40P01"


def _deadlock() -> DBAPIError:
    return DBAPIError("UPDATE attendance_records …", {}, _Deadlock("deadlock detected"))


async def test_a_unit_undone_by_a_deadlock_runs_again_and_only_it(database: Database) -> None:
    tries: dict[str, int] = {"flaky": 0, "steady": 0}

    def flaky(conn: Connection) -> str:
        tries["flaky"] += 1
        conn.execute(insert(User).values(_row(f"flaky{tries['flaky']}", "f", T0)))
        if tries["flaky"] < GROUP_ATTEMPTS:
            raise _deadlock()  # after its write: the savepoint undoes it, as PostgreSQL would
        return "flaky"

    def steady(conn: Connection) -> str:
        tries["steady"] += 1
        conn.execute(insert(User).values(_row("steady", "s", T0)))
        return "steady"

    answers = await asyncio.gather(database.run_write_grouped(flaky), database.run_write_grouped(steady))
    assert list(answers) == ["flaky", "steady"]
    assert tries == {"flaky": GROUP_ATTEMPTS, "steady": 1}
    assert [uid for uid, _, _ in await _users(database)] == [f"flaky{GROUP_ATTEMPTS}", "steady"]


async def test_a_unit_deadlocked_every_time_fails_after_its_attempts(database: Database) -> None:
    tries = 0

    def doomed(_conn: Connection) -> None:
        nonlocal tries
        tries += 1
        raise _deadlock()

    def refused(_conn: Connection) -> None:
        raise Refused("not retried")  # an ordinary error reaches its caller at once

    outcomes = await asyncio.gather(
        database.run_write_grouped(doomed), database.run_write_grouped(refused), return_exceptions=True
    )
    assert [type(o) for o in outcomes] == [DBAPIError, Refused]
    assert tries == GROUP_ATTEMPTS
