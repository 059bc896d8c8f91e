"""The webhook inbox: one row per provider event received, with what was done with it.

Fed by `provider-event.*` (commands/ingestion/provider_events.py): `received` (kept, not handled
yet) until its first `Handled`, then the outcome as a status; a waiting event's release and an
operator's reprocessing move it on. The statuses an operator reads:

- `applied`: it moved money or changed a payment, an invoice or a checkout;
- `duplicate`: what it reports was applied already (a second report of the same money);
- `waiting`: a refund or dispute for a payment not reported yet, applied when it arrives;
- `unmatched`: it names nothing we know (kept for reconciliation; can be reprocessed);
- `ignored`: a type the ledger does not act on, or nothing new;
- `rejected`: a rule forbids it or its object did not decode (the command's `refused`);
- `received`: recorded, never handled.

Stripe writes the object an event reports in `data.object`; its id is kept as `object_id`, read
from the raw payload (the only JSON this read model parses, once per event).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Table, select

from commands.ingestion.provider_events import (
    APPLIED,
    DUPLICATE,
    IGNORED,
    REFUSED,
    UNMATCHED,
    WAITING,
    ProviderEvent,
)
from projections.admin import keyset
from projections.bulk import upsert_rows
from projections.paging import MAX_PAGE, Page, keyset_page, with_utc
from projections.tables import webhook_events
from projections.tracked import Positioned

RECEIVED = "received"
REJECTED = "rejected"
STATUSES = (APPLIED, DUPLICATE, WAITING, UNMATCHED, IGNORED, REJECTED, RECEIVED)
# Events that need someone: not matched to anything of ours, or waiting for a payment.
STUCK = (UNMATCHED, WAITING)

_STATUS_OF_OUTCOME = {REFUSED: REJECTED}
_CHUNK = 500  # ids per IN (...) when reading the rows a batch updates


def status_of(outcome: str | None) -> str:
    if outcome is None:
        return RECEIVED
    return _STATUS_OF_OUTCOME.get(outcome, outcome)


class WebhookInboxProjection:
    name = "webhook_inbox"
    tables: tuple[Table, ...] = (webhook_events,)
    kinds: tuple[type, ...] = (
        ProviderEvent.Received,
        ProviderEvent.Handled,
        ProviderEvent.Reprocessed,
    )  # the events it reads (projections/tracked.py)

    def prepare(self, batch: Sequence[Positioned]) -> None:
        """Every event carries what its row needs (or the row holds it): nothing to read first."""

    def process(self, conn: Connection, batch: Sequence[Positioned]) -> None:
        rows: dict[str, dict[str, Any]] = {}
        outcomes: list[ProviderEvent.Handled | ProviderEvent.Reprocessed] = []
        for position, event in batch:
            if isinstance(event, ProviderEvent.Received):
                rows[str(event.originator_id)] = _received_row(position, event)
            elif isinstance(event, (ProviderEvent.Handled, ProviderEvent.Reprocessed)):
                outcomes.append(event)
        missing = {str(e.originator_id) for e in outcomes} - rows.keys()
        rows.update(_stored_rows(conn, sorted(missing)))
        for event in outcomes:
            row = rows.get(str(event.originator_id))
            if row is None:  # never: an event's Received precedes its outcomes in the log
                continue
            row["status"] = status_of(event.outcome)
            row["detail"] = event.detail
            row["handled_at"] = event.timestamp
            row["version"] = event.originator_version
        upsert_rows(conn, webhook_events, list(rows.values()), ["event_key"])

    def reset(self) -> None:
        """No state is kept between batches."""


def _received_row(position: int, event: ProviderEvent.Received) -> dict[str, Any]:
    return {
        "event_key": str(event.originator_id),
        "provider": event.provider,
        "event_id": event.event_id,
        "event_type": event.event_type,
        "object_id": object_id_of(event.payload),
        "created": event.created,
        "received_at": event.timestamp,
        "handled_at": None,
        "status": RECEIVED,
        "detail": "",
        "api_version": event.api_version,
        "position": position,
        "version": event.originator_version,
    }


def _stored_rows(conn: Connection, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        query = select(webhook_events).where(webhook_events.c.event_key.in_(chunk))
        found.update({row["event_key"]: dict(row) for row in conn.execute(query).mappings()})
    return found


def object_id_of(payload: str) -> str | None:
    """`data.object.id` of a Stripe event's raw body; None when it has none (it was verified and
    read as an event when it arrived, but a read model never trusts a shape it did not check)."""
    try:
        body = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    data = body.get("data") if isinstance(body, dict) else None
    obj = data.get("object") if isinstance(data, dict) else None
    found = obj.get("id") if isinstance(obj, dict) else None
    return found[:255] if isinstance(found, str) else None


# ------------------------------------------------------------------------------ queries


def event_json(row: dict[str, Any]) -> dict[str, Any]:
    """A row as the CLI and the API show it."""
    handled_at = row["handled_at"]
    return {
        "id": row["event_id"],
        "provider": row["provider"],
        "type": row["event_type"],
        "object_id": row["object_id"],
        "status": row["status"],
        "detail": row["detail"],
        "created": row["created"],
        "received_at": row["received_at"].isoformat(),
        "handled_at": handled_at.isoformat() if handled_at is not None else None,
        "api_version": row["api_version"],
    }


def list_webhook_events(
    engine: Engine,
    *,
    status: str | None = None,
    event_type: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
    oldest_first: bool = False,
) -> Page:
    """Received events newest first (by when we received them), a page at a time; of one status
    and one event type (`invoice.paid`, say) when given.

    `oldest_first` (the dashboard's toggle; the API has none) pages the other way, with cursors
    of projections/admin/keyset.py: one of either order is refused (InvalidInputError) in the other."""
    query = select(webhook_events)
    if status:
        query = query.where(webhook_events.c.status == status)
    if event_type:
        query = query.where(webhook_events.c.event_type == event_type)
    if oldest_first:
        with engine.connect() as conn:
            rows, next_cursor = keyset.sorted_page(
                conn, query, OLDEST_LISTING, OLDEST, "received", False, max(1, min(limit, MAX_PAGE)), cursor
            )
        return Page([event_json(row) for row in rows], next_cursor)
    page = keyset_page(
        engine, query, webhook_events.c.received_at, webhook_events.c.event_key, limit=limit, cursor=cursor
    )
    return Page([event_json(row) for row in page.rows], page.next_cursor)


OLDEST_LISTING = "webhooks"
OLDEST = {
    "received": keyset.Sort(
        (webhook_events.c.received_at, webhook_events.c.event_key),
        (keyset.MOMENT, keyset.TEXT),
        ("received_at", "event_key"),
    )
}


def webhook_event_row(engine: Engine, event_id: str, *, provider: str = "stripe") -> dict[str, Any] | None:
    """One event by the provider's id (`evt_...`), or None if it was never received."""
    query = select(webhook_events).where(webhook_events.c.provider == provider, webhook_events.c.event_id == event_id)
    with engine.connect() as conn:
        row = conn.execute(query).mappings().first()
    return event_json(with_utc(dict(row))) if row else None


def stuck_events(engine: Engine, *, older_than: datetime, limit: int | None = None) -> list[dict[str, Any]]:
    """Events still `unmatched` or `waiting` that were received before `older_than`, oldest
    first: what reconciliation reports as needing someone."""
    if engine.dialect.name != "postgresql":  # SQLite stores naive UTC
        older_than = older_than.astimezone(UTC).replace(tzinfo=None)
    query = (
        select(webhook_events)
        .where(webhook_events.c.status.in_(STUCK), webhook_events.c.received_at < older_than)
        .order_by(webhook_events.c.received_at, webhook_events.c.event_key)
    )
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        return [event_json(with_utc(dict(row))) for row in conn.execute(query).mappings()]
