"""What the service returns: typed, JSON-ready views shared by HTTP and Socket.IO."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ActiveSession",
    "ActiveSessions",
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
    role: str


class RecordView(_View):
    user_id: str
    name: str
    status: str
    marked_at: str | None
    marked_by: str | None
    remarks: str | None


class SessionView(_View):
    id: str
    course_id: str
    teacher_id: str
    teacher_name: str
    topic: str | None
    status: str
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
    my_role: str = Field(description="The caller's relation: teacher, admin or student")


class EnrollmentView(_View):
    course_id: str
    user_id: str
    name: str
    email: str | None
    status: str
    updated_at: str


class ActiveSession(_View):
    sessionId: str  # noqa: N815 - the seed's field names
    teacherId: str  # noqa: N815
    studentCount: int  # noqa: N815
    startedAt: str  # noqa: N815
    topic: str | None
    totalStudents: int  # noqa: N815


class ActiveSessions(_View):
    course_id: str
    activeSessions: list[ActiveSession]  # noqa: N815
