"""The dashboard's overview figures, per currency, computed in SQL at query time.

Money is integer minor units, never summed across currencies. `today` and `now` are passed in
(the page's clock), so a figure is the same whenever it is asked for the same moment.

- `amount_due`: what open invoices still ask for (their `amount_due`).
- `overdue`: the part of it on open invoices whose due date is before `today`.
- `uncollectible`: what invoices marked uncollectible are still owed (written off in the books,
  still owed by the customer); aging counts it with `amount_due`, so its total is both.
- `failed_payments` / `failed_amount`: open invoices that still ask for money and have had a
  failed payment attempt, and what they ask for.
- `collected_this_month`: the gross amount of payments applied to invoices (`invoice.payment-
  applied`: captured, fee included, before refunds) in the calendar month (UTC) holding `now`.
  Read from the journal, where every payment that succeeded is applied to its invoice in the
  same transaction, at that moment (the `payments` rows keep no moment of success).
- `open_reconciliation_items`: reconciliation items still open, in that currency (items with no
  currency, e.g. a stuck webhook, count in `Overview.open_reconciliation_items` only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, case, func, literal, or_, select

from ledger.invoices import OPEN, UNCOLLECTIBLE, Invoice
from ledger.reconciliation.items import OPEN as ITEM_OPEN
from projections.receivables import OWING, AgingBuckets
from projections.tables import invoice_status, journal, reconciliation_items

PAYMENT_APPLIED = Invoice.PaymentApplied.TOPIC


@dataclass(frozen=True)
class CurrencyFigures:
    currency: str
    amount_due: int = 0
    open_invoices: int = 0
    overdue: int = 0
    overdue_invoices: int = 0
    uncollectible: int = 0
    failed_payments: int = 0
    failed_amount: int = 0
    collected_this_month: int = 0
    open_reconciliation_items: int = 0


@dataclass(frozen=True)
class Overview:
    today: date
    month_start: date  # the first day of the month `collected_this_month` covers
    currencies: dict[str, CurrencyFigures] = field(default_factory=dict)  # by currency code, sorted
    open_reconciliation_items: int = 0  # every open item, with or without a currency


def overview(engine: Engine, *, today: date, now: datetime) -> Overview:
    """Every figure of the overview, in three queries (invoices, journal, reconciliation items)."""
    month_start = now.astimezone(UTC).date().replace(day=1)
    next_month = (month_start + timedelta(days=32)).replace(day=1)
    figures: dict[str, dict[str, Any]] = {}
    with engine.connect() as conn:
        for row in conn.execute(_invoice_sums(today)).mappings():
            figures.setdefault(row["currency"], {}).update({k: int(v or 0) for k, v in row.items() if k != "currency"})
        for currency, amount in conn.execute(_collected(_midnight(month_start), _midnight(next_month))):
            figures.setdefault(currency, {})["collected_this_month"] = int(amount)
        total_items = 0
        for currency, count in conn.execute(
            select(reconciliation_items.c.currency, func.count())
            .where(reconciliation_items.c.status == ITEM_OPEN)
            .group_by(reconciliation_items.c.currency)
        ):
            total_items += int(count)
            if currency is not None:
                figures.setdefault(currency, {})["open_reconciliation_items"] = int(count)
    currencies = {code: CurrencyFigures(code, **figures[code]) for code in sorted(figures)}
    return Overview(today, month_start, currencies, total_items)


def _invoice_sums(today: date) -> Any:
    c = invoice_status.c
    is_open = c.status == OPEN
    overdue = and_(is_open, c.due_date < literal(today.isoformat()))
    failed = and_(is_open, c.failed_attempts > 0, c.amount_due > 0)

    def total(condition: ColumnElement[bool], value: Any) -> Any:
        return func.sum(case((condition, value), else_=0))

    return (
        select(
            c.currency,
            total(is_open, c.amount_due).label("amount_due"),
            total(and_(is_open, c.amount_due > 0), 1).label("open_invoices"),
            total(overdue, c.amount_due).label("overdue"),
            total(and_(overdue, c.amount_due > 0), 1).label("overdue_invoices"),
            total(c.status == UNCOLLECTIBLE, c.amount_due).label("uncollectible"),
            total(failed, 1).label("failed_payments"),
            total(failed, c.amount_due).label("failed_amount"),
        )
        .where(c.status.in_(OWING))
        .group_by(c.currency)
    )


def _collected(start: datetime, end: datetime) -> Any:
    """Per currency, the gross of the payments applied in [start, end): their postings' debits
    (cash net of the fee, plus the fee) are the amount applied."""
    return (
        select(journal.c.currency, func.sum(journal.c.debit))
        .where(journal.c.event_topic == PAYMENT_APPLIED, journal.c.occurred_at >= start, journal.c.occurred_at < end)
        .group_by(journal.c.currency)
    )


def aging(engine: Engine, today: date) -> dict[str, AgingBuckets]:
    """Per currency, what open and uncollectible invoices still ask for on `today`, by days past
    due (`today - due_date`): current (not yet due, due today, or no due date), 1-30, 31-60,
    61-90, over 90. The same buckets as projections/receivables.py, without the per-customer rows."""
    due_date = invoice_status.c.due_date  # ISO YYYY-MM-DD text: compares as the dates do
    amount = invoice_status.c.amount_due

    def on_or_after(days_ago: int) -> ColumnElement[bool]:
        return due_date >= literal((today - timedelta(days=days_ago)).isoformat())

    buckets: list[ColumnElement[Any]] = [
        case((or_(due_date.is_(None), on_or_after(0)), amount), else_=0),
        case((and_(on_or_after(30), ~on_or_after(0)), amount), else_=0),
        case((and_(on_or_after(60), ~on_or_after(30)), amount), else_=0),
        case((and_(on_or_after(90), ~on_or_after(60)), amount), else_=0),
        case((~on_or_after(90), amount), else_=0),
    ]
    query = (
        select(invoice_status.c.currency, *(func.sum(b) for b in buckets))
        .where(invoice_status.c.status.in_(OWING), amount > 0)
        .group_by(invoice_status.c.currency)
        .order_by(invoice_status.c.currency)
    )
    with engine.connect() as conn:
        return {currency: AgingBuckets(*(int(v) for v in sums)) for currency, *sums in conn.execute(query)}


@dataclass(frozen=True)
class WeekTotal:
    week_start: date  # a Monday
    amount: int


def collections_per_week(engine: Engine, *, now: datetime, weeks: int = 12) -> dict[str, list[WeekTotal]]:
    """Per currency, the gross of the payments applied in each of the last `weeks` weeks (Monday to
    Sunday, UTC), oldest first, the current week (up to `now`'s week end) last; a week without
    payments is 0. One query: each posting's week is found by a CASE over the week starts."""
    if not 1 <= weeks <= 520:
        raise ValueError(f"weeks must be between 1 and 520, got {weeks}")
    this_week = now.astimezone(UTC).date()
    this_week -= timedelta(days=this_week.weekday())
    starts = [this_week - timedelta(weeks=weeks - 1 - i) for i in range(weeks)]
    bounds = [_midnight(day) for day in starts]
    end = _midnight(this_week + timedelta(weeks=1))
    occurred = journal.c.occurred_at
    week = case(*((occurred >= bound, index) for index, bound in reversed(list(enumerate(bounds)))), else_=-1)
    # Grouped in an outer query: PostgreSQL does not see two renderings of the CASE (each with
    # its own parameters) as the same expression.
    postings = (
        select(journal.c.currency, week.label("week"), journal.c.debit)
        .where(journal.c.event_topic == PAYMENT_APPLIED, occurred >= bounds[0], occurred < end)
        .subquery()
    )
    query = select(postings.c.currency, postings.c.week, func.sum(postings.c.debit)).group_by(
        postings.c.currency, postings.c.week
    )
    sums: dict[str, list[int]] = {}
    with engine.connect() as conn:
        for currency, index, amount in conn.execute(query):
            sums.setdefault(currency, [0] * weeks)[int(index)] += int(amount)
    return {
        currency: [WeekTotal(start, amount) for start, amount in zip(starts, amounts, strict=True)]
        for currency, amounts in sorted(sums.items())
    }


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)
