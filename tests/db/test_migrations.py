"""The migrations: 0002 and 0003 on a database holding records from before them; head matches the models."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection

from attendance_live.config import Settings
from attendance_live.db import (
    lti_models,  # noqa: F401  (registers the LMS tables on Base)
    term_models,  # noqa: F401  (its tables are on Base)
)
from attendance_live.db.engine import Database
from attendance_live.db.migrate import alembic_config, current_revision, head_revision, upgrade
from attendance_live.db.models import Base

ROWS = """
INSERT INTO users (id, name, role, created_at, updated_at) VALUES
  ('t', 'Teacher', 'teacher', '2024-01-15 09:00:00', '2024-01-15 09:00:00'),
  ('a', 'Ann', 'student', '2024-01-15 09:00:00', '2024-01-15 09:00:00'),
  ('b', 'Ben', 'student', '2024-01-15 09:00:00', '2024-01-15 09:00:00'),
  ('c', 'Cy', 'student', '2024-01-15 09:00:00', '2024-01-15 09:00:00');
INSERT INTO courses (id, code, title, teacher_id, created_at)
  VALUES ('c1', 'C1', 'Course', 't', '2024-01-15 09:00:00');
INSERT INTO attendance_sessions (id, course_id, status, late_after_minutes, max_duration_minutes,
  started_at, started_by_id, started_by, expires_at)
  VALUES ('s', 'c1', 'active', 10, 60, '2024-01-15 09:00:00', 't', 'Teacher', '2024-01-15 10:00:00');
INSERT INTO attendance_records (session_id, user_id, status, marked_at, marked_by) VALUES
  ('s', 'a', 'present', '2024-01-15 09:01:00', 'a'),
  ('s', 'b', 'excused', '2024-01-15 09:02:00', 't'),
  ('s', 'c', 'absent', NULL, NULL);
"""


async def test_0002_keeps_own_check_ins_and_leaves_teacher_marks_unknown_0003_keeps_sessions_open(
    settings: Settings,
) -> None:
    database = Database(settings.database_url)

    def to_0001(connection: Connection) -> None:
        config = alembic_config(database.url)
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        for statement in ROWS.split(";"):
            if statement.strip():
                connection.execute(text(statement))

    try:
        async with database.write_engine.begin() as connection:
            await connection.run_sync(to_0001)
        assert await current_revision(database) == "0001"
        await upgrade(database)
        assert await current_revision(database) == head_revision()
        async with database.read_engine.connect() as connection:
            rows = (
                await connection.execute(
                    text("SELECT user_id, checked_in_at FROM attendance_records ORDER BY user_id")
                )
            ).all()
            session = (
                await connection.execute(
                    text(
                        "SELECT check_in_mode, code_period_seconds, code_secret, allowed_networks "
                        "FROM attendance_sessions"
                    )
                )
            ).one()
    finally:
        await database.dispose()
    checked = {user_id: value for user_id, value in rows}
    assert checked["b"] is None  # the teacher's mark is not a check-in
    assert checked["c"] is None
    assert str(checked["a"]).startswith("2024-01-15 09:01:00")
    # A session from before 0003 stays as it was: open, anywhere (no code without a secret).
    assert tuple(session) == ("open", 15, "", None)


async def test_the_migrations_build_exactly_the_models_tables(database: Database) -> None:
    async with database.read_engine.connect() as connection:
        diff = await connection.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
        )
    assert diff == [], "a model changed without a migration: run alembic revision --autogenerate"
