"""What the reports return: a course's report, a student's history, a session's attendance and CSV.

Read-only views over ended sessions, built by ``service.reports`` (``CourseReports``) and served by
``api/reports.py``; the course report's rate is (present + late) / (sessions − excused).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from attendance_live.vocabulary import RecordStatus

__all__ = ["CourseReport", "SessionAttendance", "SessionCsv", "StudentAttendance", "StudentHistory"]


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class StudentAttendance(_View):
    user_id: str
    name: str
    present: int
    late: int
    absent: int
    excused: int
    sessions: int
    attendance_rate: float | None


class CourseReport(_View):
    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)

    course_id: str
    sessions: int = Field(description="The course's ended sessions in the range")
    from_: str | None = Field(alias="from", description="The first day included (YYYY-MM-DD), or null")
    to: str | None = Field(description="The last day included (YYYY-MM-DD), or null")
    students: list[StudentAttendance]


class SessionAttendance(_View):
    session_id: str
    topic: str | None
    started_at: str
    status: RecordStatus


class StudentHistory(_View):
    model_config = ConfigDict(frozen=True, populate_by_name=True, serialize_by_alias=True)

    course_id: str
    user_id: str
    name: str
    from_: str | None = Field(alias="from")
    to: str | None
    sessions: list[SessionAttendance] = Field(
        description="The student's record in each ended session, oldest first"
    )


@dataclass(frozen=True, slots=True)
class SessionCsv:
    course_id: str
    session_id: str
    started_at: datetime
    body: str

    @property
    def filename(self) -> str:
        return f"attendance-{self.course_id}-{self.started_at.date().isoformat()}-{self.session_id[:8]}.csv"
