"""admin: the dashboard's users and activity (read models) and its sessions (not a read model).

Revision ID: 0005
Revises: 0004
Created: 2026-12-07

New tables only. The two read models start at position 0 and catch up from the log on the next
pass, like a rebuild of those models alone; sessions start empty.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

_TABLES = ("admin_users", "admin_activity", "admin_sessions")


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())  # create_all (then stamped) made them
    if "admin_users" not in existing:
        op.create_table(
            "admin_users",
            sa.Column("user_id", sa.String(36), primary_key=True),
            sa.Column("email", sa.String(254), nullable=False, unique=True),
            sa.Column("role", sa.String(20), nullable=False),
            sa.Column("status", sa.String(20), nullable=False),
            sa.Column("created_by", sa.String(254), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("version", sa.Integer(), nullable=False),
        )
        op.create_index("ix_admin_users_created_at", "admin_users", ["created_at"])
    if "admin_activity" not in existing:
        op.create_table(
            "admin_activity",
            sa.Column("action_id", sa.String(36), primary_key=True),
            sa.Column("performed_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("user_id", sa.String(36), nullable=False),
            sa.Column("email", sa.String(254), nullable=False),
            sa.Column("action", sa.String(64), nullable=False),
            sa.Column("target", sa.String(255), nullable=True),
            sa.Column("detail", sa.Text(), nullable=False),
            sa.Column("events", sa.Text(), nullable=False),
            sa.Column("position", sa.BigInteger(), nullable=False),
        )
        op.create_index("ix_admin_activity_performed_at", "admin_activity", ["performed_at"])
        op.create_index("ix_admin_activity_user_id", "admin_activity", ["user_id"])
        op.create_index("ix_admin_activity_action", "admin_activity", ["action"])
        op.create_index("ix_admin_activity_target", "admin_activity", ["target"])
    if "admin_sessions" not in existing:
        op.create_table(
            "admin_sessions",
            sa.Column("session_hash", sa.String(64), primary_key=True),
            sa.Column("user_id", sa.String(36), nullable=False),
            sa.Column("csrf_token", sa.String(64), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("address", sa.String(64), nullable=False),
            sa.Column("user_agent", sa.String(300), nullable=False),
        )
        op.create_index("ix_admin_sessions_user_id", "admin_sessions", ["user_id"])
        op.create_index("ix_admin_sessions_expires_at", "admin_sessions", ["expires_at"])


def downgrade() -> None:
    for name in reversed(_TABLES):
        op.drop_table(name)
