"""Starts announced at once (issue 22): a session's roster rows are written after its start.

``attendance_sessions.roster_pending`` is true from the start's commit until the roster's
``absent`` rows have been written (``service.roster_fill``); while it is true, an approved
enrollment without a record reads as an ``absent`` record of that session. Existing sessions
had their roster written at their start, so the column is added false: the upgrade writes no
row. ``ix_enrollments_course_status`` lets a pending roster's size be counted from an index.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ALTER TABLE (SQLite takes a NOT NULL column with a constant default): a batch
    # would rebuild the table, and dropping its old copy would cascade to the sessions' records.
    op.add_column(
        "attendance_sessions",
        sa.Column("roster_pending", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.create_index("ix_enrollments_course_status", "enrollments", ["course_id", "status"])


def downgrade() -> None:
    # Before the column goes, write the rosters still pending (what any node would have done).
    op.execute(
        "INSERT INTO attendance_records (session_id, user_id, status) "
        "SELECT s.id, e.user_id, 'absent' FROM attendance_sessions s "
        "JOIN enrollments e ON e.course_id = s.course_id AND e.status = 'approved' "
        "WHERE s.roster_pending AND NOT EXISTS (SELECT 1 FROM attendance_records r "
        "WHERE r.session_id = s.id AND r.user_id = e.user_id)"
    )
    op.drop_column("attendance_sessions", "roster_pending")
    op.drop_index("ix_enrollments_course_status", table_name="enrollments")
