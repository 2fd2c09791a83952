"""Co-managers: a course's co-teachers and teaching assistants besides its teacher (the owner).

``course_managers`` is new; ``courses.teacher_id`` stays the owner (the ``teacher_id`` and
``teacher_name`` of every payload).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "course_managers",
        sa.Column("course_id", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("role IN ('teacher', 'ta')", name=op.f("ck_course_managers_role")),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["courses.id"],
            name=op.f("fk_course_managers_course_id_courses"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_course_managers_user_id_users")),
        sa.PrimaryKeyConstraint("course_id", "user_id", name=op.f("pk_course_managers")),
    )
    with op.batch_alter_table("course_managers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_course_managers_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("course_managers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_course_managers_user_id"))
    op.drop_table("course_managers")
