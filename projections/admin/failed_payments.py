"""Failed payments: open invoices that still ask for money after a failed payment attempt, with
where their dunning stands (projections/admin/dunning.py), latest failure first.

One query per page: invoice_status LEFT JOIN dunning_status (an invoice whose dunning has not
started has no dunning row: its dunning columns are None). Keyset on (last_failure_at,
invoice_id), newest failure first, over the (status, last_failure_at, invoice_id) index.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from ledger.errors import InvalidInputError
from ledger.invoices import OPEN
from projections.admin import keyset
from projections.admin.keyset import TEXT
from projections.paging import MAX_PAGE, Page, with_utc
from projections.tables import dunning_status, invoice_status

LISTING = "failed-payments"

_i = invoice_status.c
_d = dunning_status.c

COLUMNS = (
    _i.invoice_id,
    _i.number,
    _i.customer_email,
    _i.customer_name,
    _i.currency,
    _i.total,
    _i.amount_due,
    _i.due_date,
    _i.failed_attempts,
    _i.last_failure_code,
    _i.last_failure_message,
    _i.last_failure_at,
    _d.status.label("dunning_status"),  # active | exhausted | stopped; None: not started
    _d.steps_done.label("dunning_steps_done"),
    _d.steps_total.label("dunning_steps_total"),
    _d.reminders.label("dunning_reminders"),
    _d.retries.label("dunning_retries"),
    _d.last_step.label("dunning_last_step"),
    _d.last_step_at.label("dunning_last_step_at"),
    _d.next_step.label("dunning_next_step"),
    _d.next_step_at.label("dunning_next_step_at"),
    _d.reason.label("dunning_reason"),
)
KEYS = (_i.last_failure_at, _i.invoice_id)


def failed_payments(engine: Engine, *, currency: str | None = None, limit: int = 50, cursor: str | None = None) -> Page:
    """A page of open invoices with amount due and at least one failed attempt (their
    `last_failure_at` as a datetime), latest failure first."""
    limit = max(1, min(limit, MAX_PAGE))
    query = (
        select(*COLUMNS)
        .select_from(invoice_status.outerjoin(dunning_status, _d.invoice_id == _i.invoice_id))
        .where(_i.status == OPEN, _i.last_failure_at.is_not(None), _i.failed_attempts > 0, _i.amount_due > 0)
    )
    if currency and currency.strip():
        code = currency.strip().lower()
        if len(code) != 3 or not (code.isascii() and code.isalpha()):
            raise InvalidInputError("currency must be a three-letter ISO code", field="currency")
        query = query.where(_i.currency == code)
    if cursor:
        query = query.where(keyset.after(KEYS, keyset.decode(cursor, LISTING, (TEXT, TEXT)), descending=True))
    query = keyset.ordered(query, KEYS, descending=True).limit(limit + 1)
    with engine.connect() as conn:
        rows = [dict(row) for row in conn.execute(query).mappings()]
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = keyset.encode(LISTING, [rows[-1]["last_failure_at"], rows[-1]["invoice_id"]]) if more else None
    return Page([_readable(row) for row in rows], next_cursor)


def _readable(row: dict[str, Any]) -> dict[str, Any]:
    """`last_failure_at` is kept as the event's ISO text (it sorts as the moments do): a datetime here."""
    row["last_failure_at"] = datetime.fromisoformat(row["last_failure_at"])
    return with_utc(row)
