"""Courses and rosters: a course's archive date, join codes, and email-only roster invites.

``courses.archived_at`` is a nullable column added in place (no batch rebuild:
on SQLite a rebuild drops the table, and ``ON DELETE CASCADE`` would take every
enrollment and session with it). The two tables are new.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("courses", sa.Column("archived_at", sa.DateTime(), nullable=True))
    op.create_table(
        "join_codes",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("course_id", sa.String(length=128), nullable=False),
        sa.Column("approval", sa.String(length=8), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("approval IN ('manual', 'auto')", name=op.f("ck_join_codes_approval")),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["courses.id"],
            name=op.f("fk_join_codes_course_id_courses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_join_codes")),
    )
    op.create_index("ix_join_codes_course_id", "join_codes", ["course_id"])
    op.create_table(
        "roster_invites",
        sa.Column("course_id", sa.String(length=128), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'rejected')", name=op.f("ck_roster_invites_status")
        ),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["courses.id"],
            name=op.f("fk_roster_invites_course_id_courses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("course_id", "email", name=op.f("pk_roster_invites")),
    )
    op.create_index("ix_roster_invites_email", "roster_invites", ["email"])


def downgrade() -> None:
    op.drop_index("ix_roster_invites_email", table_name="roster_invites")
    op.drop_table("roster_invites")
    op.drop_index("ix_join_codes_course_id", table_name="join_codes")
    op.drop_table("join_codes")
    with op.batch_alter_table("courses", recreate="never") as batch_op:
        batch_op.drop_column("archived_at")
