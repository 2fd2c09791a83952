"""The term's tables (issue 21): webhooks and their deliveries, and the cursors of the term's readers.

* ``webhook_endpoints``: where events go (a URL, its signing secret, the event types, one course or
  every course);
* ``webhook_deliveries``: one message to one endpoint, from its creation to ``delivered`` or
  ``failed``, with its attempts and last error (what the administrator lists and resends);
* ``calendar_tokens``: the secret of each user's calendar feed URL (its SHA-256 only);
* ``term_cursors``: how far a reader of the outbox (the webhook enqueuer) has got; moved by a
  conditional update in the transaction that acts on the rows, so each row is handled once.

Registered on ``models.Base`` (``models`` imports this module), so migrations and the metadata
check see them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from attendance_live.db.models import ID_LENGTH, Base, UTCDateTime

__all__ = ["DELIVERY_STATUSES", "CalendarToken", "TermCursor", "WebhookDelivery", "WebhookEndpoint"]

DELIVERY_STATUSES = ("pending", "delivered", "failed")


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


class CalendarToken(Base):
    """A user's calendar feed token, kept as its SHA-256 (the URL is shown once, at its creation)."""

    __tablename__ = "calendar_tokens"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
