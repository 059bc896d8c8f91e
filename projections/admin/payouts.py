"""Payouts for the dashboard: the list with each payout's reconciliation status, and one payout
with its journal postings, the reconciliation items about it and the fees taken on it.

A payout's reconciliation status:
- `open`: a reconciliation item about it (its provider id) is still open (`open_items` says how many);
- `matched`: a completed run covered the moment it was reported and no item about it is open
  (items found earlier and resolved or explained count as matched);
- `never checked`: no completed run covered it and no item names it.
Computed in the page's one query (correlated subqueries on the items' stripe_id index and on
the runs), never a query per payout.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, and_, case, exists, func, select

from ledger.errors import InvalidInputError
from ledger.payouts import FAILED, IN_TRANSIT, PAID
from ledger.reconciliation.items import OPEN as ITEM_OPEN
from ledger.reconciliation.runs import COMPLETED
from projections.admin import keyset
from projections.admin.keyset import INT, MOMENT, TEXT, Sort
from projections.paging import MAX_PAGE, Page, with_utc
from projections.reconciliation.items import item_of
from projections.tables import journal, payouts, processor_fees, reconciliation_items, reconciliation_runs

LISTING = "payouts"
STATUSES = (IN_TRANSIT, PAID, FAILED)
MATCHED = "matched"
OPEN_ITEMS = "open"
NEVER_CHECKED = "never checked"

_p = payouts.c
_items = reconciliation_items.c
_runs = reconciliation_runs.c
# Payouts are few (about one a day per account): a sort other than the reported_at index's reads
# them all and sorts them, which costs less than an index each would to keep.
SORTS: dict[str, Sort] = {
    "reported": Sort((_p.reported_at, _p.payout_id), (MOMENT, TEXT), ("reported_at", "payout_id")),
    "amount": Sort((_p.amount, _p.payout_id), (INT, TEXT), ("amount", "payout_id")),
    # Within a status, by reported moment (newest first when descending).
    "status": Sort(
        (_p.status, _p.reported_at, _p.payout_id), (TEXT, MOMENT, TEXT), ("status", "reported_at", "payout_id")
    ),
}


def _reconciliation_columns() -> list[Any]:
    about = _items.stripe_id == _p.provider_payout_id
    open_items = (
        select(func.count())
        .select_from(reconciliation_items)
        .where(about, _items.status == ITEM_OPEN)
        .scalar_subquery()
    )
    any_item = exists().where(about)
    checked = exists().where(
        _runs.status == COMPLETED, _runs.period_start <= _p.reported_at, _runs.period_end > _p.reported_at
    )
    status = case(
        (open_items > 0, OPEN_ITEMS),
        (checked | any_item, MATCHED),
        else_=NEVER_CHECKED,
    )
    return [open_items.label("open_items"), status.label("reconciliation")]


def list_payouts(
    engine: Engine,
    *,
    status: str | None = None,
    sort: str = "reported",
    descending: bool = True,
    limit: int = 50,
    cursor: str | None = None,
) -> Page:
    """Payouts in the order of `sort` (one of SORTS, ties by payout_id), newest reported first by
    default, each with `open_items` and `reconciliation` (see above). An unknown sort or a cursor
    of another sort: InvalidInputError."""
    limit = max(1, min(limit, MAX_PAGE))
    query = select(payouts, *_reconciliation_columns())
    if status:
        if status not in STATUSES:
            raise InvalidInputError(f"status must be one of {', '.join(STATUSES)}", field="status")
        query = query.where(_p.status == status)
    with engine.connect() as conn:
        rows, next_cursor = keyset.sorted_page(conn, query, LISTING, SORTS, sort, descending, limit, cursor)
    return Page(rows, next_cursor)


def payout_detail(engine: Engine, payout_id: str) -> dict[str, Any] | None:
    """The payout's row with its reconciliation status, plus `postings` (its journal rows, in log
    order), `items` (reconciliation items about it, as the report shows them, oldest first) and
    `fees` (processor fees taken on the payout itself, e.g. an instant payout's); None if unknown."""
    with engine.connect() as conn:
        found = (
            conn.execute(select(payouts, *_reconciliation_columns()).where(_p.payout_id == payout_id))
            .mappings()
            .first()
        )
        if found is None:
            return None
        payout = with_utc(dict(found))
        provider_id = payout["provider_payout_id"]
        postings = conn.execute(
            select(journal).where(journal.c.payout_id == payout_id).order_by(journal.c.position, journal.c.line)
        ).mappings()
        payout["postings"] = [with_utc(dict(row)) for row in postings]
        items = conn.execute(
            select(reconciliation_items)
            .where(_items.stripe_id == provider_id)
            .order_by(_items.detected_at, _items.item_id)
        ).mappings()
        payout["items"] = [item_of(dict(row)) for row in items]
        fees = conn.execute(
            select(processor_fees)
            .where(and_(processor_fees.c.source_id == provider_id))
            .order_by(processor_fees.c.recorded_at, processor_fees.c.fee_id)
        ).mappings()
        payout["fees"] = [with_utc(dict(row)) for row in fees]
    return payout
