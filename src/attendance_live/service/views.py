"""What the service returns: typed, JSON-ready views shared by HTTP and Socket.IO.

The HTTP API returns most of them as they are; ``realtime.payloads`` builds
every Socket.IO payload from them.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from attendance_live.vocabulary import EnrollmentStatus, RecordStatus, Role, SessionStatus

__all__ = [
    "ActiveSessionView",
    "ActiveSessionsView",
    "CourseView",
    "EnrollmentView",
    "RecordView",
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


class RecordView(_View):
    user_id: str
    name: str
    status: RecordStatus
    marked_at: str | None
    marked_by: str | None
    remarks: str | None


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
    statistics: Statistics
    final_statistics: Statistics | None
    records: list[RecordView]


class CourseView(_View):
    id: str
    code: str
    title: str
    teacher_id: str
    teacher_name: str
    created_at: str
    my_role: Role = Field(description="The caller's relation: teacher, admin or student")


class EnrollmentView(_View):
    course_id: str
    user_id: str
    name: str
    email: str | None
    status: EnrollmentStatus
    updated_at: str


class ActiveSessionView(_View):
    session_id: str
    teacher_id: str
    student_count: int = Field(description="Records present or late")
    started_at: str
    topic: str | None
    total_students: int = Field(description="Records in the session's roster")


class ActiveSessionsView(_View):
    """A course's active sessions, oldest first (``realtime.payloads`` gives it the seed's shape)."""

    course_id: str
    sessions: list[ActiveSessionView]
