"""invoice emails: the invoice_emails read model.

Revision ID: 0007
Revises: 0006
Created: 2026-12-07

`invoice_emails` is a new read model (projections/mail/emails.py): it starts at position 0 and
catches up from the log on the next pass, like a rebuild of that model alone. Its indexes: the
worker's queue (`next_attempt_at`: the rows due, soonest first, a range scan however many emails
were ever sent) and an invoice's emails (`invoice_id, queued_at`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    if "invoice_emails" in set(sa.inspect(op.get_bind()).get_table_names()):
        return  # create_all (then stamped) made it already
    op.create_table(
        "invoice_emails",
        sa.Column("email_id", sa.String(36), primary_key=True),
        sa.Column("invoice_id", sa.String(36), nullable=False),
        sa.Column("invoice_version", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("recipient", sa.String(254), nullable=False),
        sa.Column("trigger", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("message_id", sa.Text(), nullable=True),
        sa.Column("reply", sa.Text(), nullable=True),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_index("ix_invoice_emails_next_attempt_at", "invoice_emails", ["next_attempt_at"])
    op.create_index("ix_invoice_emails_invoice", "invoice_emails", ["invoice_id", "queued_at"])


def downgrade() -> None:
    op.drop_table("invoice_emails")
