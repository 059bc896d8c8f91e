"""The read-model tables (SQLAlchemy Core), in the same database as the event store.

Every table here can be dropped and rebuilt from the event log (`ledger rebuild`).
`projection_tracking` holds, per read model, the position (notification id) of the last event
applied; it is written in the same transaction as the rows that event produced.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, String, Table, Text, text

metadata = MetaData()

tracking = Table(
    "projection_tracking",
    metadata,
    Column("projection", String(64), primary_key=True),
    Column("position", BigInteger, nullable=False),
)

invoice_status = Table(
    "invoice_status",
    metadata,
    Column("invoice_id", String(36), primary_key=True),
    Column("number", String(40), index=True),
    Column("status", String(20), nullable=False, index=True),
    Column("customer_email", String(254), nullable=False, index=True),
    Column("customer_name", String(200), nullable=False),
    Column("currency", String(3), nullable=False, index=True),
    Column("subtotal", BigInteger, nullable=False),
    Column("tax", BigInteger, nullable=False),
    Column("total", BigInteger, nullable=False),
    Column("amount_paid", BigInteger, nullable=False),
    Column("amount_refunded", BigInteger, nullable=False),
    Column("amount_due", BigInteger, nullable=False),
    Column("amount_overpaid", BigInteger, nullable=False),
    Column("credit_refunded", BigInteger, nullable=False),  # of the overpaid credit, what was refunded
    Column("amount_disputed", BigInteger, nullable=False),
    Column("amount_dispute_lost", BigInteger, nullable=False),
    Column("written_off", BigInteger, nullable=False),
    Column("due_date", String(10), index=True),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("issued_at", DateTime(timezone=True)),
    Column("paid_at", DateTime(timezone=True)),
    Column("failed_attempts", Integer, nullable=False),
    Column("last_failure_code", String(200)),
    Column("last_failure_message", Text),
    Column("last_failure_at", String(40)),
    Column("version", Integer, nullable=False),
)

journal = Table(
    "journal_postings",
    metadata,
    Column("position", BigInteger, primary_key=True),  # the source event's notification id
    Column("line", Integer, primary_key=True),  # the posting's place among that event's postings
    Column("invoice_id", String(36), index=True),  # the invoice whose event posted; None for a payout's
    Column("event_topic", String(64), nullable=False),
    Column("event_version", Integer, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False, index=True),
    Column("account", String(40), nullable=False, index=True),
    Column("currency", String(3), nullable=False),
    Column("debit", BigInteger, nullable=False),
    Column("credit", BigInteger, nullable=False),
    Column("payout_id", String(36), index=True),  # the payout whose event posted (revision 0002)
    # The revision of the posting rule that wrote the row (ledger/accounting.py; migration 0003).
    Column("rule_revision", Integer, nullable=False, server_default=text("1")),
)

payments = Table(
    "payments",
    metadata,
    Column("payment_id", String(36), primary_key=True),
    Column("invoice_id", String(36), nullable=False, index=True),
    Column("provider", String(40), nullable=False),
    Column("provider_payment_id", String(255), nullable=False),
    Column("charge_id", String(255)),
    Column("currency", String(3), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("amount_captured", BigInteger, nullable=False),
    Column("fee", BigInteger, nullable=False),
    Column("status", String(20), nullable=False, index=True),
    Column("amount_refunded", BigInteger, nullable=False),
    Column("refunds", Integer, nullable=False),  # how many distinct refunds
    Column("amount_disputed", BigInteger, nullable=False),  # open disputes
    Column("amount_dispute_lost", BigInteger, nullable=False),
    Column("failed_attempts", Integer, nullable=False),
    Column("failure_code", String(200)),  # the last failed attempt's, kept after a later success
    Column("failure_message", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("version", Integer, nullable=False),
)

# The tamper-evident hash chain over the whole log (projections/audit_chain.py): one row per
# event, in log order; `link` is sha256(previous link || the event's canonical bytes), in hex.
audit_chain = Table(
    "audit_chain",
    metadata,
    Column("position", BigInteger, primary_key=True, autoincrement=False),  # the event's notification id
    Column("originator_id", String(36), nullable=False),
    Column("originator_version", BigInteger, nullable=False),
    Column("topic", Text, nullable=False),
    Column("link", String(64), nullable=False),
)
