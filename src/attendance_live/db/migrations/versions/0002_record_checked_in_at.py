"""A record's own check-in time, apart from the last mark.

``marked_at`` moves whenever a teacher marks the record, so the student's own
check-in time was lost by an override. ``checked_in_at`` keeps it. Existing
records whose last change was the student's own check-in (``marked_by`` is the
student) get it from ``marked_at``; for the others it is unknown and stays null.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A nullable column needs no table rebuild on SQLite and no rewrite on PostgreSQL.
    op.add_column("attendance_records", sa.Column("checked_in_at", sa.DateTime(), nullable=True))
    op.execute(
        "UPDATE attendance_records SET checked_in_at = marked_at "
        "WHERE marked_by = user_id AND status IN ('present', 'late')"
    )


def downgrade() -> None:
    with op.batch_alter_table("attendance_records") as batch_op:
        batch_op.drop_column("checked_in_at")
