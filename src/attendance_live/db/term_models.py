"""The term's tables (issue 21): webhooks and their deliveries, and the cursors of the term's readers.

* ``webhook_endpoints``: where events go (a URL, its signing secret, the event types, one course or
  every course);
* ``webhook_deliveries``: one message to one endpoint, from its creation to ``delivered`` or
  ``failed``, with its attempts and last error (what the administrator lists and resends);
* ``timetable_slots`` (a course's recurring slots) and ``planned_sessions`` (each occurrence of a
  slot, and one-off plans): what the scheduler starts; a planned session's id becomes its session's;
* ``absence_rules`` (a course's thresholds), ``absence_states`` (whether a student is past one, so
  it fires once per crossing) and ``absence_alerts`` (what managers see and acknowledge);
* ``calendar_tokens``: the secret of each user's calendar feed URL (its SHA-256 only);
* ``term_cursors``: how far a reader of the outbox (the webhook enqueuer) has got; moved by a
  conditional update in the transaction that acts on the rows, so each row is handled once.

Registered on ``models.Base`` when this module is imported: the migrations' environment imports it,
so migrations and the metadata check see them (``models`` does not, so the two make no cycle).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
    select,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, mapped_column

from attendance_live.db.models import ID_LENGTH, Base, OutboxEvent, UTCDateTime

__all__ = [
    "ABSENCE_RULE_KINDS",
    "DELIVERY_STATUSES",
    "PLANNED_STATUSES",
    "AbsenceAlert",
    "AbsenceRule",
    "AbsenceState",
    "CalendarToken",
    "PlannedSession",
    "TermCursor",
    "TimetableSlot",
    "WebhookDelivery",
    "WebhookEndpoint",
]

DELIVERY_STATUSES = ("pending", "delivered", "failed")
# planned → starting (a node holds its lease) → started; or skipped (a teacher), or missed (not held).
PLANNED_STATUSES = ("planned", "starting", "started", "skipped", "missed")
# absences: at least N absences; rate: attendance rate below X after at least N sessions;
# streak: N absences in a row.
ABSENCE_RULE_KINDS = ("absences", "rate", "streak")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    # The Standard Webhooks secret (whsec_ + base64); needed in clear to sign, never listed.
    secret: Mapped[str] = mapped_column(String(200))
    # Null: every course's events.
    course_id: Mapped[str | None] = mapped_column(
        ForeignKey("courses.id", ondelete="CASCADE"), nullable=True, index=True
    )
    event_types: Mapped[str] = mapped_column(Text)  # JSON list
    description: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_by: Mapped[str] = mapped_column(String(ID_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    # The course the event is about: deliveries of one endpoint and course go out in id order.
    course_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    event_type: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str] = mapped_column(String(64), unique=True)  # the webhook-id header
    payload: Mapped[str] = mapped_column(Text)  # the exact JSON body that is signed
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # A node sending it holds it until then (another node may take it after).
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        CheckConstraint(_in("status", DELIVERY_STATUSES), name="status"),
        Index("ix_webhook_deliveries_line", "endpoint_id", "course_id", "status", "id"),
        Index("ix_webhook_deliveries_status_next", "status", "next_attempt_at"),
    )


class TermCursor(Base):
    """How far one reader of the outbox has got (its last handled position)."""

    __tablename__ = "term_cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))

    @staticmethod
    def behind(conn: Connection, name: str) -> bool:
        """Whether the outbox has rows after cursor ``name`` (False when there is no such cursor):
        a read, so an idle reader never takes the write lock."""
        position = conn.execute(select(TermCursor.position).where(TermCursor.name == name)).scalar()
        if position is None:
            return False
        last = conn.execute(select(func.max(OutboxEvent.id))).scalar()
        return last is not None and int(last) > int(position)


class CalendarToken(Base):
    """A user's calendar feed token, kept as its SHA-256 (the URL is shown once, at its creation)."""

    __tablename__ = "calendar_tokens"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TimetableSlot(Base):
    """A recurring slot: a weekday and a wall-clock start in a time zone, between two dates."""

    __tablename__ = "timetable_slots"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    course_id: Mapped[str] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    weekday: Mapped[int] = mapped_column(Integer)  # 0 = Monday
    start_time: Mapped[str] = mapped_column(String(5))  # HH:MM, wall clock in ``timezone``
    duration_minutes: Mapped[int] = mapped_column(Integer)
    timezone: Mapped[str] = mapped_column(String(64))
    first_date: Mapped[date] = mapped_column(Date)
    last_date: Mapped[date] = mapped_column(Date)
    exception_dates: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of YYYY-MM-DD
    topic: Mapped[str | None] = mapped_column(String(200), nullable=True)
    location: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # The started session's check-in settings (JSON: SessionStart's optional fields).
    settings: Mapped[str] = mapped_column(Text, default="{}")
    created_by: Mapped[str] = mapped_column(String(ID_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
        CheckConstraint("duration_minutes > 0", name="duration_positive"),
        CheckConstraint("first_date <= last_date", name="dates_ordered"),
    )


class PlannedSession(Base):
    """One planned session (an occurrence of a slot, or a one-off); its id is its session's id."""

    __tablename__ = "planned_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    course_id: Mapped[str] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    slot_id: Mapped[str | None] = mapped_column(
        ForeignKey("timetable_slots.id", ondelete="SET NULL"), nullable=True, index=True
    )
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    topic: Mapped[str | None] = mapped_column(String(200), nullable=True)
    location: Mapped[str | None] = mapped_column(String(200), nullable=True)
    settings: Mapped[str] = mapped_column(Text, default="{}")
    status: Mapped[str] = mapped_column(String(16), default="planned")
    # The node starting it holds it until then; another node may take over after.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint(_in("status", PLANNED_STATUSES), name="status"),
        CheckConstraint("starts_at < ends_at", name="times_ordered"),
        Index("ix_planned_sessions_status_starts", "status", "starts_at"),
        Index("ix_planned_sessions_course_starts", "course_id", "starts_at"),
    )


class AbsenceRule(Base):
    """A course's absence threshold (``kind`` says which of ``count``, ``below`` apply)."""

    __tablename__ = "absence_rules"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    course_id: Mapped[str] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    # absences: the number of absences; rate: the fewest sessions before it applies; streak: the run.
    count: Mapped[int] = mapped_column(Integer)
    # rate: the attendance rate (0 to 1) below which it fires.
    below: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint(_in("kind", ABSENCE_RULE_KINDS), name="kind"),
        CheckConstraint("count >= 1", name="count_positive"),
    )


class AbsenceState(Base):
    """Whether a student is past a rule now: an alert fires when this turns true, not while it stays."""

    __tablename__ = "absence_states"

    rule_id: Mapped[str] = mapped_column(ForeignKey("absence_rules.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    crossed: Mapped[bool] = mapped_column(Boolean)


class AbsenceAlert(Base):
    """One crossing of a rule by a student (open until a manager acknowledges it)."""

    __tablename__ = "absence_alerts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    course_id: Mapped[str] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    rule_id: Mapped[str | None] = mapped_column(
        ForeignKey("absence_rules.id", ondelete="SET NULL"), nullable=True
    )
    payload: Mapped[str] = mapped_column(Text)  # JSON: the alert as sent (socket, webhook, list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(ID_LENGTH), nullable=True)

    __table_args__ = (Index("ix_absence_alerts_course_created", "course_id", "created_at"),)
