"""Reconciliation items: the latest state of every difference a run found, and its queries.

A row is made from two streams: the item's own events (detected, settled, reopened: its status
and resolution) and the runs that found it (`reconciliation-run.items-found`: the last run that
found it and, while it is open, what that run showed: amounts, explanation, events). An item a
run lists before its detection is stored is skipped there: its detection, later in the same
transaction, carries the same difference. A batch reads back the rows it changes that it did not
create, in one query.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Connection, Engine, Table, func, literal, select

from ledger.errors import InvalidInputError
from ledger.reconciliation.items import CLASSES, EXPLAIN, EXPLAINED, OPEN, RESOLVED, STATUSES, ReconciliationItem
from ledger.reconciliation.runs import ReconciliationRun
from projections.admin import keyset
from projections.admin.keyset import INT, MOMENT, TEXT, Sort
from projections.bulk import upsert_rows
from projections.paging import MAX_PAGE, Page, keyset_page
from projections.reconciliation.rows import Row, from_json, iso, rows_by_key, to_json, utc
from projections.tables import reconciliation_items
from projections.tracked import Positioned

# What a run's listing of an open item refreshes: what it shows of the difference as found now.
SHOWN = ("currency", "amount_ledger", "amount_stripe", "explanation", "events")

items = reconciliation_items
LISTING = "reconciliation-items"
# An item the ledger has no amount for (a Stripe object it never recorded) sorts as the smallest
# amount: keyset paging needs a key that is never NULL, and both databases place NULL differently.
NO_AMOUNT = -(2**63)
AMOUNT_KEY = func.coalesce(items.c.amount_ledger, literal(NO_AMOUNT, BigInteger)).label("amount_key")
# Items are few next to invoices (the differences runs found): the sorts other than detection's
# (its index) read the filtered items and sort them.
SORTS: dict[str, Sort] = {
    "detected": Sort((items.c.detected_at, items.c.item_id), (MOMENT, TEXT), ("detected_at", "item_id")),
    "amount": Sort((AMOUNT_KEY, items.c.item_id), (INT, TEXT), ("amount_key", "item_id")),
    # Within a class, by detection (newest first when descending).
    "class": Sort(
        (items.c["class"], items.c.detected_at, items.c.item_id),
        (TEXT, MOMENT, TEXT),
        ("class", "detected_at", "item_id"),
    ),
}


class ReconciliationItemsProjection:
    name = "reconciliation_items"
    tables: tuple[Table, ...] = (reconciliation_items,)
    kinds: tuple[type, ...] = (
        ReconciliationItem.Event,
        ReconciliationRun.ItemsFound,
    )  # the events it reads (projections/tracked.py)

    def prepare(self, batch: Sequence[Positioned]) -> None:
        pass  # everything comes from the events and the rows already stored

    def process(self, conn: Connection, batch: Sequence[Positioned]) -> None:
        rows = rows_by_key(conn, items, items.c.item_id, _stored_ids(batch))
        changed: dict[str, Row] = {}
        for _, event in batch:
            if isinstance(event, ReconciliationItem.Event):
                item_id = str(event.originator_id)
                row = _applied(rows.get(item_id), event)
                if row is None:
                    continue
                rows[item_id] = changed[item_id] = row
            elif isinstance(event, ReconciliationRun.ItemsFound):
                for found in event.items:
                    row = rows.get(str(found["id"]))
                    if row is None:
                        continue  # detected later in the run's transaction, with this same difference
                    _refresh(row, found, run_id=str(event.originator_id), at=event.timestamp)
                    changed[row["item_id"]] = row
        upsert_rows(conn, items, list(changed.values()), ["item_id"])

    def reset(self) -> None:
        pass  # nothing kept between batches


def _stored_ids(batch: Sequence[Positioned]) -> set[str]:
    """The items the batch changes that it does not detect first: their rows are read back."""
    detected: set[str] = set()
    wanted: set[str] = set()
    for _, event in batch:
        if isinstance(event, ReconciliationItem.Detected):
            detected.add(str(event.originator_id))
        elif isinstance(event, ReconciliationItem.Event):
            wanted.add(str(event.originator_id))
        elif isinstance(event, ReconciliationRun.ItemsFound):
            wanted.update(str(found["id"]) for found in event.items)
    return wanted - detected


def _applied(row: Row | None, event: ReconciliationItem.Event) -> Row | None:
    if isinstance(event, ReconciliationItem.Detected):
        return {
            "item_id": str(event.originator_id),
            **_difference(event.difference),
            "status": OPEN,
            "detected_at": event.timestamp,
            "last_run_id": event.run_id,
            "resolution": None,
            "updated_at": event.timestamp,
            "version": event.originator_version,
        }
    if row is None:  # a later event without its detection: not in a log the aggregate wrote
        return None
    if isinstance(event, ReconciliationItem.Settled):
        resolution = {
            "by": event.by,
            "at": event.timestamp.isoformat(),
            "action": event.action,
            "note": event.note,
            "events": list(event.events),
        }
        row.update(status=EXPLAINED if event.action == EXPLAIN else RESOLVED, resolution=to_json(resolution))
    elif isinstance(event, ReconciliationItem.Reopened):
        row.update(_difference(event.difference), status=OPEN, resolution=None, last_run_id=event.run_id)
    row.update(updated_at=event.timestamp, version=event.originator_version)
    return row


def _difference(difference: dict[str, Any]) -> Row:
    return {
        "class": difference["cls"],
        "currency": difference["currency"],
        "amount_ledger": difference["amount_ledger"],
        "amount_stripe": difference["amount_stripe"],
        "stripe_id": difference["stripe_id"],
        "invoice_id": difference["invoice_id"],
        "payment_id": difference["payment_id"],
        "explanation": difference["explanation"],
        "events": to_json(difference.get("events") or []),
    }


def _refresh(row: Row, found: dict[str, Any], *, run_id: str, at: datetime) -> None:
    row["last_run_id"] = run_id
    if row["status"] == OPEN:
        shown = {key: found[key] for key in SHOWN if key in found}
        if "events" in shown:
            shown["events"] = to_json(shown["events"] or [])
        row.update(shown)
    row["updated_at"] = at


# --------------------------------------------------------------------------- queries


def item_of(row: Row) -> dict[str, Any]:
    """A stored row as the report's item: the fixed JSON shape, moments in ISO 8601 UTC."""
    return {
        "id": row["item_id"],
        "class": row["class"],
        "status": row["status"],
        "currency": row["currency"],
        "amount_ledger": row["amount_ledger"],
        "amount_stripe": row["amount_stripe"],
        "stripe_id": row["stripe_id"],
        "invoice_id": row["invoice_id"],
        "payment_id": row["payment_id"],
        "explanation": row["explanation"],
        "events": from_json(row["events"]),
        "detected_at": iso(row["detected_at"]),
        "resolution": from_json(row["resolution"]),
    }


def item_row(engine: Engine, item_id: str) -> dict[str, Any] | None:
    """The item as the report shows it, or None when no run found it."""
    with engine.connect() as conn:
        row = conn.execute(select(items).where(items.c.item_id == item_id)).mappings().first()
    return item_of(dict(row)) if row else None


def list_items(
    engine: Engine,
    *,
    cls: str | None = None,
    status: str | None = None,
    detected_from: datetime | None = None,
    detected_to: datetime | None = None,
    limit: int = 50,
    cursor: str | None = None,
    sort: str | None = None,
    descending: bool = True,
) -> Page:
    """Items newest detection first, a page at a time (keyset pagination: stable under inserts).

    `detected_from` / `detected_to` bound the first detection as a half-open interval [from, to).
    An unknown class or status is an `InvalidInputError` naming it.

    `sort` (one of SORTS: the dashboard's sortable list) orders by that column in the direction
    `descending` says, ties by item_id, with cursors of projections/admin/keyset.py naming the
    sort; without it (the API) the order and cursors are projections/paging.py's, as ever.
    """
    query = select(items, AMOUNT_KEY) if sort is not None else select(items)
    if cls is not None:
        if cls not in CLASSES:
            raise InvalidInputError(f"unknown class {cls!r}; one of: {', '.join(CLASSES)}", field="class")
        query = query.where(items.c["class"] == cls)
    if status is not None:
        if status not in STATUSES:
            raise InvalidInputError(f"unknown status {status!r}; one of: {', '.join(STATUSES)}", field="status")
        query = query.where(items.c.status == status)
    if detected_from is not None:
        query = query.where(items.c.detected_at >= utc(detected_from))
    if detected_to is not None:
        query = query.where(items.c.detected_at < utc(detected_to))
    if sort is not None:
        with engine.connect() as conn:
            rows, next_cursor = keyset.sorted_page(
                conn, query, LISTING, SORTS, sort, descending, max(1, min(limit, MAX_PAGE)), cursor
            )
        return Page([item_of(row) for row in rows], next_cursor)
    page = keyset_page(engine, query, items.c.detected_at, items.c.item_id, limit=limit, cursor=cursor)
    return Page([item_of(row) for row in page.rows], page.next_cursor)


def open_items(engine: Engine, classes: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Every open item (of `classes`, when given), oldest detection first: what a run must find
    again, or mark fixed."""
    query = select(items).where(items.c.status == OPEN)
    if classes is not None:
        query = query.where(items.c["class"].in_(list(classes)))
    query = query.order_by(items.c.detected_at, items.c.item_id)
    with engine.connect() as conn:
        return [item_of(dict(row)) for row in conn.execute(query).mappings()]


def item_counts(engine: Engine) -> dict[str, dict[str, int]]:
    """How many items of each class are in each status, in one grouped query: {class: {status: n}}."""
    query = select(items.c["class"], items.c.status, func.count()).group_by(items.c["class"], items.c.status)
    counts: dict[str, dict[str, int]] = {}
    with engine.connect() as conn:
        for cls, status, count in conn.execute(query):
            counts.setdefault(cls, {})[status] = int(count)
    return counts
