"""The words the whole system shares: statuses, roles, the id pattern, room names.

Each status set is one ``Literal``; the tables' CHECK constraints
(``db/models.py``, via ``typing.get_args``), the request schemas, the service's
signatures and its views all use it, so a status cannot be added in one place
and forgotten in another. Every id validator (HTTP paths and bodies, the
service, the CLI) uses :data:`ID_PATTERN`. Socket.IO room names are built here
and nowhere else.
"""

from __future__ import annotations

import re
from typing import Final, Literal, get_args

__all__ = [
    "CHANGE_METHODS",
    "CHECK_IN_MODES",
    "CHECK_IN_REFUSALS",
    "ENROLLMENT_STATUSES",
    "ID_MAX_CHARS",
    "ID_PATTERN",
    "ID_RE",
    "JOIN_APPROVALS",
    "MANAGER_ROLES",
    "PRESENT_STATUSES",
    "RECORD_STATUSES",
    "ROLES",
    "SESSION_STATUSES",
    "SYSTEM",
    "ChangeMethod",
    "CheckInMode",
    "CheckInRefusal",
    "EnrollmentStatus",
    "JoinApproval",
    "ManagerRole",
    "RecordStatus",
    "Role",
    "SessionStatus",
    "course_of_managers_room",
    "course_of_room",
    "course_room",
    "managers_room",
    "session_of_room",
    "session_room",
    "user_room",
]

SessionStatus = Literal["active", "ended"]
RecordStatus = Literal["present", "late", "excused", "absent"]
EnrollmentStatus = Literal["pending", "approved", "rejected"]
# How a session admits check-ins: anyone approved (open), or only with the current rotating code.
CheckInMode = Literal["open", "code"]
# How a record changed (the audit trail): the student's own check-in, a teacher's mark, the system.
ChangeMethod = Literal["check_in", "teacher_mark", "auto"]
# Why a check-in was refused (403 ``reason``).
CheckInRefusal = Literal["code_required", "code_invalid", "network_not_allowed"]
# How a join code admits students: a pending request a manager decides on, or approved at once.
JoinApproval = Literal["manual", "auto"]
# A token's role, and a caller's relation to a course as the API reports it (``my_role``).
Role = Literal["student", "teacher", "admin"]
# A co-manager's role in a course (besides its owner, ``courses.teacher_id``): a co-teacher or a TA.
ManagerRole = Literal["teacher", "ta"]

SESSION_STATUSES: Final[tuple[SessionStatus, ...]] = get_args(SessionStatus)
RECORD_STATUSES: Final[tuple[RecordStatus, ...]] = get_args(RecordStatus)
ENROLLMENT_STATUSES: Final[tuple[EnrollmentStatus, ...]] = get_args(EnrollmentStatus)
ROLES: Final[tuple[Role, ...]] = get_args(Role)
MANAGER_ROLES: Final[tuple[ManagerRole, ...]] = get_args(ManagerRole)
CHECK_IN_MODES: Final[tuple[CheckInMode, ...]] = get_args(CheckInMode)
CHANGE_METHODS: Final[tuple[ChangeMethod, ...]] = get_args(ChangeMethod)
CHECK_IN_REFUSALS: Final[tuple[CheckInRefusal, ...]] = get_args(CheckInRefusal)
JOIN_APPROVALS: Final[tuple[JoinApproval, ...]] = get_args(JoinApproval)
# The statuses a session's studentCount and its statistics' ``present`` count.
PRESENT_STATUSES: Final[tuple[RecordStatus, ...]] = ("present", "late")

# Who ended a session that outlived its maximum duration.
SYSTEM: Final = "system"

ID_MAX_CHARS: Final = 128
# Course, session and user ids: 1 to 128 letters, digits or ._:@- starting with a letter or digit.
ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"
ID_RE: Final = re.compile(ID_PATTERN)

_COURSE_ROOM: Final = "course:"


def course_room(course_id: str) -> str:
    """The room of a course's subscribers (course events and snapshots)."""
    return _COURSE_ROOM + course_id


def course_of_room(room: object) -> str | None:
    """The course id of a course room, None for any other room."""
    if isinstance(room, str) and room.startswith(_COURSE_ROOM):
        return room[len(_COURSE_ROOM) :]
    return None


_MANAGERS_ROOM: Final = "managers:"


def managers_room(course_id: str) -> str:
    """The course's subscribers who manage it (its teacher, admins): join requests."""
    return _MANAGERS_ROOM + course_id


def course_of_managers_room(room: object) -> str | None:
    """The course id of a course's managers room, None for any other room."""
    if isinstance(room, str) and room.startswith(_MANAGERS_ROOM):
        return room[len(_MANAGERS_ROOM) :]
    return None


_SESSION_ROOM: Final = "session:"


def session_room(session_id: str) -> str:
    """The room of a session's roster followers (its teacher and admins)."""
    return _SESSION_ROOM + session_id


def session_of_room(room: object) -> str | None:
    """The session id of a session's roster room, None for any other room."""
    if isinstance(room, str) and room.startswith(_SESSION_ROOM):
        return room[len(_SESSION_ROOM) :]
    return None


def user_room(user_id: str) -> str:
    """Every socket of one user, on every node (for changes to that user's own records)."""
    return f"user:{user_id}"
