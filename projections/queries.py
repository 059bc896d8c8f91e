"""Queries over the read models: the only place the API and dashboard get lists and totals from."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select

from ledger.errors import InvalidInputError
from projections.tables import invoice_status, journal

MAX_PAGE = 200


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    next_cursor: str | None


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
    return _with_utc(dict(row)) if row else None


def list_invoices(
    engine: Engine,
    *,
    status: str | None = None,
    customer: str | None = None,
    currency: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page:
    """Invoices newest first, filtered, a page at a time (keyset pagination: stable under inserts)."""
    limit = max(1, min(limit, MAX_PAGE))
    query = select(invoice_status)
    if status:
        query = query.where(invoice_status.c.status == status)
    if customer:
        query = query.where(invoice_status.c.customer_email == customer)
    if currency:
        query = query.where(invoice_status.c.currency == currency)
    if cursor:
        created_at, invoice_id = _decode(cursor)
        created_at = created_at.astimezone(UTC).replace(tzinfo=None) if not _is_pg(engine) else created_at
        query = query.where(
            or_(
                invoice_status.c.created_at < created_at,
                and_(invoice_status.c.created_at == created_at, invoice_status.c.invoice_id < invoice_id),
            )
        )
    query = query.order_by(invoice_status.c.created_at.desc(), invoice_status.c.invoice_id.desc()).limit(limit + 1)
    with engine.connect() as conn:
        rows = [_with_utc(dict(r)) for r in conn.execute(query).mappings()]
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, _encode(rows[-1]) if more else None)


def _is_pg(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def _encode(row: dict[str, Any]) -> str:
    raw = json.dumps([row["created_at"].isoformat(), row["invoice_id"]]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode(cursor: str) -> tuple[datetime, str]:
    try:
        created_at, invoice_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(created_at), str(invoice_id)
    except (ValueError, TypeError):
        raise InvalidInputError("cursor is not one this API returned", field="cursor") from None


def _with_utc(row: dict[str, Any]) -> dict[str, Any]:
    """SQLite returns naive datetimes; every stored moment is UTC, so say so."""
    for key, value in row.items():
        if isinstance(value, datetime) and value.tzinfo is None:
            row[key] = value.replace(tzinfo=UTC)
    return row
