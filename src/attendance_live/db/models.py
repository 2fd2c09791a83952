"""The tables. Invalid states are made unrepresentable where the database can say so.

* one enrollment per (course, user) and one record per (session, user): primary keys;
* status columns are checked against their allowed values (the ``Literal`` sets
  of ``attendance_live.vocabulary``);
* every reference is a foreign key (SQLite enforces them: ``PRAGMA foreign_keys=ON``).

``record_changes`` is the audit trail of attendance records: one row per
change, never updated.

``join_codes`` holds every join code a course had (at most one not revoked);
``roster_invites`` holds imported students known only by email, until they
sign in with a token whose email matches (``service.roster``).

``outbox`` is the stream of domain events, written in the transaction of the
change each describes; ``recovery_sessions`` holds what a disconnected
Socket.IO client needs to recover (its ``pid``'s user and course
subscriptions), and ``nodes`` the heartbeats that tell whether the node of a
still-connected pid is alive. See docs/architecture.md, "Delivery".
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.expression import false

from attendance_live.vocabulary import (
    CHANGE_METHODS,
    CHECK_IN_MODES,
    ENROLLMENT_STATUSES,
    ID_MAX_CHARS,
    JOIN_APPROVALS,
    MANAGER_ROLES,
    RECORD_STATUSES,
    ROLES,
    SESSION_STATUSES,
    ChangeMethod,
    CheckInMode,
    EnrollmentStatus,
    JoinApproval,
    ManagerRole,
    RecordStatus,
    Role,
    SessionStatus,
)

__all__ = [
    "ID_LENGTH",
    "NAMING",
    "AttendanceRecord",
    "AttendanceSession",
    "Base",
    "Course",
    "CourseManager",
    "Enrollment",
    "JoinCode",
    "Node",
    "OutboxEvent",
    "RecordChange",
    "RecoverySession",
    "RosterInvite",
    "SigningKey",
    "UTCDateTime",
    "User",
]

ID_LENGTH = ID_MAX_CHARS

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC (portable across SQLite and PostgreSQL), read back aware."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # SQLite aggregates may hand back text
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    role: Mapped[Role] = mapped_column(String(16), default="student")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (CheckConstraint(_in("role", ROLES), name="role"),)


class Course(Base):
    __tablename__ = "courses"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    code: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    teacher_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Archived: history and reports kept, no new session, hidden from students and the default list.
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class CourseManager(Base):
    """A co-manager of a course besides its teacher (``courses.teacher_id``, the owner)."""

    __tablename__ = "course_managers"

    course_id: Mapped[str] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    role: Mapped[ManagerRole] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (CheckConstraint(_in("role", MANAGER_ROLES), name="role"),)


class Enrollment(Base):
    __tablename__ = "enrollments"

    course_id: Mapped[str] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    status: Mapped[EnrollmentStatus] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint(_in("status", ENROLLMENT_STATUSES), name="status"),
        # A course's approved students counted from the index alone (a pending roster's size).
        Index("ix_enrollments_course_status", "course_id", "status"),
    )


class JoinCode(Base):
    """A course's join code; revoked (never deleted) when replaced, so a refusal can say why."""

    __tablename__ = "join_codes"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    course_id: Mapped[str] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    approval: Mapped[JoinApproval] = mapped_column(String(8))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(ID_LENGTH))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (CheckConstraint(_in("approval", JOIN_APPROVALS), name="approval"),)


class RosterInvite(Base):
    """An imported student known only by email (lower case), linked to a user at its first sign-in."""

    __tablename__ = "roster_invites"

    course_id: Mapped[str] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), primary_key=True, index=True)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[EnrollmentStatus] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (CheckConstraint(_in("status", ENROLLMENT_STATUSES), name="status"),)


class AttendanceSession(Base):
    __tablename__ = "attendance_sessions"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    course_id: Mapped[str] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    topic: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[SessionStatus] = mapped_column(String(16))
    late_after_minutes: Mapped[int] = mapped_column(Integer)
    max_duration_minutes: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_by_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    started_by: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ended_by_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    ended_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # Final statistics, frozen when the session ends (null while active).
    final_present: Mapped[int | None] = mapped_column(Integer, nullable=True)
    final_late: Mapped[int | None] = mapped_column(Integer, nullable=True)
    final_absent: Mapped[int | None] = mapped_column(Integer, nullable=True)
    final_excused: Mapped[int | None] = mapped_column(Integer, nullable=True)
    final_total: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Check-in integrity (service.codes, service.checkin): the mode, the code's period, the
    # per-session secret the codes are derived from, and the allowed networks (JSON list of CIDRs).
    check_in_mode: Mapped[CheckInMode] = mapped_column(String(8), default="open")
    code_period_seconds: Mapped[int] = mapped_column(Integer, default=15)
    code_secret: Mapped[str] = mapped_column(String(64))
    allowed_networks: Mapped[str | None] = mapped_column(Text, nullable=True)
    # True from the start's commit until the roster's absent rows are written (service.roster_fill):
    # meanwhile an approved enrollment without a record reads as absent in this session.
    roster_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    __table_args__ = (
        CheckConstraint(_in("status", SESSION_STATUSES), name="status"),
        CheckConstraint(_in("check_in_mode", CHECK_IN_MODES), name="check_in_mode"),
        CheckConstraint("code_period_seconds BETWEEN 5 AND 300", name="code_period_range"),
        CheckConstraint("late_after_minutes >= 0", name="late_after_nonnegative"),
        CheckConstraint("max_duration_minutes > 0", name="max_duration_positive"),
        CheckConstraint(
            "(status = 'active' AND ended_at IS NULL) OR (status = 'ended' AND ended_at IS NOT NULL)",
            name="ended_consistent",
        ),
        Index("ix_attendance_sessions_course_status", "course_id", "status"),
        Index("ix_attendance_sessions_status_expires", "status", "expires_at"),
    )


class AttendanceRecord(Base):
    __tablename__ = "attendance_records"

    session_id: Mapped[str] = mapped_column(
        ForeignKey("attendance_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    status: Mapped[RecordStatus] = mapped_column(String(16))
    marked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    marked_by: Mapped[str | None] = mapped_column(String(ID_LENGTH), nullable=True)
    # The student's own check-in, kept when a teacher's mark later moves marked_at.
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    remarks: Mapped[str | None] = mapped_column(Text, nullable=True)
    # When the student was last stopped for too many wrong check-in codes (a flag for the teacher).
    code_attempts_blocked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        CheckConstraint(_in("status", RECORD_STATUSES), name="status"),
        Index("ix_attendance_records_session_status", "session_id", "status"),
    )


class RecordChange(Base):
    """One change of an attendance record: who, when, how, from which address (never updated)."""

    __tablename__ = "record_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("attendance_sessions.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    status: Mapped[RecordStatus] = mapped_column(String(16))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    changed_by: Mapped[str] = mapped_column(String(ID_LENGTH))
    method: Mapped[ChangeMethod] = mapped_column(String(16))
    address: Mapped[str | None] = mapped_column(String(45), nullable=True)
    device_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), nullable=True)
    # A check-in from an address or device that had already checked in another
    # student of the session: that student's id (flagged, not refused).
    same_address_as: Mapped[str | None] = mapped_column(String(ID_LENGTH), nullable=True)
    same_device_as: Mapped[str | None] = mapped_column(String(ID_LENGTH), nullable=True)

    __table_args__ = (
        CheckConstraint(_in("status", RECORD_STATUSES), name="status"),
        CheckConstraint(_in("method", CHANGE_METHODS), name="method"),
        Index("ix_record_changes_session_user", "session_id", "user_id"),
        Index("ix_record_changes_session_address", "session_id", "address"),
        Index("ix_record_changes_session_device", "session_id", "device_id"),
    )


class OutboxEvent(Base):
    """One domain event, in the stream of every event of every course.

    ``id`` is the event's position in that stream: allocated as the previous
    maximum plus one while holding a lock that lasts until the commit (SQLite's
    write lock; on PostgreSQL a transaction-level advisory lock), so positions
    are gap-free and in commit order: once ``n`` is visible, so is every
    position below it. ``course_offset`` counts the course's own events the
    same way. Rows are never updated; they are pruned after a retention time.
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    course_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    course_offset: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[str] = mapped_column(Text)  # JSON
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ux_outbox_course_offset", "course_id", "course_offset", unique=True),
        Index("ix_outbox_created_at", "created_at"),
    )


class RecoverySession(Base):
    """A Socket.IO client's recoverable state, by the private ``pid`` it was given at CONNECT."""

    __tablename__ = "recovery_sessions"

    pid: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    # JSON object: course id -> stream position (outbox id) at which the socket joined its room.
    courses: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Null while connected (or when its node died before it could say).
    disconnected_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The node (``nodes.id``) of the connection holding the pid: while it is connected, the pid
    # can be claimed only once that node has stopped beating (it died with the connection).
    node: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (Index("ix_recovery_sessions_updated_at", "updated_at"),)


class SigningKey(Base):
    """A key the server signs its own session tokens with (``auth.session_keys``).

    Kept here so that every node signs and verifies with the same keys. The
    newest key without ``retires_at`` signs; a rotated-out key gets
    ``retires_at`` (its last token's latest possible expiry) and verifies until
    then. ``public_jwk`` is what ``/.well-known/jwks.json`` serves.
    """

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(16))
    private_pem: Mapped[str] = mapped_column(Text)  # PKCS#8; never leaves the server
    public_jwk: Mapped[str] = mapped_column(Text)  # JSON
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    retires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Node(Base):
    """A running server process, with its last heartbeat (``realtime.recovery``)."""

    __tablename__ = "nodes"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
