"""invoice versions: the invoice_versions and invoice_version_states read model.

Revision ID: 0009
Revises: 0008
Created: 2026-12-07

`invoice_versions` (one row per invoice event: its version and the running maximum of the
invoice's stamps) and `invoice_version_states` (the invoice's encoded state every few versions)
serve `invoice_as_of` (projections/invoice_versions.py, docs/throughput.md "As of"). A new read
model: it starts at position 0 and catches up from the log on the next pass.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "invoice_versions" not in existing:  # else create_all (then stamped) made it already
        op.create_table(
            "invoice_versions",
            sa.Column("invoice_id", sa.String(36), primary_key=True),
            sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
            sa.Column("reached", sa.BigInteger(), nullable=False),
        )
        op.create_index("ix_invoice_versions_reached", "invoice_versions", ["invoice_id", "reached", "version"])
    if "invoice_version_states" not in existing:
        op.create_table(
            "invoice_version_states",
            sa.Column("invoice_id", sa.String(36), primary_key=True),
            sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
            sa.Column("format", sa.Integer(), nullable=False),
            sa.Column("state", sa.Text(), nullable=False),
        )


def downgrade() -> None:
    op.drop_table("invoice_version_states")
    op.drop_table("invoice_versions")
