"""The invoice_emails read model: one row per invoice email (ledger/mail/emails.py), and the
queries on it: the worker's queue of due emails, an invoice's emails, the list.

`next_attempt_at` is when a worker may take the email up: its queueing for a queued one, the
retry moment of a failed one, the end of the attempt's lease (LEASE) for one being sent; null
once it is settled (sent, bounced, gave_up, withdrawn). Due means `next_attempt_at <= now`: one
range of one index. A withdrawn email's reason is its `last_error`. The row may lag the log; the
worker's claim (`app.mail.start_attempt` with the row's version) is what decides, never the row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Engine, Table, select

from ledger.mail.emails import InvoiceEmail
from projections.bulk import upsert_rows
from projections.invoice_states import AggregateStates
from projections.paging import MAX_PAGE, with_utc
from projections.tables import invoice_emails
from projections.tracked import Positioned

LoadEmail = Callable[[UUID, int], InvoiceEmail]


class InvoiceEmailsProjection:
    name = "invoice_emails"
    tables: tuple[Table, ...] = (invoice_emails,)
    kinds: tuple[type, ...] = (InvoiceEmail.Event,)  # the events it reads (projections/tracked.py)

    def __init__(self, load: LoadEmail) -> None:
        self.states = AggregateStates(InvoiceEmail, load)

    def prepare(self, batch: Sequence[Positioned]) -> None:
        self.states.prepare(event for _, event in batch)

    def process(self, conn: Connection, batch: Sequence[Positioned]) -> None:
        rows: dict[UUID, dict[str, Any]] = {}
        for _, event in batch:
            if isinstance(event, InvoiceEmail.Event):
                rows[event.originator_id] = row_of(self.states.apply(event))
        upsert_rows(conn, invoice_emails, list(rows.values()), ["email_id"])

    def reset(self) -> None:
        self.states.forget()


def row_of(email: InvoiceEmail) -> dict[str, Any]:
    return {
        "email_id": str(email.id),
        "invoice_id": email.invoice_id,
        "invoice_version": email.invoice_version,
        "purpose": email.purpose,
        "recipient": email.recipient,
        "trigger": email.trigger,
        "status": email.status,
        "attempts": email.attempts,
        "max_attempts": email.max_attempts,
        "next_attempt_at": _utc(email.next_attempt_at),
        "last_error": email.last_error,
        "message_id": email.message_id,
        "reply": email.reply,
        "queued_at": _utc(email.created_on),
        "sent_at": _utc(email.sent_at),
        "version": email.version,
    }


def _utc(moment: datetime | None) -> datetime | None:
    """Stored in UTC: SQLite keeps the wall time only, and the queue compares moments."""
    return None if moment is None else moment.astimezone(UTC)


def _as_stored(engine: Engine, moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return moment if engine.dialect.name == "postgresql" else moment.replace(tzinfo=None)


def due_emails(engine: Engine, now: datetime, *, limit: int = 100) -> list[dict[str, Any]]:
    """The emails a worker may take up at `now`, soonest due first (at most `limit`)."""
    column = invoice_emails.c.next_attempt_at
    query = (
        select(invoice_emails)
        .where(column.is_not(None), column <= _as_stored(engine, now))
        .order_by(column, invoice_emails.c.email_id)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [with_utc(dict(row)) for row in conn.execute(query).mappings()]


def invoice_emails_of(engine: Engine, invoice_id: UUID | str) -> list[dict[str, Any]]:
    """An invoice's emails, oldest first."""
    query = (
        select(invoice_emails)
        .where(invoice_emails.c.invoice_id == str(invoice_id))
        .order_by(invoice_emails.c.queued_at, invoice_emails.c.email_id)
    )
    with engine.connect() as conn:
        return [with_utc(dict(row)) for row in conn.execute(query).mappings()]


def email_row(engine: Engine, email_id: UUID | str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(invoice_emails).where(invoice_emails.c.email_id == str(email_id))).mappings().first()
    return with_utc(dict(row)) if row else None


def list_emails(
    engine: Engine, *, invoice_id: UUID | str | None = None, status: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """Emails, newest queued first, filtered by invoice and status."""
    query = select(invoice_emails)
    if invoice_id is not None:
        query = query.where(invoice_emails.c.invoice_id == str(invoice_id))
    if status is not None:
        query = query.where(invoice_emails.c.status == status)
    query = query.order_by(invoice_emails.c.queued_at.desc(), invoice_emails.c.email_id.desc())
    with engine.connect() as conn:
        rows = conn.execute(query.limit(max(1, min(limit, MAX_PAGE)))).mappings()
        return [with_utc(dict(row)) for row in rows]
