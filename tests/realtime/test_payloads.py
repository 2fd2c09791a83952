"""Client payload validation and the shapes the server sends (``payloads``)."""

from __future__ import annotations

import pytest

from attendance_live.payloads import (
    ActiveSessions,
    PayloadError,
    active_sessions_data,
    error_data,
    require_id,
)
from attendance_live.service.views import ActiveSessionsView, ActiveSessionView


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ((), "needs a payload"),
        ((None,), "not null"),
        (([],), "not an array"),
        ((b"x",), "binary data"),
        (({"course_id": 1},), "(a number)"),
        (({},), "(missing)"),
        (({"course_id": "x" * 129},), "longer than 128"),
    ],
)
def test_payload_messages(args: tuple[object, ...], says: str) -> None:
    with pytest.raises(PayloadError, match=says.replace("(", r"\(").replace(")", r"\)")):
        require_id(args, "subscribeToCourse", "course_id")


def test_active_sessions_data_has_the_seeds_shape() -> None:
    view = ActiveSessionsView(
        course_id="cs101",
        sessions=[
            ActiveSessionView(
                session_id="s1",
                teacher_id="t1",
                student_count=3,
                started_at="2024-01-15T10:30:00.000Z",
                topic="Recursion",
                total_students=5,
            )
        ],
    )
    data = active_sessions_data(view)
    assert data == {
        "course_id": "cs101",
        "activeSessions": [
            {
                "sessionId": "s1",
                "teacherId": "t1",
                "studentCount": 3,
                "startedAt": "2024-01-15T10:30:00.000Z",
                "topic": "Recursion",
                "totalStudents": 5,
            }
        ],
    }
    assert ActiveSessions.model_validate(data).model_dump() == data  # the documented HTTP body


def test_error_data_echoes_only_short_string_ids() -> None:
    args = ({"course_id": "cs101", "session_id": "x" * 129},)
    assert error_data("subscribeToCourse", "forbidden", "no", args) == {
        "message": "no",
        "code": "forbidden",
        "event": "subscribeToCourse",
        "course_id": "cs101",
    }
    assert error_data("checkActiveSessions", "invalid_payload", "bad", ([1],)) == {
        "message": "bad",
        "code": "invalid_payload",
        "event": "checkActiveSessions",
    }
