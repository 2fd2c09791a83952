"""LTI 1.3: registered platforms and deployments, the tool's RSA key, login states (single use),
contexts and the courses they became, platform users' subjects, the grade passback's outbox
cursor and score posts.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "lti_cursors",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("position", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_lti_cursors")),
    )
    op.create_table(
        "lti_platforms",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("issuer", sa.String(length=255), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=False),
        sa.Column("auth_url", sa.String(length=2000), nullable=False),
        sa.Column("token_url", sa.String(length=2000), nullable=False),
        sa.Column("jwks_url", sa.String(length=2000), nullable=False),
        sa.Column("frame_ancestors", sa.String(length=2000), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lti_platforms")),
    )
    with op.batch_alter_table("lti_platforms", schema=None) as batch_op:
        batch_op.create_index("ux_lti_platforms_issuer_client", ["issuer", "client_id"], unique=True)

    op.create_table(
        "lti_tool_keys",
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("private_pem", sa.Text(), nullable=False),
        sa.Column("public_jwk", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_lti_tool_keys")),
    )
    op.create_table(
        "lti_users",
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("issuer", sa.String(length=255), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_lti_users")),
    )
    op.create_table(
        "lti_deployments",
        sa.Column("platform_id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["platform_id"],
            ["lti_platforms.id"],
            name=op.f("fk_lti_deployments_platform_id_lti_platforms"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("platform_id", "deployment_id", name=op.f("pk_lti_deployments")),
    )
    op.create_table(
        "lti_logins",
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("platform_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["platform_id"],
            ["lti_platforms.id"],
            name=op.f("fk_lti_logins_platform_id_lti_platforms"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("state", name=op.f("pk_lti_logins")),
        sa.UniqueConstraint("nonce", name=op.f("uq_lti_logins_nonce")),
    )
    with op.batch_alter_table("lti_logins", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lti_logins_created_at"), ["created_at"], unique=False)

    op.create_table(
        "lti_contexts",
        sa.Column("platform_id", sa.Integer(), nullable=False),
        sa.Column("context_id", sa.String(length=255), nullable=False),
        sa.Column("course_id", sa.String(length=128), nullable=False),
        sa.Column("deployment_id", sa.String(length=255), nullable=False),
        sa.Column("memberships_url", sa.String(length=2000), nullable=True),
        sa.Column("lineitems_url", sa.String(length=2000), nullable=True),
        sa.Column("ags_scopes", sa.Text(), nullable=True),
        sa.Column("lineitem_url", sa.String(length=2000), nullable=True),
        sa.Column("last_sync_at", sa.DateTime(), nullable=True),
        sa.Column("last_sync_summary", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["course_id"], ["courses.id"], name=op.f("fk_lti_contexts_course_id_courses"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["platform_id"],
            ["lti_platforms.id"],
            name=op.f("fk_lti_contexts_platform_id_lti_platforms"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("platform_id", "context_id", name=op.f("pk_lti_contexts")),
        sa.UniqueConstraint("course_id", name=op.f("uq_lti_contexts_course_id")),
    )
    op.create_table(
        "lti_score_posts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("course_id", sa.String(length=128), nullable=False),
        sa.Column("session_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("done_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'done', 'failed')", name=op.f("ck_lti_score_posts_status")),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["courses.id"],
            name=op.f("fk_lti_score_posts_course_id_courses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lti_score_posts")),
    )
    with op.batch_alter_table("lti_score_posts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lti_score_posts_course_id"), ["course_id"], unique=False)
        batch_op.create_index("ix_lti_score_posts_status_next", ["status", "next_attempt_at"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("lti_score_posts", schema=None) as batch_op:
        batch_op.drop_index("ix_lti_score_posts_status_next")
        batch_op.drop_index(batch_op.f("ix_lti_score_posts_course_id"))

    op.drop_table("lti_score_posts")
    op.drop_table("lti_contexts")
    with op.batch_alter_table("lti_logins", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lti_logins_created_at"))

    op.drop_table("lti_logins")
    op.drop_table("lti_deployments")
    op.drop_table("lti_users")
    op.drop_table("lti_tool_keys")
    with op.batch_alter_table("lti_platforms", schema=None) as batch_op:
        batch_op.drop_index("ux_lti_platforms_issuer_client")

    op.drop_table("lti_platforms")
    op.drop_table("lti_cursors")
