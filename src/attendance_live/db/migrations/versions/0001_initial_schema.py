"""Initial schema: users, courses, enrollments, attendance sessions and records.

Times are naive UTC (the application converts); see attendance_live.db.models.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("role IN ('student', 'teacher', 'admin')", name=op.f("ck_users_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
    )
    op.create_table(
        "courses",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("teacher_id", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["teacher_id"], ["users.id"], name=op.f("fk_courses_teacher_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_courses")),
    )
    with op.batch_alter_table("courses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_courses_teacher_id"), ["teacher_id"], unique=False)

    op.create_table(
        "attendance_sessions",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("course_id", sa.String(length=128), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("late_after_minutes", sa.Integer(), nullable=False),
        sa.Column("max_duration_minutes", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("started_by_id", sa.String(length=128), nullable=False),
        sa.Column("started_by", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("ended_by_id", sa.String(length=128), nullable=True),
        sa.Column("ended_by", sa.String(length=200), nullable=True),
        sa.Column("final_present", sa.Integer(), nullable=True),
        sa.Column("final_late", sa.Integer(), nullable=True),
        sa.Column("final_absent", sa.Integer(), nullable=True),
        sa.Column("final_excused", sa.Integer(), nullable=True),
        sa.Column("final_total", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "(status = 'active' AND ended_at IS NULL) OR (status = 'ended' AND ended_at IS NOT NULL)",
            name=op.f("ck_attendance_sessions_ended_consistent"),
        ),
        sa.CheckConstraint("status IN ('active', 'ended')", name=op.f("ck_attendance_sessions_status")),
        sa.CheckConstraint(
            "late_after_minutes >= 0", name=op.f("ck_attendance_sessions_late_after_nonnegative")
        ),
        sa.CheckConstraint(
            "max_duration_minutes > 0", name=op.f("ck_attendance_sessions_max_duration_positive")
        ),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["courses.id"],
            name=op.f("fk_attendance_sessions_course_id_courses"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["ended_by_id"], ["users.id"], name=op.f("fk_attendance_sessions_ended_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["started_by_id"], ["users.id"], name=op.f("fk_attendance_sessions_started_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attendance_sessions")),
    )
    with op.batch_alter_table("attendance_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_attendance_sessions_course_status", ["course_id", "status"], unique=False)
        batch_op.create_index("ix_attendance_sessions_status_expires", ["status", "expires_at"], unique=False)

    op.create_table(
        "enrollments",
        sa.Column("course_id", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'rejected')", name=op.f("ck_enrollments_status")
        ),
        sa.ForeignKeyConstraint(
            ["course_id"], ["courses.id"], name=op.f("fk_enrollments_course_id_courses"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_enrollments_user_id_users")),
        sa.PrimaryKeyConstraint("course_id", "user_id", name=op.f("pk_enrollments")),
    )
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_enrollments_user_id"), ["user_id"], unique=False)

    op.create_table(
        "attendance_records",
        sa.Column("session_id", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("marked_at", sa.DateTime(), nullable=True),
        sa.Column("marked_by", sa.String(length=128), nullable=True),
        sa.Column("remarks", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('present', 'late', 'excused', 'absent')", name=op.f("ck_attendance_records_status")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["attendance_sessions.id"],
            name=op.f("fk_attendance_records_session_id_attendance_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_attendance_records_user_id_users")),
        sa.PrimaryKeyConstraint("session_id", "user_id", name=op.f("pk_attendance_records")),
    )
    with op.batch_alter_table("attendance_records", schema=None) as batch_op:
        batch_op.create_index("ix_attendance_records_session_status", ["session_id", "status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("attendance_records", schema=None) as batch_op:
        batch_op.drop_index("ix_attendance_records_session_status")

    op.drop_table("attendance_records")
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_enrollments_user_id"))

    op.drop_table("enrollments")
    with op.batch_alter_table("attendance_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_attendance_sessions_status_expires")
        batch_op.drop_index("ix_attendance_sessions_course_status")

    op.drop_table("attendance_sessions")
    with op.batch_alter_table("courses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_courses_teacher_id"))

    op.drop_table("courses")
    op.drop_table("users")
