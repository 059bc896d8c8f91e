"""Failed payments: open invoices that still ask for money after a failed payment attempt, with
where their dunning stands (projections/admin/dunning.py), latest failure first.

One query per page: invoice_status LEFT JOIN dunning_status (an invoice whose dunning has not
started has no dunning row: its dunning columns are None). Keyset on (sort column,
invoice_id) (projections/admin/keyset.py), newest failure first by default, over the
(status, last_failure_at, invoice_id) index. The other sorts (amount due, attempts, number)
read the open invoices' failed ones and sort them: the few invoices in dunning, not the table.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from ledger.errors import InvalidInputError
from ledger.invoices import OPEN
from projections.admin import keyset
from projections.admin.keyset import INT, TEXT, Sort
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
    _i.version,  # the page's actions carry it back: a stale page is refused
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
    _d.version.label("dunning_version"),  # None: not started
)
SORTS: dict[str, Sort] = {
    # last_failure_at is the event's ISO text in UTC: it sorts as the moments do.
    "last_failure": Sort((_i.last_failure_at, _i.invoice_id), (TEXT, TEXT), ("last_failure_at", "invoice_id")),
    "amount_due": Sort((_i.amount_due, _i.invoice_id), (INT, TEXT), ("amount_due", "invoice_id")),
    "attempts": Sort((_i.failed_attempts, _i.invoice_id), (INT, TEXT), ("failed_attempts", "invoice_id")),
    # An open invoice always has its number (given when it was issued): never NULL here.
    "number": Sort((_i.number, _i.invoice_id), (TEXT, TEXT), ("number", "invoice_id")),
}


def failed_payments(
    engine: Engine,
    *,
    currency: str | None = None,
    sort: str = "last_failure",
    descending: bool = True,
    limit: int = 50,
    cursor: str | None = None,
) -> Page:
    """A page of open invoices with amount due and at least one failed attempt (their
    `last_failure_at` as a datetime), in the order of `sort` (one of SORTS; ties by invoice_id),
    latest failure first by default. An unknown sort or a cursor of another sort: InvalidInputError."""
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
    with engine.connect() as conn:
        rows, next_cursor = keyset.sorted_page(conn, query, LISTING, SORTS, sort, descending, limit, cursor)
    return Page([_readable(row) for row in rows], next_cursor)


def _readable(row: dict[str, Any]) -> dict[str, Any]:
    """`last_failure_at` is kept as the event's ISO text (it sorts as the moments do): a datetime here."""
    row["last_failure_at"] = datetime.fromisoformat(row["last_failure_at"])
    return with_utc(row)
