"""The demo course: one teacher, five approved students and one pending (idempotent)."""

from __future__ import annotations

import contextlib
from typing import Any

from attendance_live.auth.tokens import Identity, Role, TokenService
from attendance_live.service.attendance import AttendanceService
from attendance_live.service.errors import Conflict
from attendance_live.vocabulary import EnrollmentStatus

__all__ = [
    "DEMO_COURSE_CODE",
    "DEMO_COURSE_ID",
    "DEMO_COURSE_TITLE",
    "DEMO_TOKEN_TTL",
    "STUDENTS",
    "TEACHER",
    "demo_listing",
    "seed_demo",
]

DEMO_COURSE_ID = "demo-course"
DEMO_COURSE_CODE = "DEMO-101"
DEMO_COURSE_TITLE = "Demo: Introduction to Attendance"
DEMO_TOKEN_TTL = 7 * 24 * 3600
TEACHER = ("demo-teacher", "Grace Hopper", "grace@example.edu")
STUDENTS: list[tuple[str, str, EnrollmentStatus]] = [
    ("demo-student-1", "Alice Martin", "approved"),
    ("demo-student-2", "Bilal Chen", "approved"),
    ("demo-student-3", "Chloé Dubois", "approved"),
    ("demo-student-4", "Dmitri Ivanov", "approved"),
    ("demo-student-5", "Esther Okafor", "approved"),
    ("demo-student-6", "Farid Haddad", "pending"),
]


def _user(
    tokens: TokenService, user_id: str, name: str, role: Role, enrollment: str | None
) -> dict[str, Any]:
    email = TEACHER[2] if user_id == TEACHER[0] else f"{user_id}@example.edu"
    token = tokens.mint(user_id, name=name, role=role, email=email, ttl_seconds=DEMO_TOKEN_TTL)
    return {"id": user_id, "name": name, "role": role, "enrollment": enrollment, "token": token}


def demo_listing(tokens: TokenService) -> dict[str, Any]:
    """The demo course and its users, each with a fresh token."""
    return {
        "course": {"id": DEMO_COURSE_ID, "code": DEMO_COURSE_CODE, "title": DEMO_COURSE_TITLE},
        "teacher": _user(tokens, TEACHER[0], TEACHER[1], "teacher", None),
        "students": [_user(tokens, uid, name, "student", status) for uid, name, status in STUDENTS],
    }


async def seed_demo(service: AttendanceService) -> None:
    teacher = Identity(user_id=TEACHER[0], name=TEACHER[1], email=TEACHER[2], role="teacher")
    await service.remember_user(teacher)
    with contextlib.suppress(Conflict):  # already there: keep it
        await service.create_course(
            teacher, course_id=DEMO_COURSE_ID, code=DEMO_COURSE_CODE, title=DEMO_COURSE_TITLE
        )
    for user_id, name, status in STUDENTS:
        email = f"{user_id}@example.edu"
        await service.put_enrollment(teacher, DEMO_COURSE_ID, user_id, status=status, name=name, email=email)
