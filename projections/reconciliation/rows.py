"""What the reconciliation read models share: stored rows read back by key (one query per batch
of keys), JSON columns, and moments compared and shown in UTC."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, Connection, Engine, Table, select

# Keys per IN (...) list: far below SQLite's and PostgreSQL's limits on bound parameters, and a
# batch of the engine's (one provider page, 100 objects) or of the runner's fits in one query.
KEYS_PER_QUERY = 2_000

Row = dict[str, Any]


@contextmanager
def connected(source: Engine | Connection) -> Iterator[Connection]:
    """The caller's connection (inside its transaction), or a new one from the engine."""
    if isinstance(source, Connection):
        yield source
        return
    with source.connect() as conn:
        yield conn


def rows_by_key(conn: Connection, table: Table, key: Column[Any], keys: Collection[str]) -> dict[str, Row]:
    """The stored rows whose `key` is one of `keys`, by key."""
    found: dict[str, Row] = {}
    ordered = sorted(set(keys))
    for first in range(0, len(ordered), KEYS_PER_QUERY):
        chunk = ordered[first : first + KEYS_PER_QUERY]
        for row in conn.execute(select(table).where(key.in_(chunk))).mappings():
            found[str(row[key.key])] = dict(row)
    return found


def to_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def from_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def iso(moment: datetime | None) -> str | None:
    """A stored moment as ISO 8601 in UTC (SQLite hands it back without its zone)."""
    if moment is None:
        return None
    return (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)).isoformat()


def utc(moment: datetime) -> datetime:
    """A moment to compare with stored ones: in UTC; a naive one is taken as UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
