"""The read models as they stood when migrations began: tracking, invoice status, journal, payments, audit chain.

Revision ID: 0001
Revises:
Created: 2026-11-26

Databases made before migrations, by `metadata.create_all`, already hold some or all of these
tables: `projections.schema.upgrade` stamps this revision when they hold all of them, and
otherwise this revision creates only the ones missing (`ledger audit verify` on a fresh
database used to create the tracking and audit-chain tables alone).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

TABLES = ("projection_tracking", "invoice_status", "journal_postings", "payments", "audit_chain")


def upgrade() -> None:
    present = set(sa.inspect(op.get_bind()).get_table_names())

    if "projection_tracking" not in present:
        op.create_table(
            "projection_tracking",
            sa.Column("projection", sa.String(64), primary_key=True),
            sa.Column("position", sa.BigInteger(), nullable=False),
        )

    if "invoice_status" not in present:
        op.create_table(
            "invoice_status",
            sa.Column("invoice_id", sa.String(36), primary_key=True),
            sa.Column("number", sa.String(40)),
            sa.Column("status", sa.String(20), nullable=False),
            sa.Column("customer_email", sa.String(254), nullable=False),
            sa.Column("customer_name", sa.String(200), nullable=False),
            sa.Column("currency", sa.String(3), nullable=False),
            sa.Column("subtotal", sa.BigInteger(), nullable=False),
            sa.Column("tax", sa.BigInteger(), nullable=False),
            sa.Column("total", sa.BigInteger(), nullable=False),
            sa.Column("amount_paid", sa.BigInteger(), nullable=False),
            sa.Column("amount_refunded", sa.BigInteger(), nullable=False),
            sa.Column("amount_due", sa.BigInteger(), nullable=False),
            sa.Column("amount_overpaid", sa.BigInteger(), nullable=False),
            sa.Column("credit_refunded", sa.BigInteger(), nullable=False),
            sa.Column("amount_disputed", sa.BigInteger(), nullable=False),
            sa.Column("amount_dispute_lost", sa.BigInteger(), nullable=False),
            sa.Column("written_off", sa.BigInteger(), nullable=False),
            sa.Column("due_date", sa.String(10)),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("issued_at", sa.DateTime(timezone=True)),
            sa.Column("paid_at", sa.DateTime(timezone=True)),
            sa.Column("failed_attempts", sa.Integer(), nullable=False),
            sa.Column("last_failure_code", sa.String(200)),
            sa.Column("last_failure_message", sa.Text()),
            sa.Column("last_failure_at", sa.String(40)),
            sa.Column("version", sa.Integer(), nullable=False),
        )
        for column in ("number", "status", "customer_email", "currency", "due_date", "created_at"):
            op.create_index(f"ix_invoice_status_{column}", "invoice_status", [column])

    if "journal_postings" not in present:
        op.create_table(
            "journal_postings",
            sa.Column("position", sa.BigInteger(), primary_key=True),
            sa.Column("line", sa.Integer(), primary_key=True),
            sa.Column("invoice_id", sa.String(36), nullable=False),
            sa.Column("event_topic", sa.String(64), nullable=False),
            sa.Column("event_version", sa.Integer(), nullable=False),
            sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("account", sa.String(40), nullable=False),
            sa.Column("currency", sa.String(3), nullable=False),
            sa.Column("debit", sa.BigInteger(), nullable=False),
            sa.Column("credit", sa.BigInteger(), nullable=False),
        )
        for column in ("invoice_id", "occurred_at", "account"):
            op.create_index(f"ix_journal_postings_{column}", "journal_postings", [column])

    if "payments" not in present:
        op.create_table(
            "payments",
            sa.Column("payment_id", sa.String(36), primary_key=True),
            sa.Column("invoice_id", sa.String(36), nullable=False),
            sa.Column("provider", sa.String(40), nullable=False),
            sa.Column("provider_payment_id", sa.String(255), nullable=False),
            sa.Column("charge_id", sa.String(255)),
            sa.Column("currency", sa.String(3), nullable=False),
            sa.Column("amount", sa.BigInteger(), nullable=False),
            sa.Column("amount_captured", sa.BigInteger(), nullable=False),
            sa.Column("fee", sa.BigInteger(), nullable=False),
            sa.Column("status", sa.String(20), nullable=False),
            sa.Column("amount_refunded", sa.BigInteger(), nullable=False),
            sa.Column("refunds", sa.Integer(), nullable=False),
            sa.Column("amount_disputed", sa.BigInteger(), nullable=False),
            sa.Column("amount_dispute_lost", sa.BigInteger(), nullable=False),
            sa.Column("failed_attempts", sa.Integer(), nullable=False),
            sa.Column("failure_code", sa.String(200)),
            sa.Column("failure_message", sa.Text()),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("version", sa.Integer(), nullable=False),
        )
        for column in ("invoice_id", "status", "created_at"):
            op.create_index(f"ix_payments_{column}", "payments", [column])

    if "audit_chain" not in present:
        op.create_table(
            "audit_chain",
            # autoincrement=False: a BIGSERIAL (with its sequence) on PostgreSQL otherwise.
            sa.Column("position", sa.BigInteger(), primary_key=True, autoincrement=False),
            sa.Column("originator_id", sa.String(36), nullable=False),
            sa.Column("originator_version", sa.BigInteger(), nullable=False),
            sa.Column("topic", sa.Text(), nullable=False),
            sa.Column("link", sa.String(64), nullable=False),
        )


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
