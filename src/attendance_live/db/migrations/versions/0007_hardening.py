"""Hardening (issue 23): which node holds a recovery session's connection, and the nodes'
heartbeats, so that only a pid whose connection has ended can be claimed; and the flag of a
student stopped for too many wrong check-in codes (``attendance_records.code_attempts_blocked_at``).

``recovery_sessions.node`` is the node id of the connection that holds the pid (null for
rows written before this revision: they are treated as before). ``nodes`` has one row per
running server process, its ``seen_at`` moved on every few seconds: a connection of a node
that stopped beating has ended with it. Both changes add nothing that existing rows must
fill, so the upgrade is instant on SQLite and PostgreSQL alike.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nodes")),
    )
    with op.batch_alter_table("recovery_sessions") as batch:
        batch.add_column(sa.Column("node", sa.String(length=64), nullable=True))
    with op.batch_alter_table("attendance_records") as batch:
        batch.add_column(sa.Column("code_attempts_blocked_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("attendance_records") as batch:
        batch.drop_column("code_attempts_blocked_at")
    with op.batch_alter_table("recovery_sessions") as batch:
        batch.drop_column("node")
    op.drop_table("nodes")
