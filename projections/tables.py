"""The read-model tables (SQLAlchemy Core), in the same database as the event store.

Every table here can be dropped and rebuilt from the event log (`ledger rebuild`).
`projection_tracking` holds, per read model, the position (notification id) of the last event
applied; it is written in the same transaction as the rows that event produced.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, MetaData, String, Table, Text, func, text

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
    Column("number", String(40)),
    Column("status", String(20), nullable=False),
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
    Column("due_date", String(10)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("issued_at", DateTime(timezone=True)),
    Column("paid_at", DateTime(timezone=True)),
    Column("failed_attempts", Integer, nullable=False),
    Column("last_failure_code", String(200)),
    Column("last_failure_message", Text),
    Column("last_failure_at", String(40)),
    Column("version", Integer, nullable=False),
)

# The dashboard's invoice list (projections/admin/invoices.py) pages in the order of one sort
# column, ties broken by invoice_id (keyset): each sort has an index in exactly that order, so a
# page, however deep, is a range scan of ~limit entries instead of a sort of every invoice
# (migration 0006 measured them on 100,000 invoices). They replace the single-column indexes on
# created_at, due_date and number (a prefix of each) and on status.
Index("ix_invoice_status_sort_created_at", invoice_status.c.created_at, invoice_status.c.invoice_id)
Index("ix_invoice_status_sort_due_date", invoice_status.c.due_date, invoice_status.c.invoice_id)
Index("ix_invoice_status_sort_number", invoice_status.c.number, invoice_status.c.invoice_id)
Index("ix_invoice_status_sort_customer_name", invoice_status.c.customer_name, invoice_status.c.invoice_id)
Index("ix_invoice_status_sort_total", invoice_status.c.total, invoice_status.c.invoice_id)
Index("ix_invoice_status_sort_amount_due", invoice_status.c.amount_due, invoice_status.c.invoice_id)
# The status filter with the default sort (newest first), and the status sort (ties newest first).
Index(
    "ix_invoice_status_status_created_at",
    invoice_status.c.status,
    invoice_status.c.created_at,
    invoice_status.c.invoice_id,
)
# The overview's sums over owing invoices per currency (amount due, overdue, failed): every
# column they read, so they are answered from the index alone.
Index(
    "ix_invoice_status_owing",
    invoice_status.c.status,
    invoice_status.c.currency,
    invoice_status.c.due_date,
    invoice_status.c.amount_due,
    invoice_status.c.failed_attempts,
)
# The client portal's list (projections/portal.py): one customer's invoices, whatever the case of
# the address they were written with (a portal link keeps it lower-cased), by status, newest
# first (migration 0008).
Index(
    "ix_invoice_status_customer_email_lower",
    func.lower(invoice_status.c.customer_email),
    invoice_status.c.status,
    invoice_status.c.created_at,
    invoice_status.c.invoice_id,
)
# Failed payments: open invoices with a failed attempt, latest failure first.
Index(
    "ix_invoice_status_failures",
    invoice_status.c.status,
    invoice_status.c.last_failure_at,
    invoice_status.c.invoice_id,
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

# What was collected in a period (the dashboard): the payments applied to invoices, by moment,
# with the two columns summed, so the sums never read the table's rows.
Index(
    "ix_journal_postings_topic_occurred_at",
    journal.c.event_topic,
    journal.c.occurred_at,
    journal.c.currency,
    journal.c.debit,
)

payments = Table(
    "payments",
    metadata,
    Column("payment_id", String(36), primary_key=True),
    Column("invoice_id", String(36), nullable=False, index=True),
    Column("provider", String(40), nullable=False),
    Column("provider_payment_id", String(255), nullable=False, index=True),
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

# One invoice's links (the dashboard's audit view of an invoice), in version order.
Index("ix_audit_chain_originator", audit_chain.c.originator_id, audit_chain.c.originator_version)

# --------------------------------------------------------------------------- reconciliation (0004)

# What the provider's balance transactions told us it kept (ledger/fees.py), one row per fee.
processor_fees = Table(
    "processor_fees",
    metadata,
    Column("fee_id", String(36), primary_key=True),
    Column("provider", String(40), nullable=False),
    Column("balance_transaction_id", String(255), nullable=False, unique=True),
    Column("source_id", String(255), index=True),  # the charge, refund or dispute it was taken on
    Column("invoice_id", String(36), index=True),
    Column("currency", String(3), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, index=True),
    Column("position", BigInteger, nullable=False),  # the recording event's place in the log
)

# Every payout the ledger recorded (ledger/payouts.py), by the provider's id.
payouts = Table(
    "payouts",
    metadata,
    Column("payout_id", String(36), primary_key=True),
    Column("provider", String(40), nullable=False),
    Column("provider_payout_id", String(255), nullable=False, unique=True),
    Column("currency", String(3), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("status", String(20), nullable=False, index=True),
    Column("reported_at", DateTime(timezone=True), nullable=False, index=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("version", Integer, nullable=False),
)

# Every refund and dispute recorded on a payment (payment.refunded, payment.disputed, ...),
# by the provider's id: the ledger side of refund and dispute matching.
payment_refunds = Table(
    "payment_refunds",
    metadata,
    Column("refund_id", String(255), primary_key=True),  # the provider's refund id
    Column("payment_id", String(36), nullable=False, index=True),
    Column("invoice_id", String(36), nullable=False, index=True),
    Column("currency", String(3), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, index=True),
    Column("position", BigInteger, nullable=False),
)

payment_disputes = Table(
    "payment_disputes",
    metadata,
    Column("dispute_id", String(255), primary_key=True),  # the provider's dispute id
    Column("payment_id", String(36), nullable=False, index=True),
    Column("invoice_id", String(36), nullable=False, index=True),
    Column("currency", String(3), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("status", String(20), nullable=False),  # open | won | lost
    Column("opened_at", DateTime(timezone=True), nullable=False, index=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("position", BigInteger, nullable=False),  # the last event that changed it
)

# The latest state of every reconciliation item (ledger/reconciliation/items.py).
reconciliation_items = Table(
    "reconciliation_items",
    metadata,
    Column("item_id", String(36), primary_key=True),
    Column("class", String(40), nullable=False, index=True),
    Column("status", String(20), nullable=False, index=True),
    Column("currency", String(3)),
    Column("amount_ledger", BigInteger),
    Column("amount_stripe", BigInteger),
    Column("stripe_id", String(255), index=True),
    Column("invoice_id", String(36), index=True),
    Column("payment_id", String(36)),
    Column("explanation", Text, nullable=False),
    Column("events", Text, nullable=False),  # JSON: the ledger events involved
    Column("detected_at", DateTime(timezone=True), nullable=False, index=True),
    Column("last_run_id", String(36)),  # the last run that found it
    Column("resolution", Text),  # JSON: by, at, action, note, events; null while open
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("version", Integer, nullable=False),
)

reconciliation_runs = Table(
    "reconciliation_runs",
    metadata,
    Column("run_id", String(36), primary_key=True),
    Column("started_at", DateTime(timezone=True), nullable=False, index=True),
    Column("completed_at", DateTime(timezone=True)),
    Column("period_start", DateTime(timezone=True), nullable=False),
    Column("period_end", DateTime(timezone=True), nullable=False),
    Column("source", String(20), nullable=False),
    Column("status", String(20), nullable=False, index=True),
    Column("requested_by", String(200), nullable=False),
    Column("items", Integer, nullable=False),
    Column("summary", Text),  # JSON, once completed
    Column("failure", Text),
    Column("version", Integer, nullable=False),
)

# The webhook inbox: every provider event received, and what was done with it.
webhook_events = Table(
    "webhook_events",
    metadata,
    Column("event_key", String(36), primary_key=True),  # the ProviderEvent aggregate's id
    Column("provider", String(40), nullable=False),
    Column("event_id", String(255), nullable=False, index=True),
    Column("event_type", String(100), nullable=False, index=True),
    Column("object_id", String(255), index=True),  # the object the event reports (pi_..., ch_...)
    Column("created", BigInteger, nullable=False),  # the provider's timestamp (Unix seconds)
    Column("received_at", DateTime(timezone=True), nullable=False, index=True),
    Column("handled_at", DateTime(timezone=True)),
    Column("status", String(20), nullable=False, index=True),
    Column("detail", Text, nullable=False),
    Column("api_version", String(40)),
    Column("position", BigInteger, nullable=False),  # the received event's place in the log
    Column("version", Integer, nullable=False),
)

# --------------------------------------------------------------------------- admin (0005)

# The dashboard's users (ledger/admin/users.py), latest state; the password hash stays in the log.
admin_users = Table(
    "admin_users",
    metadata,
    Column("user_id", String(36), primary_key=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("role", String(20), nullable=False),  # admin | auditor
    Column("status", String(20), nullable=False),  # active | disabled
    Column("created_by", String(254), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("version", Integer, nullable=False),
)

# Every action a dashboard user took (ledger/admin/activity.py), newest first on the activity page.
admin_activity = Table(
    "admin_activity",
    metadata,
    Column("action_id", String(36), primary_key=True),
    Column("performed_at", DateTime(timezone=True), nullable=False, index=True),
    Column("user_id", String(36), nullable=False, index=True),
    Column("email", String(254), nullable=False),
    Column("action", String(64), nullable=False, index=True),  # e.g. invoice.void, reconciliation.resolve
    Column("target", String(255), index=True),  # what it acted on: an invoice id, an item id, an event id
    Column("detail", Text, nullable=False),
    Column("events", Text, nullable=False),  # JSON: [{"aggregate_id", "version"}] the action left
    Column("position", BigInteger, nullable=False),
)

# Not a read model: the dashboard's server-side sessions, never rebuilt from the log (a rebuild
# leaves them). The cookie carries a random id; only its sha256 is kept here.
admin_sessions = Table(
    "admin_sessions",
    metadata,
    Column("session_hash", String(64), primary_key=True),
    Column("user_id", String(36), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),  # the absolute timeout
    Column("revoked_at", DateTime(timezone=True)),
    Column("address", String(64), nullable=False),
    Column("user_agent", String(300), nullable=False),
)

# --------------------------------------------------------------------------- dashboard (0006)

# The latest state of each invoice's dunning (ledger/dunning/aggregate.py), and what it does next.
dunning_status = Table(
    "dunning_status",
    metadata,
    Column("invoice_id", String(36), primary_key=True),
    Column("dunning_id", String(36), nullable=False),
    Column("status", String(20), nullable=False, index=True),  # active | exhausted | stopped
    Column("anchor", String(10), nullable=False),  # YYYY-MM-DD: the schedule's days count from here
    Column("steps_done", Integer, nullable=False),  # schedule steps taken or skipped (the first ones)
    Column("steps_total", Integer, nullable=False),
    Column("reminders", Integer, nullable=False),  # reminders requested
    Column("retries", Integer, nullable=False),  # payment retries requested
    Column("last_step", String(20)),  # reminder | retry | skipped | exhausted | stopped; null once just started
    Column("last_step_at", DateTime(timezone=True)),
    Column("next_step", String(20)),  # reminder | retry | uncollectible; null once finished
    Column("next_step_at", DateTime(timezone=True)),  # 00:00 UTC of the day the next step falls due
    Column("reason", Text),  # why it was exhausted or stopped, or the last step's reason
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("version", Integer, nullable=False),
)

# --------------------------------------------------------------------------- invoice email (0007)

# One row per invoice email (ledger/mail/emails.py): its delivery as it stands, and when a worker
# may take it up next. projections/mail/emails.py writes and reads it.
invoice_emails = Table(
    "invoice_emails",
    metadata,
    Column("email_id", String(36), primary_key=True),
    Column("invoice_id", String(36), nullable=False),
    Column("invoice_version", Integer, nullable=False),  # the invoice as the message shows it
    Column("purpose", String(20), nullable=False),  # invoice | reminder
    Column("recipient", String(254), nullable=False),
    Column("trigger", String(20), nullable=False),  # api | cli | on-issue | dunning | dashboard
    Column("status", String(20), nullable=False),  # queued | sending | sent | failed | bounced | gave_up | withdrawn
    Column("attempts", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    # queued: when queued; failed: its retry_at; sending: when the attempt's lease runs out; null once settled.
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("last_error", Text),
    Column("message_id", Text),  # our Message-ID header, once sent
    Column("reply", Text),  # the server's reply to the message (its queue id), once sent
    Column("queued_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True)),
    Column("version", Integer, nullable=False),
)
# The worker's queue: the rows due by now, soonest first (settled rows have no next_attempt_at).
Index("ix_invoice_emails_next_attempt_at", invoice_emails.c.next_attempt_at)
# An invoice's emails, in the order they were queued.
Index("ix_invoice_emails_invoice", invoice_emails.c.invoice_id, invoice_emails.c.queued_at)

# --------------------------------------------------------------------------- invoice versions (0009)

# Invoice as of a moment (projections/invoice_versions.py): one row per invoice event. `reached`
# is the latest stamp among the invoice's events up to this version (a running maximum, in
# microseconds since the epoch, UTC), so the versions stamped at or before a moment are a prefix
# even if stamps go backwards: the first row past the moment is one index seek.
invoice_versions = Table(
    "invoice_versions",
    metadata,
    Column("invoice_id", String(36), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("reached", BigInteger, nullable=False),
)
_versions = invoice_versions.c
Index("ix_invoice_versions_reached", _versions.invoice_id, _versions.reached, _versions.version)

# The invoice's state every STATE_INTERVAL versions, in the read model's own encoding (its
# `format`; not the stored event format): as of a moment folds at most STATE_INTERVAL - 1 events onto one.
invoice_version_states = Table(
    "invoice_version_states",
    metadata,
    Column("invoice_id", String(36), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("format", Integer, nullable=False),
    Column("state", Text, nullable=False),
)
