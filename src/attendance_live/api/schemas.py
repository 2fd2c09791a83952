"""Request bodies, validated at the edge, strictly typed. Unknown fields are refused."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from attendance_live.networks import MAX_NETWORKS
from attendance_live.service.roster import MAX_BULK_ITEMS
from attendance_live.vocabulary import (
    ID_MAX_CHARS,
    ID_PATTERN,
    CheckInMode,
    EnrollmentStatus,
    JoinApproval,
    ManagerRole,
    RecordStatus,
)
from attendance_live.vocabulary import CheckInRefusal as RefusalReason

__all__ = [
    "BulkEnrollment",
    "CheckInBody",
    "CheckInRefusal",
    "CourseCreate",
    "CourseUpdate",
    "Detail",
    "EnrollmentBatch",
    "EnrollmentItem",
    "EnrollmentPut",
    "JoinBody",
    "JoinCodeCreate",
    "Limited",
    "ManagerPut",
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


class CourseUpdate(_Body):
    code: str | None = Field(default=None, min_length=1, max_length=64)
    title: str | None = Field(default=None, min_length=1, max_length=200)


class JoinCodeCreate(_Body):
    approval: JoinApproval = Field(
        default="manual", description="manual: each request waits for a manager; auto: approved at once"
    )
    # Not strict: a JSON string is the only way to send a time.
    expires_at: AwareDatetime | None = Field(
        default=None,
        strict=False,
        description="ISO 8601 with a zone, e.g. 2026-09-30T23:59:00Z; omit: until revoked",
    )


class JoinBody(_Body):
    code: str = Field(
        min_length=1, max_length=64, description="The join code (case, spaces and dashes ignored)"
    )


class EnrollmentPut(_Body):
    status: EnrollmentStatus
    name: str | None = Field(default=None, min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")


class ManagerPut(_Body):
    role: ManagerRole = Field(description="teacher (a co-teacher) or ta (a teaching assistant)")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")


class EnrollmentItem(EnrollmentPut):
    user_id: str = Field(pattern=ID_PATTERN, max_length=ID_MAX_CHARS)


class BulkEnrollment(_Body):
    """One row of the bulk ``PUT``: checked as a CSV row is (errors name its position)."""

    user_id: str | None = Field(default=None, max_length=1000)
    email: str | None = Field(default=None, max_length=1000)
    name: str | None = Field(default=None, max_length=1000)
    status: str | None = Field(
        default=None, max_length=100, description="approved (default), pending, rejected, or removed"
    )


class EnrollmentBatch(_Body):
    enrollments: list[BulkEnrollment] = Field(min_length=1, max_length=MAX_BULK_ITEMS)


class SessionStart(_Body):
    topic: str | None = Field(default=None, max_length=200)
    max_duration_minutes: int | None = Field(default=None, ge=1, le=1440)
    late_after_minutes: int | None = Field(default=None, ge=0, le=1440)
    check_in_mode: CheckInMode = Field(
        default="open", description="`code`: a check-in needs the current rotating code"
    )
    code_period_seconds: int = Field(default=15, ge=5, le=300, description="How often the code changes")
    allowed_networks: list[str] | None = Field(
        default=None,
        max_length=MAX_NETWORKS,
        description="CIDR networks (IPv4 or IPv6) check-ins must come from; null: anywhere",
        examples=[["10.20.0.0/16", "2001:db8:20::/48"]],
    )


class CheckInBody(_Body):
    code: str | None = Field(
        default=None,
        max_length=32,
        description="The code shown in the room (required in `code` mode; case, spaces and dashes ignored)",
        examples=["7HKX3M"],
    )
    device_id: str | None = Field(
        default=None,
        pattern=ID_PATTERN,
        max_length=ID_MAX_CHARS,
        description=(
            "An id the client keeps for this device (the dashboard: a random id in localStorage); "
            "a check-in from a device that already checked in another student is flagged"
        ),
    )


class RecordPut(_Body):
    status: RecordStatus
    remarks: str | None = Field(default=None, max_length=1000)


class Detail(BaseModel):
    detail: str


class Limited(Detail):
    reason: str = Field(
        description="`too_many_attempts` (wrong check-in codes) or `rate_limited` (requests); "
        "the `Retry-After` header says in how many seconds to try again"
    )


class CheckInRefusal(Detail):
    reason: RefusalReason | None = Field(
        default=None, description="Why the session's rules refused the check-in (absent for other 403s)"
    )
