"""What the service returns: typed, JSON-ready views shared by HTTP and Socket.IO.

The HTTP API returns most of them as they are; ``payloads`` builds
every Socket.IO payload from them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from attendance_live.vocabulary import (
    ChangeMethod,
    CheckInMode,
    EnrollmentStatus,
    JoinApproval,
    RecordStatus,
    Role,
    SessionStatus,
)

__all__ = [
    "ActiveSessionView",
    "ActiveSessionsView",
    "CheckInCodeView",
    "CourseView",
    "EnrollmentView",
    "ImportResult",
    "ImportRowError",
    "InvitationView",
    "JoinCodeView",
    "JoinView",
    "ManagerView",
    "RecordAudit",
    "RecordView",
    "RecordsPage",
    "SessionView",
    "Statistics",
    "UserView",
]


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class Statistics(_View):
    present: int = Field(description="Students present, counting those who came late")
    late: int = Field(description="Of those present, how many came late")
    absent: int
    excused: int
    total: int = Field(description="Records in the session's roster: present + absent + excused")
    attendance_rate: float = Field(description="present / total, from 0 to 1 (0 when total is 0)")

    @classmethod
    def from_counts(cls, counts: Mapping[str, int]) -> Statistics:
        """From the number of records in each status."""
        return cls.of(
            counts.get("present", 0), counts.get("late", 0), counts.get("absent", 0), counts.get("excused", 0)
        )

    @classmethod
    def of(cls, present: int, late: int, absent: int, excused: int) -> Statistics:
        present_all = present + late
        total = present_all + absent + excused
        rate = round(present_all / total, 4) if total else 0.0
        return cls(
            present=present_all,
            late=late,
            absent=absent,
            excused=excused,
            total=total,
            attendance_rate=rate,
        )


class UserView(_View):
    id: str
    name: str
    email: str | None
    role: Role


class RecordAudit(_View):
    """The last change of a record, and whether its check-in shared an address or a device."""

    how: ChangeMethod = Field(description="check_in, teacher_mark or auto")
    by: str = Field(description="The user id of whoever made the change")
    at: str
    address: str | None = Field(description="The client address the change came from")
    device_id: str | None = Field(description="The device id the check-in sent, if any")
    same_address_as: str | None = Field(
        description="Flag: another student had already checked in from this address (their user id)"
    )
    same_device_as: str | None = Field(
        description="Flag: another student had already checked in from this device (their user id)"
    )


class RecordView(_View):
    user_id: str
    name: str
    status: RecordStatus
    marked_at: str | None
    marked_by: str | None
    remarks: str | None
    audit: RecordAudit | None = Field(
        default=None, description="For the course's teacher and admins: the last change (null otherwise)"
    )
    code_attempts_blocked_at: str | None = Field(
        default=None,
        description=(
            "Flag: when the student was last stopped for too many wrong check-in codes in this session "
            "(CHECK_IN_CODE_ATTEMPTS); null when never"
        ),
    )


class SessionView(_View):
    id: str
    course_id: str
    teacher_id: str
    teacher_name: str
    topic: str | None
    status: SessionStatus
    late_after_minutes: int
    max_duration_minutes: int
    started_at: str
    started_by: str
    expires_at: str
    ended_at: str | None
    ended_by: str | None
    check_in_mode: CheckInMode
    code_period_seconds: int
    allowed_networks: list[str] | None
    statistics: Statistics
    final_statistics: Statistics | None
    records: list[RecordView]


class CheckInCodeView(_View):
    """The check-in code in force (``GET /api/sessions/{id}/check-in-code``, ``checkInCode``)."""

    session_id: str
    code: str
    period_seconds: int
    expires_at: str = Field(description="When this code is replaced by the next")
    check_in_url: str = Field(
        description="The dashboard's check-in page with this code, relative to the server's origin"
    )


class CourseView(_View):
    id: str
    code: str
    title: str
    teacher_id: str
    teacher_name: str
    created_at: str
    my_role: Role = Field(
        description="The caller's relation: teacher (its teacher or a co-manager), admin or student"
    )
    manager_role: Literal["owner", "teacher", "ta"] | None = Field(
        default=None,
        description="How the caller manages the course: owner (its teacher), teacher (a co-teacher), "
        "ta (a teaching assistant); null when the caller is no teacher of it",
    )
    archived_at: str | None = Field(
        default=None, description="When the course was archived (null: active); students never see it then"
    )


class ManagerView(_View):
    course_id: str
    user_id: str
    name: str
    email: str | None
    role: Literal["owner", "teacher", "ta"] = Field(
        description="owner (the course's teacher), teacher (a co-teacher) or ta (a teaching assistant)"
    )
    added_at: str = Field(description="When they became a teacher of the course (the owner: its creation)")


class EnrollmentView(_View):
    course_id: str
    user_id: str
    name: str
    email: str | None
    status: EnrollmentStatus
    updated_at: str


class InvitationView(_View):
    """A student imported by email who has not signed in yet (linked at the first sign-in)."""

    course_id: str
    email: str
    name: str | None
    status: EnrollmentStatus
    updated_at: str


class JoinCodeView(_View):
    """A course's join code in force."""

    course_id: str
    code: str = Field(description="10 characters without look-alikes (no 0, O, 1, I, L)")
    url: str = Field(description="The dashboard's join page for the code, relative to the server's origin")
    approval: JoinApproval = Field(description="manual: requests wait for a manager; auto: approved at once")
    expires_at: str | None = Field(description="When the code stops working (null: until revoked)")


class JoinView(_View):
    """The caller's enrollment after ``POST /api/join``."""

    course_id: str
    course_code: str
    course_title: str
    user_id: str
    status: EnrollmentStatus = Field(description="pending (a manager decides) or approved")


class ImportRowError(_View):
    line: int = Field(
        description="CSV: the line in the file (the header is line 1); JSON: the item's position from 1"
    )
    message: str


class ImportResult(_View):
    """What a roster import does (or did): counts, and every bad row (then nothing is written)."""

    added: int = Field(description="Enrollments (or email invitations) that did not exist")
    changed: int = Field(description="Existing ones whose status, name or email changes")
    unchanged: int
    errors: list[ImportRowError]
    dry_run: bool = Field(default=False, description="True: nothing was written")
    created: int = Field(default=0, description="The same as `added` (the bulk PUT's older name)")
    updated: int = Field(default=0, description="`changed` + `unchanged` (the bulk PUT's older name)")


class ActiveSessionView(_View):
    session_id: str
    teacher_id: str
    student_count: int = Field(description="Records present or late")
    started_at: str
    topic: str | None
    total_students: int = Field(description="Records in the session's roster")


class ActiveSessionsView(_View):
    """A course's active sessions, oldest first (``payloads`` gives it the seed's shape)."""

    course_id: str
    sessions: list[ActiveSessionView]


class RecordsPage(_View):
    """One page of a session's roster (``GET /api/sessions/{id}/records``)."""

    session_id: str
    total: int = Field(description="Records the caller may see: the roster (a student: its own, 0 or 1)")
    offset: int
    limit: int
    records: list[RecordView] = Field(description="Ordered by name, then user id")
