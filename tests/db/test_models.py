"""The migrated database accepts exactly the statuses and roles of ``vocabulary``.

The migrations spell their CHECK constraints out; the models build theirs from
the vocabulary's Literals. A status added to one and not the other fails here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from attendance_live.db.engine import Database
from attendance_live.db.models import (
    AttendanceRecord,
    AttendanceSession,
    Course,
    Enrollment,
    RecordChange,
    User,
)
from attendance_live.vocabulary import (
    CHANGE_METHODS,
    CHECK_IN_MODES,
    ENROLLMENT_STATUSES,
    RECORD_STATUSES,
    ROLES,
    SESSION_STATUSES,
)

T0 = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)


def _user(user_id: str, role: str = "student") -> dict[str, Any]:
    return {"id": user_id, "name": user_id, "role": role, "created_at": T0, "updated_at": T0}


def _session(session_id: str, status: str) -> dict[str, Any]:
    return {
        "id": session_id,
        "course_id": "c",
        "status": status,
        "late_after_minutes": 10,
        "max_duration_minutes": 60,
        "started_at": T0,
        "started_by_id": "t",
        "started_by": "T",
        "expires_at": T0 + timedelta(hours=1),
        "ended_at": T0 + timedelta(minutes=30) if status == "ended" else None,
    }


async def _insert(database: Database, table: Any, row: dict[str, Any]) -> None:
    async with database.write() as db:
        await db.execute(insert(table).values(row))


@pytest.fixture
async def course(database: Database) -> Database:
    await _insert(database, User, _user("t", "teacher"))
    course = {"id": "c", "code": "C", "title": "C", "teacher_id": "t", "created_at": T0}
    await _insert(database, Course, course)
    await _insert(database, AttendanceSession, _session("s", "active"))
    return database


async def test_roles(course: Database) -> None:
    for n, role in enumerate(ROLES):
        await _insert(course, User, _user(f"u{n}", role))
    with pytest.raises(IntegrityError):
        await _insert(course, User, _user("x", "superuser"))


async def test_enrollment_statuses(course: Database) -> None:
    for n, status in enumerate(ENROLLMENT_STATUSES):
        await _insert(course, User, _user(f"u{n}"))
        row = {"course_id": "c", "user_id": f"u{n}", "status": status, "created_at": T0, "updated_at": T0}
        await _insert(course, Enrollment, row)
    await _insert(course, User, _user("x"))
    row = {"course_id": "c", "user_id": "x", "status": "waitlisted", "created_at": T0, "updated_at": T0}
    with pytest.raises(IntegrityError):
        await _insert(course, Enrollment, row)


async def test_record_statuses(course: Database) -> None:
    for n, status in enumerate(RECORD_STATUSES):
        await _insert(course, User, _user(f"u{n}"))
        await _insert(course, AttendanceRecord, {"session_id": "s", "user_id": f"u{n}", "status": status})
    await _insert(course, User, _user("x"))
    with pytest.raises(IntegrityError):
        await _insert(course, AttendanceRecord, {"session_id": "s", "user_id": "x", "status": "tardy"})


async def test_session_statuses(course: Database) -> None:
    for n, status in enumerate(SESSION_STATUSES):
        await _insert(course, AttendanceSession, _session(f"s{n}", status))
    with pytest.raises(IntegrityError):
        await _insert(course, AttendanceSession, _session("x", "paused"))


async def test_check_in_modes_and_code_periods(course: Database) -> None:
    for n, mode in enumerate(CHECK_IN_MODES):
        await _insert(course, AttendanceSession, {**_session(f"m{n}", "active"), "check_in_mode": mode})
    with pytest.raises(IntegrityError):
        await _insert(course, AttendanceSession, {**_session("x", "active"), "check_in_mode": "qr"})

    def periodic(period: int) -> dict[str, Any]:
        return {**_session(f"p{period}", "active"), "code_period_seconds": period}

    for period in (5, 300):
        await _insert(course, AttendanceSession, periodic(period))
    for period in (4, 301):
        with pytest.raises(IntegrityError):
            await _insert(course, AttendanceSession, periodic(period))


async def test_change_methods(course: Database) -> None:
    def change(n: int, method: str) -> dict[str, Any]:
        return {
            "session_id": "s",
            "user_id": f"u{n}",
            "status": "present",
            "changed_at": T0,
            "changed_by": "t",
            "method": method,
        }

    for n, method in enumerate(CHANGE_METHODS):
        await _insert(course, RecordChange, change(n, method))
    with pytest.raises(IntegrityError):
        await _insert(course, RecordChange, change(9, "guess"))
