"""Check-in integrity: a session's check-in mode, code period, code secret and allowed networks;
the audit trail of record changes (``record_changes``).

Sessions that exist already stay ``open`` (as they were) with the default
period; their secret is empty, and a session can only become ``code`` at its
start, when it gets a secret of its own.

Revision ID: 0003
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("attendance_sessions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("check_in_mode", sa.String(length=8), nullable=False, server_default="open")
        )
        batch_op.add_column(
            sa.Column("code_period_seconds", sa.Integer(), nullable=False, server_default="15")
        )
        batch_op.add_column(sa.Column("code_secret", sa.String(length=64), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("allowed_networks", sa.Text(), nullable=True))
        batch_op.create_check_constraint(
            op.f("ck_attendance_sessions_check_in_mode"), "check_in_mode IN ('open', 'code')"
        )
        batch_op.create_check_constraint(
            op.f("ck_attendance_sessions_code_period_range"), "code_period_seconds BETWEEN 5 AND 300"
        )

    op.create_table(
        "record_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("session_id", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.Column("changed_by", sa.String(length=128), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=45), nullable=True),
        sa.Column("device_id", sa.String(length=128), nullable=True),
        sa.Column("same_address_as", sa.String(length=128), nullable=True),
        sa.Column("same_device_as", sa.String(length=128), nullable=True),
        sa.CheckConstraint(
            "status IN ('present', 'late', 'excused', 'absent')", name=op.f("ck_record_changes_status")
        ),
        sa.CheckConstraint(
            "method IN ('check_in', 'teacher_mark', 'auto')", name=op.f("ck_record_changes_method")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["attendance_sessions.id"],
            name=op.f("fk_record_changes_session_id_attendance_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record_changes")),
    )
    with op.batch_alter_table("record_changes", schema=None) as batch_op:
        batch_op.create_index("ix_record_changes_session_user", ["session_id", "user_id"], unique=False)
        batch_op.create_index("ix_record_changes_session_address", ["session_id", "address"], unique=False)
        batch_op.create_index("ix_record_changes_session_device", ["session_id", "device_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("record_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_record_changes_session_device")
        batch_op.drop_index("ix_record_changes_session_address")
        batch_op.drop_index("ix_record_changes_session_user")
    op.drop_table("record_changes")
    with op.batch_alter_table("attendance_sessions", schema=None) as batch_op:
        batch_op.drop_constraint("ck_attendance_sessions_code_period_range", type_="check")
        batch_op.drop_constraint("ck_attendance_sessions_check_in_mode", type_="check")
        batch_op.drop_column("allowed_networks")
        batch_op.drop_column("code_secret")
        batch_op.drop_column("code_period_seconds")
        batch_op.drop_column("check_in_mode")
