"""The LMS tables (LTI 1.3, ``attendance_live.lti``): registered platforms and their deployments,
the tool's key, single-use login states, the course contexts launched, the grade passback's cursor
and posts, and who each ``lti-`` user is on its platform.

Registered on ``models.Base`` when this module is imported: the migrations' environment imports it,
so migrations and the metadata check see them (``models`` does not, so the two make no cycle).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from attendance_live.db.models import ID_LENGTH, Base, UTCDateTime

__all__ = [
    "LtiContext",
    "LtiCursor",
    "LtiDeployment",
    "LtiLogin",
    "LtiPlatform",
    "LtiScorePost",
    "LtiToolKey",
    "LtiUser",
]


class LtiPlatform(Base):
    """An LMS registered with ``attendance-live lti register`` (``lti.registry``).

    One issuer may hold several registrations (Canvas Cloud shares its issuer
    between institutions), told apart by ``client_id``.
    """

    __tablename__ = "lti_platforms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    issuer: Mapped[str] = mapped_column(String(255))
    client_id: Mapped[str] = mapped_column(String(255))
    auth_url: Mapped[str] = mapped_column(String(2000))
    token_url: Mapped[str] = mapped_column(String(2000))
    jwks_url: Mapped[str] = mapped_column(String(2000))
    # CSP frame-ancestors for launches from this platform (its origin when null).
    frame_ancestors: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ux_lti_platforms_issuer_client", "issuer", "client_id", unique=True),)


class LtiDeployment(Base):
    """A deployment of the tool on a platform (``deployment_id`` of every launch)."""

    __tablename__ = "lti_deployments"

    platform_id: Mapped[int] = mapped_column(
        ForeignKey("lti_platforms.id", ondelete="CASCADE"), primary_key=True
    )
    deployment_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LtiToolKey(Base):
    """The tool's RSA key (RS256, 1EdTech Security Framework), for client assertions."""

    __tablename__ = "lti_tool_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    private_pem: Mapped[str] = mapped_column(Text)  # PKCS#8; never leaves the server
    public_jwk: Mapped[str] = mapped_column(Text)  # JSON
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LtiLogin(Base):
    """One login initiation: its state and nonce, used once by the launch that follows."""

    __tablename__ = "lti_logins"

    state: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), unique=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("lti_platforms.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class LtiContext(Base):
    """A platform's course context and the course it became; the services' endpoints it named."""

    __tablename__ = "lti_contexts"

    platform_id: Mapped[int] = mapped_column(
        ForeignKey("lti_platforms.id", ondelete="CASCADE"), primary_key=True
    )
    context_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    course_id: Mapped[str] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), unique=True)
    deployment_id: Mapped[str] = mapped_column(String(255))
    memberships_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    lineitems_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    ags_scopes: Mapped[str | None] = mapped_column(Text, nullable=True)  # space-separated
    lineitem_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    last_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_sync_summary: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON


class LtiCursor(Base):
    """How far in the outbox the grade passback has read (one row, ``name`` = ``ags``)."""

    __tablename__ = "lti_cursors"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))


class LtiScorePost(Base):
    """Posting one ended session's attendance rates to a platform's gradebook; retried until done."""

    __tablename__ = "lti_score_posts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    course_id: Mapped[str] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    session_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    status: Mapped[str] = mapped_column(String(8))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        CheckConstraint("status IN ('pending', 'done', 'failed')", name="status"),
        Index("ix_lti_score_posts_status_next", "status", "next_attempt_at"),
    )


class LtiUser(Base):
    """Who an ``lti-`` user is on its platform (the ``sub`` that grades are posted for)."""

    __tablename__ = "lti_users"

    user_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    issuer: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
