"""DriverStatement: a Core statement on SQLite's driver cursor stores and reads what SQLAlchemy does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import String, bindparam, insert, select

from attendance_live.db.driver import DriverStatement
from attendance_live.db.engine import Database
from attendance_live.db.migrate import upgrade
from attendance_live.db.models import User

AT = datetime(2024, 1, 15, 10, 30, 0, 123000, tzinfo=UTC)


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    """Always SQLite: the driver path is SQLite's (PostgreSQL runs the statements as they are)."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}")
    await upgrade(db)
    yield db
    await db.dispose()


async def test_round_trips_agree_with_sqlalchemy(database: Database) -> None:
    uid = bindparam("p_uid", type_=String())
    at = bindparam("p_at", type_=User.created_at.type)
    write = DriverStatement(
        insert(User)
        .values(id=uid, name="Ann", role="student", created_at=at, updated_at=at)
        .returning(User.id, User.created_at),
        database.sync_dialect,
    )
    read = DriverStatement(select(User.name, User.updated_at).where(User.id == uid), database.sync_dialect)
    in_paris = AT.astimezone(timezone(timedelta(hours=1)))  # stored as UTC whatever the zone given
    written = await database.run_write(lambda conn: write.rows(conn, {"p_uid": "u1", "p_at": in_paris}))
    assert written == [("u1", AT)]
    async with database.read() as db:  # SQLAlchemy reads what the driver wrote
        assert (await db.execute(select(User.created_at).where(User.id == "u1"))).scalar_one() == AT
    async with database.write() as db:  # and the driver reads what SQLAlchemy wrote
        await db.execute(
            insert(User).values(id="u2", name="Bo", role="student", created_at=AT, updated_at=AT)
        )
    assert await database.run_read(lambda conn: read.rows(conn, {"p_uid": "u2"})) == [("Bo", AT)]
    assert await database.run_read(lambda conn: read.rows(conn, {"p_uid": "nobody"})) == []
    with pytest.raises(ValueError, match="naive"):
        await database.run_write(
            lambda conn: write.rows(conn, {"p_uid": "u3", "p_at": AT.replace(tzinfo=None)})
        )
