"""Which invoices a dunning pass should look at, from the invoice status read model.

- Open invoices that still ask for money and are overdue on `today` (due date before it), or
  have no due date and a failed payment attempt: their dunning may have a step due. With a
  schedule that reminds before the due date (`first_day` below 1: its first step's day,
  counted from the due date), also those due within that many days.
- Invoices no longer open (paid, void, uncollectible) whose due date (or, without one, last
  failed attempt) falls within the last `lookback_days`: a dunning that was running for them
  is stopped. Older ones had their pass while their schedule ran.

The pass decides from the event store, not from these rows: a stale row only means an invoice
is looked at once more, or a pass later, never that a step is taken twice.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import Engine, and_, or_, select

from ledger.invoices import OPEN, PAID, UNCOLLECTIBLE, VOID
from projections.tables import invoice_status

CLOSED = (PAID, VOID, UNCOLLECTIBLE)


def dunning_candidates(engine: Engine, *, today: date, lookback_days: int, first_day: int = 1) -> list[str]:
    """Invoice ids, oldest due first (then by id, so that a pass is repeatable)."""
    rows = invoice_status.c
    since = (today - timedelta(days=lookback_days)).isoformat()
    latest_due = (today - timedelta(days=first_day)).isoformat()  # due on or before it: a step may be due
    no_due_date_but_failed = and_(rows.due_date.is_(None), rows.failed_attempts > 0)
    owing = and_(
        rows.status == OPEN,
        rows.amount_due > 0,
        or_(rows.due_date <= latest_due, no_due_date_but_failed),
    )
    recently_closed = and_(
        rows.status.in_(CLOSED),
        or_(
            and_(rows.due_date >= since, rows.due_date <= latest_due),
            and_(no_due_date_but_failed, rows.last_failure_at >= since),
        ),
    )
    query = (
        select(rows.invoice_id)
        .where(or_(owing, recently_closed))
        .order_by(rows.due_date.is_(None), rows.due_date, rows.invoice_id)
    )
    with engine.connect() as conn:
        return [str(invoice_id) for (invoice_id,) in conn.execute(query)]
