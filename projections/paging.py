"""Keyset pagination shared by the list queries: newest first by (created_at, id), stable under inserts.

The cursor is opaque to clients: the (created_at, id) of the last row of the page, base64'd JSON.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, Engine, Select, and_, or_

from ledger.errors import InvalidInputError

MAX_PAGE = 200


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    next_cursor: str | None


def keyset_page(
    engine: Engine,
    query: Select[Any],
    created: Column[Any],
    key: Column[Any],
    *,
    limit: int,
    cursor: str | None,
) -> Page:
    """The rows of `query` after `cursor`, newest `created` first (ties broken by `key`)."""
    limit = max(1, min(limit, MAX_PAGE))
    if cursor:
        created_at, key_value = decode_cursor(cursor)
        if engine.dialect.name != "postgresql":  # SQLite stores naive UTC
            created_at = created_at.astimezone(UTC).replace(tzinfo=None)
        query = query.where(or_(created < created_at, and_(created == created_at, key < key_value)))
    query = query.order_by(created.desc(), key.desc()).limit(limit + 1)
    with engine.connect() as conn:
        rows = [with_utc(dict(r)) for r in conn.execute(query).mappings()]
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, encode_cursor(rows[-1][created.key], rows[-1][key.key]) if more else None)


def encode_cursor(created_at: datetime, key: str) -> str:
    raw = json.dumps([created_at.isoformat(), key]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        created_at, key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        moment = datetime.fromisoformat(created_at)
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        return moment, str(key)
    except (ValueError, TypeError, OverflowError, RecursionError):  # RecursionError: JSON nested too deep
        raise InvalidInputError("cursor is not one this API returned", field="cursor") from None


def with_utc(row: dict[str, Any]) -> dict[str, Any]:
    """SQLite returns naive datetimes; every stored moment is UTC, so say so."""
    for key, value in row.items():
        if isinstance(value, datetime) and value.tzinfo is None:
            row[key] = value.replace(tzinfo=UTC)
    return row
