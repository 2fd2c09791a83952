"""The outbox (every domain event, in the transaction of its change) and the
Socket.IO recovery sessions.

Both are new tables: nothing existing changes, so the upgrade is instant on
SQLite and PostgreSQL alike.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_POSITION = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", _POSITION, autoincrement=False, nullable=False),
        sa.Column("course_id", sa.String(length=128), nullable=False),
        sa.Column("course_offset", _POSITION, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    op.create_index("ux_outbox_course_offset", "outbox", ["course_id", "course_offset"], unique=True)
    op.create_index("ix_outbox_created_at", "outbox", ["created_at"])
    op.create_table(
        "recovery_sessions",
        sa.Column("pid", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("courses", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("disconnected_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("pid", name=op.f("pk_recovery_sessions")),
    )
    op.create_index("ix_recovery_sessions_updated_at", "recovery_sessions", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_recovery_sessions_updated_at", table_name="recovery_sessions")
    op.drop_table("recovery_sessions")
    op.drop_index("ix_outbox_created_at", table_name="outbox")
    op.drop_index("ux_outbox_course_offset", table_name="outbox")
    op.drop_table("outbox")
