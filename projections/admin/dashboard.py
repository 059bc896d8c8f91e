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

from sqlalchemy import ColumnElement, Connection, Date, Engine, Select, and_, case, cast, func, select

from ledger.invoices import UNCOLLECTIBLE, Invoice
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
    figures: dict[str, dict[str, int]] = {}
    with engine.connect() as conn:
        for day in _owing_by_due_date(conn):
            fold = figures.setdefault(day.currency, {})
            if day.status == UNCOLLECTIBLE:
                _add(fold, uncollectible=day.amount_due)
                continue
            _add(fold, amount_due=day.amount_due, open_invoices=day.owing, failed_payments=day.failed)
            _add(fold, failed_amount=day.failed_amount)
            if day.due_date is not None and day.due_date < today.isoformat():
                _add(fold, overdue=day.amount_due, overdue_invoices=day.owing)
        for currency, amount in conn.execute(_collected(_midnight(month_start), _midnight(next_month))):
            _add(figures.setdefault(currency, {}), collected_this_month=int(amount))
        total_items = 0
        for currency, count in conn.execute(
            select(reconciliation_items.c.currency, func.count())
            .where(reconciliation_items.c.status == ITEM_OPEN)
            .group_by(reconciliation_items.c.currency)
        ):
            total_items += int(count)
            if currency is not None:
                _add(figures.setdefault(currency, {}), open_reconciliation_items=int(count))
    currencies = {code: CurrencyFigures(code, **figures[code]) for code in sorted(figures)}
    return Overview(today, month_start, currencies, total_items)


def _add(figures: dict[str, int], **amounts: int) -> None:
    for name, amount in amounts.items():
        figures[name] = figures.get(name, 0) + amount


@dataclass(frozen=True)
class _Owing:
    """The sums of one (status, currency, due date) of the owing invoices."""

    status: str
    currency: str
    due_date: str | None
    amount_due: int
    owing: int  # invoices with something due
    failed: int  # of those, with a failed payment attempt
    failed_amount: int


def _owing_by_due_date(conn: Connection) -> list[_Owing]:
    """Open and uncollectible invoices summed per (status, currency, due date), grouped in the
    order of the `ix_invoice_status_owing` index, which holds every column read: one pass over
    the index, no sort, no table row. The overview and the aging then fold a few thousand
    rows (a day per row) instead of the database testing every invoice against each figure's
    condition (measured on 100,000 invoices, SQLite: ~14 ms against ~55 ms)."""
    c = invoice_status.c
    owing = c.amount_due > 0
    failed = and_(owing, c.failed_attempts > 0)
    query = (
        select(
            c.status,
            c.currency,
            c.due_date,
            func.sum(c.amount_due),
            func.sum(case((owing, 1), else_=0)),
            func.sum(case((failed, 1), else_=0)),
            func.sum(case((failed, c.amount_due), else_=0)),
        )
        .where(c.status.in_(OWING))
        .group_by(c.status, c.currency, c.due_date)
    )
    return [
        _Owing(status, currency, due_date, int(due), int(count), int(failed_count), int(failed_due))
        for status, currency, due_date, due, count, failed_count, failed_due in conn.execute(query)
    ]


def _collected(start: datetime, end: datetime) -> Select[Any]:
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
    61-90, over 90. The buckets of projections/receivables.py, without the per-customer rows."""
    sums: dict[str, list[int]] = {}
    with engine.connect() as conn:
        for day in _owing_by_due_date(conn):
            buckets = sums.setdefault(day.currency, [0] * 5)
            buckets[_bucket(day.due_date, today)] += day.amount_due
    return {currency: AgingBuckets(*amounts) for currency, amounts in sorted(sums.items()) if any(amounts)}


def _bucket(due_date: str | None, today: date) -> int:
    if due_date is None:
        return 0
    late = (today - date.fromisoformat(due_date)).days
    if late <= 0:
        return 0
    return 1 if late <= 30 else 2 if late <= 60 else 3 if late <= 90 else 4


@dataclass(frozen=True)
class WeekTotal:
    week_start: date  # a Monday
    amount: int


def collections_per_week(engine: Engine, *, now: datetime, weeks: int = 12) -> dict[str, list[WeekTotal]]:
    """Per currency, the gross of the payments applied in each of the last `weeks` weeks (Monday
    to Sunday, UTC), oldest first, the current week last; a week without payments is 0.

    One query sums per currency and UTC day (a few hundred rows, from the covering journal
    index); the days are folded into weeks here."""
    if not 1 <= weeks <= 520:
        raise ValueError(f"weeks must be between 1 and 520, got {weeks}")
    today = now.astimezone(UTC).date()
    first = today - timedelta(days=today.weekday()) - timedelta(weeks=weeks - 1)
    end = first + timedelta(weeks=weeks)
    day = _utc_day(engine)
    query = (
        select(journal.c.currency, day, func.sum(journal.c.debit))
        .where(
            journal.c.event_topic == PAYMENT_APPLIED,
            journal.c.occurred_at >= _midnight(first),
            journal.c.occurred_at < _midnight(end),
        )
        .group_by(journal.c.currency, day)
    )
    sums: dict[str, list[int]] = {}
    with engine.connect() as conn:
        for currency, on, amount in conn.execute(query):
            index = (date.fromisoformat(str(on)[:10]) - first).days // 7
            sums.setdefault(currency, [0] * weeks)[index] += int(amount)
    return {
        currency: [WeekTotal(first + timedelta(weeks=i), amount) for i, amount in enumerate(amounts)]
        for currency, amounts in sorted(sums.items())
    }


def _utc_day(engine: Engine) -> ColumnElement[Any]:
    """The UTC day of a posting (its text starts YYYY-MM-DD). SQLite keeps the moment as UTC text
    (`YYYY-MM-DD HH:MM:SS...`); PostgreSQL's timestamptz is read in UTC whatever the session's zone,
    then cast to a date: `to_char` per row cost 110-150 ms over the 52,000 postings of 12 weeks
    at 100,000 invoices (bench/admin.py), the cast about 30 ms."""
    if engine.dialect.name == "postgresql":
        return cast(func.timezone("UTC", journal.c.occurred_at), Date)
    return func.substr(journal.c.occurred_at, 1, 10)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)
