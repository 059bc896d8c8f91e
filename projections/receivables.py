"""Customer balances and receivables aging, per currency, queried from the invoice status table.

Nothing is stored for these: aging depends on the day it is asked for, so it is computed from
each owing invoice's `amount_due` and `due_date` at query time, in SQL, in integer minor units.

Only open and uncollectible invoices owe money (an uncollectible invoice is written off in the
journal but is still owed by the customer, as in Stripe). Paid, void, draft and deleted ones owe
nothing. An invoice's days past due are `today - due_date`: 0 or less (or no due date) is
current; then 1-30, 31-60, 61-90 and over 90 days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, case, func, literal, or_, select

from ledger.invoices import OPEN, UNCOLLECTIBLE
from projections.tables import invoice_status

OWING = (OPEN, UNCOLLECTIBLE)


@dataclass(frozen=True)
class CustomerBalance:
    customer_email: str
    currency: str
    amount_due: int  # what the customer's open and uncollectible invoices still ask for
    credit: int  # overpayments not refunded: money we hold for the customer
    open_invoices: int  # invoices that owe money (open or uncollectible)

    @property
    def net(self) -> int:
        """What the customer owes once its credit is counted; negative when we owe them."""
        return self.amount_due - self.credit


@dataclass(frozen=True)
class AgingBuckets:
    current: int = 0  # not yet due, due today, or no due date
    days_1_30: int = 0
    days_31_60: int = 0
    days_61_90: int = 0
    days_over_90: int = 0

    @property
    def total(self) -> int:
        return self.current + self.days_1_30 + self.days_31_60 + self.days_61_90 + self.days_over_90

    def __add__(self, other: AgingBuckets) -> AgingBuckets:
        return AgingBuckets(
            self.current + other.current,
            self.days_1_30 + other.days_1_30,
            self.days_31_60 + other.days_31_60,
            self.days_61_90 + other.days_61_90,
            self.days_over_90 + other.days_over_90,
        )


@dataclass(frozen=True)
class AgingRow:
    customer_email: str
    currency: str
    buckets: AgingBuckets


@dataclass(frozen=True)
class Aging:
    today: date
    rows: list[AgingRow]  # by currency, then customer
    totals: dict[str, AgingBuckets]  # per currency


def customer_balances(engine: Engine, *, currency: str | None = None) -> list[CustomerBalance]:
    """Per customer and currency: amount due, credit and owing invoices; customers with neither
    anything due nor any credit are left out."""
    owing = invoice_status.c.status.in_(OWING)
    credit = invoice_status.c.amount_overpaid - invoice_status.c.credit_refunded
    query = (
        select(
            invoice_status.c.customer_email,
            invoice_status.c.currency,
            func.sum(case((owing, invoice_status.c.amount_due), else_=0)),
            func.sum(credit),
            func.sum(case((owing, 1), else_=0)),
        )
        .where(or_(owing, credit > 0))
        .group_by(invoice_status.c.customer_email, invoice_status.c.currency)
        .order_by(invoice_status.c.currency, invoice_status.c.customer_email)
    )
    if currency:
        query = query.where(invoice_status.c.currency == currency)
    with engine.connect() as conn:
        return [
            CustomerBalance(email, cur, int(due), int(held), int(count))
            for email, cur, due, held, count in conn.execute(query)
        ]


def receivables_aging(engine: Engine, today: date, currency: str | None = None) -> Aging:
    """What each customer owes on `today`, per currency, split by how long it is past due."""
    due_date = invoice_status.c.due_date  # ISO YYYY-MM-DD text: compares as the dates do

    def on_or_after(days_ago: int) -> ColumnElement[bool]:
        return due_date >= literal((today - timedelta(days=days_ago)).isoformat())

    amount = invoice_status.c.amount_due
    buckets: list[ColumnElement[Any]] = [
        case((or_(due_date.is_(None), on_or_after(0)), amount), else_=0),
        case((and_(on_or_after(30), ~on_or_after(0)), amount), else_=0),
        case((and_(on_or_after(60), ~on_or_after(30)), amount), else_=0),
        case((and_(on_or_after(90), ~on_or_after(60)), amount), else_=0),
        case((~on_or_after(90), amount), else_=0),
    ]
    query = (
        select(invoice_status.c.customer_email, invoice_status.c.currency, *(func.sum(b) for b in buckets))
        .where(invoice_status.c.status.in_(OWING), amount > 0)
        .group_by(invoice_status.c.customer_email, invoice_status.c.currency)
        .order_by(invoice_status.c.currency, invoice_status.c.customer_email)
    )
    if currency:
        query = query.where(invoice_status.c.currency == currency)
    with engine.connect() as conn:
        rows = [
            AgingRow(email, cur, AgingBuckets(*(int(v) for v in sums))) for email, cur, *sums in conn.execute(query)
        ]
    totals: dict[str, AgingBuckets] = {}
    for row in rows:
        totals[row.currency] = totals.get(row.currency, AgingBuckets()) + row.buckets
    return Aging(today, rows, totals)
