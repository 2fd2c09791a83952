"""Check-in integrity: a session's check-in mode, code period, code secret and allowed networks;
the audit trail of record changes (``record_changes``).

Sessions that exist already stay ``open`` (as they were) with the default
period; their secret is empty, and a session can only become ``code`` at its
start, when it gets a secret of its own.

On SQLite the columns are added with ``ALTER TABLE … ADD COLUMN`` and an inline
CHECK, never by a batch rebuild: the rebuild drops the old table, and with
foreign keys on, SQLite's ``DROP TABLE`` deletes every record of every session
through ``ON DELETE CASCADE``.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# column: (constraint name, condition, SQLite column definition)
_CHECKS = {
    "check_in_mode": (
        "ck_attendance_sessions_check_in_mode",
        "check_in_mode IN ('open', 'code')",
        "VARCHAR(8) NOT NULL DEFAULT 'open'",
    ),
    "code_period_seconds": (
        "ck_attendance_sessions_code_period_range",
        "code_period_seconds BETWEEN 5 AND 300",
        "INTEGER NOT NULL DEFAULT 15",
    ),
}


def upgrade() -> None:
    columns: list[sa.Column[Any]] = [
        sa.Column("check_in_mode", sa.String(length=8), nullable=False, server_default="open"),
        sa.Column("code_period_seconds", sa.Integer(), nullable=False, server_default="15"),
        sa.Column("code_secret", sa.String(length=64), nullable=False, server_default=""),
        sa.Column("allowed_networks", sa.Text(), nullable=True),
    ]
    sqlite = op.get_bind().dialect.name == "sqlite"
    for column in columns:
        if sqlite and column.name in _CHECKS:
            name, condition, definition = _CHECKS[column.name]
            op.execute(
                f"ALTER TABLE attendance_sessions ADD COLUMN {column.name} {definition} "
                f"CONSTRAINT {name} CHECK ({condition})"
            )
        else:
            op.add_column("attendance_sessions", column)
    if not sqlite:
        for name, condition, _ in _CHECKS.values():
            op.create_check_constraint(name, "attendance_sessions", condition)

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
    # Plain DROP COLUMN (SQLite 3.35+ drops a column with its own CHECK), never a batch
    # rebuild (see the module docstring).
    if op.get_bind().dialect.name != "sqlite":
        for name, _, _ in _CHECKS.values():
            op.drop_constraint(name, "attendance_sessions", type_="check")
    for column in ("allowed_networks", "code_secret", "code_period_seconds", "check_in_mode"):
        op.drop_column("attendance_sessions", column)
