"""journal: the revision of the posting rule that wrote each row.

Revision ID: 0003
Revises: 0002
Created: 2026-12-06

`rule_revision` is added, not null. Every row written before it was posted by revision 1 of its
rule (ledger/accounting.py RULES starts every rule at 1), so that is the existing rows' value.
A rebuild is not needed; `ledger rebuild --check` compares the column like any other.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("journal_postings")}
    if "rule_revision" in columns:
        return  # made by `metadata.create_all` from the current tables, then stamped at an older revision
    with op.batch_alter_table("journal_postings") as batch:  # SQLite rebuilds the table
        batch.add_column(sa.Column("rule_revision", sa.Integer(), nullable=False, server_default=sa.text("1")))


def downgrade() -> None:
    with op.batch_alter_table("journal_postings") as batch:
        batch.drop_column("rule_revision")
