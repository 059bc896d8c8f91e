"""journal: postings of payouts (Dr bank / Cr processor_balance), which belong to no invoice.

Revision ID: 0002
Revises: 0001
Created: 2026-12-02

`invoice_id` becomes nullable and `payout_id` is added: each posting names the invoice or the
payout whose event it came from. A rebuild is not needed: existing rows all have an invoice.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("journal_postings")}
    if "payout_id" in columns:
        return  # made by `metadata.create_all` from the current tables, then stamped at 0001
    with op.batch_alter_table("journal_postings") as batch:  # SQLite rebuilds the table
        batch.alter_column("invoice_id", existing_type=sa.String(36), nullable=True)
        batch.add_column(sa.Column("payout_id", sa.String(36), nullable=True))
        batch.create_index("ix_journal_postings_payout_id", ["payout_id"])


def downgrade() -> None:
    with op.batch_alter_table("journal_postings") as batch:
        batch.drop_index("ix_journal_postings_payout_id")
        batch.drop_column("payout_id")
        batch.alter_column("invoice_id", existing_type=sa.String(36), nullable=False)
