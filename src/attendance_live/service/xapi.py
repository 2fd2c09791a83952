"""xAPI 1.0.3 statements for attendance records: one ``attended`` statement per record.

The shape (https://github.com/adlnet/xAPI-Spec/blob/master/xAPI-Data.md):
the actor is the student, named by its account on this server (``homePage``
the server's base URL, ``name`` its user id); the object is the session, an
Activity whose IRI is the session's API URL; ``result.completion`` says whether
the student attended (on time or late) and an extension keeps the exact status;
the context names the course (``parent`` and ``grouping``) and its teacher
(``instructor``); the timestamp is the student's own check-in, or the
session's start. Each statement's id is a UUID v5 of the session and the
student, so exporting again gives the same ids and a learning record store
keeps one copy.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.engine import Connection

from attendance_live.db.models import AttendanceRecord, AttendanceSession, User
from attendance_live.timeutil import iso_z
from attendance_live.vocabulary import PRESENT_STATUSES

__all__ = ["XapiCourse", "statements"]

_VERSION = "1.0.3"
_ATTENDED = {"id": "http://adlnet.gov/expapi/verbs/attended", "display": {"en-US": "attended"}}
_MEETING = "http://adlnet.gov/expapi/activities/meeting"
_COURSE = "http://adlnet.gov/expapi/activities/course"


@dataclass(frozen=True, slots=True)
class XapiCourse:
    id: str
    code: str
    title: str
    teacher_id: str
    teacher_name: str


def statements(
    conn: Connection, course: XapiCourse, where: Sequence[ColumnElement[bool]], base_url: str
) -> list[dict[str, Any]]:
    """One statement per record of the sessions ``where`` selects, oldest session first."""
    S, R = AttendanceSession, AttendanceRecord  # noqa: N806
    query = (
        select(S.id, S.topic, S.started_at, R.user_id, User.name, R.status, R.checked_in_at)
        .join(R, R.session_id == S.id)
        .join(User, User.id == R.user_id)
        .where(*where)
        .order_by(S.started_at, S.id, User.name, R.user_id)
    )
    base = base_url.rstrip("/")
    course_activity = {
        "objectType": "Activity",
        "id": f"{base}/api/courses/{course.id}",
        "definition": {
            "name": {"en-US": f"{course.code} {course.title}"},
            "type": _COURSE,
        },
    }
    instructor = {
        "objectType": "Agent",
        "name": course.teacher_name,
        "account": {"homePage": base, "name": course.teacher_id},
    }
    statements: list[dict[str, Any]] = []
    for session_id, topic, started_at, user_id, name, status, checked_in_at in conn.execute(query):
        session_iri = f"{base}/api/sessions/{session_id}"
        title = topic or f"{course.code} attendance session of {iso_z(started_at)}"
        statements.append(
            {
                # The same record always gets the same id: an LRS keeps one copy across exports.
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{session_iri}/records/{user_id}")),
                "actor": {
                    "objectType": "Agent",
                    "name": name,
                    "account": {"homePage": base, "name": user_id},
                },
                "verb": _ATTENDED,
                "object": {
                    "objectType": "Activity",
                    "id": session_iri,
                    "definition": {"name": {"en-US": title}, "type": _MEETING},
                },
                "result": {
                    "completion": status in PRESENT_STATUSES,
                    "extensions": {f"{base}/xapi/extensions/attendance-status": status},
                },
                "context": {
                    "instructor": instructor,
                    "platform": "attendance-live",
                    "contextActivities": {"parent": [course_activity], "grouping": [course_activity]},
                },
                "timestamp": iso_z(checked_in_at or started_at),
                "version": _VERSION,
            }
        )
    return statements
