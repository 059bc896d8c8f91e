"""Queries over the read models: the only place the API and dashboard get lists and totals from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select

from ledger.invoices import DELETED
from projections.paging import MAX_PAGE, Page, keyset_page, with_utc
from projections.tables import invoice_status, journal

__all__ = ["MAX_PAGE", "BalanceRow", "Page", "invoice_row", "list_invoices", "trial_balance"]


@dataclass(frozen=True)
class BalanceRow:
    currency: str
    account: str
    debit: int
    credit: int

    @property
    def balance(self) -> int:
        return self.debit - self.credit


def trial_balance(engine: Engine) -> list[BalanceRow]:
    """Debits and credits per currency and account, from the journal."""
    query = (
        select(journal.c.currency, journal.c.account, func.sum(journal.c.debit), func.sum(journal.c.credit))
        .group_by(journal.c.currency, journal.c.account)
        .order_by(journal.c.currency, journal.c.account)
    )
    with engine.connect() as conn:
        return [BalanceRow(c, a, int(d), int(cr)) for c, a, d, cr in conn.execute(query)]


def invoice_row(engine: Engine, invoice_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(invoice_status).where(invoice_status.c.invoice_id == invoice_id)).mappings().first()
    return with_utc(dict(row)) if row else None


def list_invoices(
    engine: Engine,
    *,
    status: str | None = None,
    customer: str | None = None,
    currency: str | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page:
    """Invoices newest first, filtered, a page at a time (keyset pagination: stable under inserts).

    `created_from` / `created_to` bound the creation moment as a half-open interval [from, to).
    """
    # A deleted draft is gone, as a read of it says (404); its history is in the log.
    query = select(invoice_status).where(invoice_status.c.status != DELETED)
    # Stored in UTC (SQLite keeps the text without its zone): compare in UTC.
    if created_from is not None:
        query = query.where(invoice_status.c.created_at >= created_from.astimezone(UTC))
    if created_to is not None:
        query = query.where(invoice_status.c.created_at < created_to.astimezone(UTC))
    if status:
        query = query.where(invoice_status.c.status == status)
    if customer:
        query = query.where(invoice_status.c.customer_email == customer)
    if currency:
        query = query.where(invoice_status.c.currency == currency)
    return keyset_page(
        engine, query, invoice_status.c.created_at, invoice_status.c.invoice_id, limit=limit, cursor=cursor
    )
