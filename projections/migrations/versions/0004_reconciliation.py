"""reconciliation: the ledger side of the match (fees, payouts, refunds, disputes), the items
and runs, the webhook inbox, and payments indexed by the provider's id.

Revision ID: 0004
Revises: 0003
Created: 2026-12-06

New tables only. Their read models start at position 0 and catch up from the log on the next
pass (`ledger project`, or any `ledger serve`), like a rebuild of those models alone.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

_TABLES = (
    "processor_fees",
    "payouts",
    "payment_refunds",
    "payment_disputes",
    "reconciliation_items",
    "reconciliation_runs",
    "webhook_events",
)


def upgrade() -> None:
    # A database made by `metadata.create_all` (then stamped) has them already.
    inspector = sa.inspect(op.get_bind())
    existing = set(inspector.get_table_names())
    # Reconciliation finds payments by the provider's id, a page of them at a time.
    if "ix_payments_provider_payment_id" not in {i["name"] for i in inspector.get_indexes("payments")}:
        op.create_index("ix_payments_provider_payment_id", "payments", ["provider_payment_id"])
    if "processor_fees" not in existing:
        op.create_table(
            "processor_fees",
            sa.Column("fee_id", sa.String(36), primary_key=True),
            sa.Column("provider", sa.String(40), nullable=False),
            sa.Column("balance_transaction_id", sa.String(255), nullable=False, unique=True),
            sa.Column("source_id", sa.String(255), nullable=True),
            sa.Column("invoice_id", sa.String(36), nullable=True),
            sa.Column("currency", sa.String(3), nullable=False),
            sa.Column("amount", sa.BigInteger(), nullable=False),
            sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("position", sa.BigInteger(), nullable=False),
        )
        op.create_index("ix_processor_fees_source_id", "processor_fees", ["source_id"])
        op.create_index("ix_processor_fees_invoice_id", "processor_fees", ["invoice_id"])
        op.create_index("ix_processor_fees_recorded_at", "processor_fees", ["recorded_at"])
    if "payouts" not in existing:
        op.create_table(
            "payouts",
            sa.Column("payout_id", sa.String(36), primary_key=True),
            sa.Column("provider", sa.String(40), nullable=False),
            sa.Column("provider_payout_id", sa.String(255), nullable=False, unique=True),
            sa.Column("currency", sa.String(3), nullable=False),
            sa.Column("amount", sa.BigInteger(), nullable=False),
            sa.Column("status", sa.String(20), nullable=False),
            sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("version", sa.Integer(), nullable=False),
        )
        op.create_index("ix_payouts_status", "payouts", ["status"])
        op.create_index("ix_payouts_reported_at", "payouts", ["reported_at"])
    if "payment_refunds" not in existing:
        op.create_table(
            "payment_refunds",
            sa.Column("refund_id", sa.String(255), primary_key=True),
            sa.Column("payment_id", sa.String(36), nullable=False),
            sa.Column("invoice_id", sa.String(36), nullable=False),
            sa.Column("currency", sa.String(3), nullable=False),
            sa.Column("amount", sa.BigInteger(), nullable=False),
            sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("position", sa.BigInteger(), nullable=False),
        )
        op.create_index("ix_payment_refunds_payment_id", "payment_refunds", ["payment_id"])
        op.create_index("ix_payment_refunds_invoice_id", "payment_refunds", ["invoice_id"])
        op.create_index("ix_payment_refunds_recorded_at", "payment_refunds", ["recorded_at"])
    if "payment_disputes" not in existing:
        op.create_table(
            "payment_disputes",
            sa.Column("dispute_id", sa.String(255), primary_key=True),
            sa.Column("payment_id", sa.String(36), nullable=False),
            sa.Column("invoice_id", sa.String(36), nullable=False),
            sa.Column("currency", sa.String(3), nullable=False),
            sa.Column("amount", sa.BigInteger(), nullable=False),
            sa.Column("status", sa.String(20), nullable=False),
            sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("position", sa.BigInteger(), nullable=False),
        )
        op.create_index("ix_payment_disputes_payment_id", "payment_disputes", ["payment_id"])
        op.create_index("ix_payment_disputes_invoice_id", "payment_disputes", ["invoice_id"])
        op.create_index("ix_payment_disputes_opened_at", "payment_disputes", ["opened_at"])
    if "reconciliation_items" not in existing:
        op.create_table(
            "reconciliation_items",
            sa.Column("item_id", sa.String(36), primary_key=True),
            sa.Column("class", sa.String(40), nullable=False),
            sa.Column("status", sa.String(20), nullable=False),
            sa.Column("currency", sa.String(3), nullable=True),
            sa.Column("amount_ledger", sa.BigInteger(), nullable=True),
            sa.Column("amount_stripe", sa.BigInteger(), nullable=True),
            sa.Column("stripe_id", sa.String(255), nullable=True),
            sa.Column("invoice_id", sa.String(36), nullable=True),
            sa.Column("payment_id", sa.String(36), nullable=True),
            sa.Column("explanation", sa.Text(), nullable=False),
            sa.Column("events", sa.Text(), nullable=False),
            sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("last_run_id", sa.String(36), nullable=True),
            sa.Column("resolution", sa.Text(), nullable=True),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("version", sa.Integer(), nullable=False),
        )
        op.create_index("ix_reconciliation_items_class", "reconciliation_items", ["class"])
        op.create_index("ix_reconciliation_items_status", "reconciliation_items", ["status"])
        op.create_index("ix_reconciliation_items_stripe_id", "reconciliation_items", ["stripe_id"])
        op.create_index("ix_reconciliation_items_invoice_id", "reconciliation_items", ["invoice_id"])
        op.create_index("ix_reconciliation_items_detected_at", "reconciliation_items", ["detected_at"])
    if "reconciliation_runs" not in existing:
        op.create_table(
            "reconciliation_runs",
            sa.Column("run_id", sa.String(36), primary_key=True),
            sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
            sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
            sa.Column("source", sa.String(20), nullable=False),
            sa.Column("status", sa.String(20), nullable=False),
            sa.Column("requested_by", sa.String(200), nullable=False),
            sa.Column("items", sa.Integer(), nullable=False),
            sa.Column("summary", sa.Text(), nullable=True),
            sa.Column("failure", sa.Text(), nullable=True),
            sa.Column("version", sa.Integer(), nullable=False),
        )
        op.create_index("ix_reconciliation_runs_started_at", "reconciliation_runs", ["started_at"])
        op.create_index("ix_reconciliation_runs_status", "reconciliation_runs", ["status"])
    if "webhook_events" not in existing:
        op.create_table(
            "webhook_events",
            sa.Column("event_key", sa.String(36), primary_key=True),
            sa.Column("provider", sa.String(40), nullable=False),
            sa.Column("event_id", sa.String(255), nullable=False),
            sa.Column("event_type", sa.String(100), nullable=False),
            sa.Column("object_id", sa.String(255), nullable=True),
            sa.Column("created", sa.BigInteger(), nullable=False),
            sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("status", sa.String(20), nullable=False),
            sa.Column("detail", sa.Text(), nullable=False),
            sa.Column("api_version", sa.String(40), nullable=True),
            sa.Column("position", sa.BigInteger(), nullable=False),
            sa.Column("version", sa.Integer(), nullable=False),
        )
        op.create_index("ix_webhook_events_event_id", "webhook_events", ["event_id"])
        op.create_index("ix_webhook_events_event_type", "webhook_events", ["event_type"])
        op.create_index("ix_webhook_events_object_id", "webhook_events", ["object_id"])
        op.create_index("ix_webhook_events_received_at", "webhook_events", ["received_at"])
        op.create_index("ix_webhook_events_status", "webhook_events", ["status"])


def downgrade() -> None:
    op.drop_index("ix_payments_provider_payment_id", table_name="payments")
    for name in reversed(_TABLES):
        op.drop_table(name)
