"""Request bodies, validated at the edge, strictly typed. Unknown fields are refused."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from attendance_live.vocabulary import ID_MAX_CHARS, ID_PATTERN, EnrollmentStatus, RecordStatus

__all__ = [
    "CourseCreate",
    "Detail",
    "EnrollmentBatch",
    "EnrollmentBatchResult",
    "EnrollmentItem",
    "EnrollmentPut",
    "RecordPut",
    "SessionStart",
]


class _Body(BaseModel):
    # strict: "5" or true for a number is a 422, not a silent coercion
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)


class CourseCreate(_Body):
    id: str | None = Field(default=None, pattern=ID_PATTERN, description="Omit to have one generated")
    code: str = Field(min_length=1, max_length=64, examples=["CS101"])
    title: str = Field(min_length=1, max_length=200, examples=["Introduction to Computing"])


class EnrollmentPut(_Body):
    status: EnrollmentStatus
    name: str | None = Field(default=None, min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")


class EnrollmentItem(EnrollmentPut):
    user_id: str = Field(pattern=ID_PATTERN, max_length=ID_MAX_CHARS)


class EnrollmentBatch(_Body):
    enrollments: list[EnrollmentItem] = Field(min_length=1, max_length=5000)


class EnrollmentBatchResult(BaseModel):
    created: int = Field(description="Enrollments that did not exist before")
    updated: int = Field(description="Enrollments that existed (their status and names were set)")


class SessionStart(_Body):
    topic: str | None = Field(default=None, max_length=200)
    max_duration_minutes: int | None = Field(default=None, ge=1, le=1440)
    late_after_minutes: int | None = Field(default=None, ge=0, le=1440)


class RecordPut(_Body):
    status: RecordStatus
    remarks: str | None = Field(default=None, max_length=1000)


class Detail(BaseModel):
    detail: str
