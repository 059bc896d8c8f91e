"""The client portal's list of one customer's invoices, from the invoice_status read model.

Open invoices (something to pay) come first, then the others a customer has seen: paid, void,
uncollectible. Drafts and deleted drafts are not the customer's to see. Within each group the
newest comes first, ties broken by invoice id; pages follow a keyset cursor (the group, then
created_at and id of the last row), so a page deep in a long history costs a page's rows.

Addresses are compared case aside: a portal link keeps the customer's address lower-cased, and
an invoice written to "Ann@Example.com" is that customer's too (as the invoice page's own check,
`PortalLink.shows`, says). The query matches `lower(customer_email)`, read through the index on
that expression (migration 0008): one customer's invoices, however many the ledger holds.
SQLite's lower() folds ASCII letters only (PostgreSQL's follows the database's collation), so
each spelling the caller passes is matched both Unicode-lower-cased and ASCII-lower-cased: the
caller passes every spelling it knows of (the link's and the one on the invoice it was made for).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Engine, Select, and_, func, or_, select

from ledger.errors import InvalidInputError
from ledger.invoices import OPEN, PAID, UNCOLLECTIBLE, VOID
from projections.paging import MAX_PAGE, Page, with_utc
from projections.tables import invoice_status

OPEN_GROUP = 0
CLOSED_GROUP = 1
CLOSED = (PAID, VOID, UNCOLLECTIBLE)
COLUMNS = (
    invoice_status.c.invoice_id,
    invoice_status.c.number,
    invoice_status.c.status,
    invoice_status.c.currency,
    invoice_status.c.total,
    invoice_status.c.amount_due,
    invoice_status.c.due_date,
    invoice_status.c.created_at,
    invoice_status.c.issued_at,
    invoice_status.c.paid_at,
)


def customer_invoices(engine: Engine, emails: Collection[str], *, limit: int = 25, cursor: str | None = None) -> Page:
    """A page of the customer's invoices: open ones first, then paid, void and uncollectible."""
    limit = max(1, min(limit, MAX_PAGE))
    group, after = _decode(cursor) if cursor else (OPEN_GROUP, None)
    rows: list[dict[str, Any]] = []
    with engine.connect() as conn:
        for current in (OPEN_GROUP, CLOSED_GROUP):
            if current < group:
                continue
            query = _group(engine, emails, current, after if current == group else None, limit + 1 - len(rows))
            rows += [{**with_utc(dict(row)), "group": current} for row in conn.execute(query).mappings()]
            if len(rows) > limit:
                break
    more = len(rows) > limit
    rows = rows[:limit]
    if not more:
        return Page(rows, None)
    last = rows[-1]
    return Page(rows, _encode(last["group"], last["created_at"], last["invoice_id"]))


def _group(
    engine: Engine, emails: Collection[str], group: int, after: tuple[datetime, str] | None, limit: int
) -> Select[Any]:
    statuses = (OPEN,) if group == OPEN_GROUP else CLOSED
    query = select(*COLUMNS).where(
        func.lower(invoice_status.c.customer_email).in_(_folded(emails)), invoice_status.c.status.in_(statuses)
    )
    if after is not None:
        created_at, key = after
        if engine.dialect.name != "postgresql":  # SQLite stores naive UTC
            created_at = created_at.astimezone(UTC).replace(tzinfo=None)
        created = invoice_status.c.created_at
        query = query.where(or_(created < created_at, and_(created == created_at, invoice_status.c.invoice_id < key)))
    return query.order_by(invoice_status.c.created_at.desc(), invoice_status.c.invoice_id.desc()).limit(limit)


def _folded(emails: Collection[str]) -> list[str]:
    """What lower(customer_email) is for each spelling, on either backend's lower()."""
    folded: set[str] = set()
    for email in emails:
        address = email.strip()
        folded |= {address.lower(), "".join(c.lower() if c.isascii() else c for c in address)}
    return sorted(folded)


def _encode(group: int, created_at: datetime, key: str) -> str:
    raw = json.dumps([group, created_at.isoformat(), key]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode(cursor: str) -> tuple[int, tuple[datetime, str]]:
    try:
        group, created_at, key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        moment = datetime.fromisoformat(created_at)
        if group not in (OPEN_GROUP, CLOSED_GROUP) or not isinstance(key, str):
            raise ValueError(cursor)
    except (ValueError, TypeError, OverflowError, RecursionError):
        raise InvalidInputError("cursor is not one this page made", field="cursor") from None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return int(group), (moment, key)


def invoice_id_by_number(engine: Engine, number: str) -> UUID | None:
    """The invoice with that number (numbers are unique within a series, and series are named
    apart), for `ledger portal link INV-0001`."""
    with engine.connect() as conn:
        found = conn.execute(select(invoice_status.c.invoice_id).where(invoice_status.c.number == number)).first()
    return None if found is None else UUID(found[0])
