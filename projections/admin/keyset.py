"""Keyset pagination over any ordered tuple of columns, ascending or descending.

projections/paging.py pages newest first by (created_at, id) only; the dashboard's lists sort by
other columns too. A page is the rows strictly past the last row's keys in the listing's order;
the cursor carries those keys, opaque to clients (base64'd JSON naming the listing, so a cursor of
another listing, sort or direction is refused as InvalidInputError, never misread).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, literal, tuple_

from ledger.errors import InvalidInputError

MOMENT = "moment"  # a timezone-aware datetime, travelling as ISO 8601
INT = "int"
TEXT = "text"


def ordered(query: Select[Any], keys: Sequence[Any], descending: bool) -> Select[Any]:
    return query.order_by(*(key.desc() if descending else key.asc() for key in keys))


def after(keys: Sequence[Any], values: Sequence[Any], descending: bool) -> ColumnElement[bool]:
    """Rows past `values` in the order of `keys` (none of them NULL), as one row-value comparison
    `(k1, k2, ...) > (v1, v2, ...)` (or <): both databases seek the index on (k1, k2, ...) to
    the cursor. Spelt out as `k1 > v1 OR (k1 = v1 AND ...)`, they would seek on k1 alone and
    read every entry of a large tie (the many invoices with nothing due) up to the cursor."""
    if len(keys) == 1:
        return keys[0] < values[0] if descending else keys[0] > values[0]  # type: ignore[no-any-return]
    left = tuple_(*keys)
    right = tuple_(*(literal(value, key.type) for key, value in zip(keys, values, strict=True)))
    return left < right if descending else left > right


def encode(listing: str, values: Sequence[Any]) -> str:
    portable = [v.astimezone(UTC).isoformat() if isinstance(v, datetime) else v for v in values]
    return base64.urlsafe_b64encode(json.dumps([listing, portable]).encode()).decode()


def decode(cursor: str, listing: str, kinds: Sequence[str], *, nullable_first: bool = False) -> tuple[Any, ...]:
    """The keys a cursor of `listing` carries, each of its kind; the first may be None when
    `nullable_first`. Anything else is an InvalidInputError on the field `cursor`."""
    try:
        named, values = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if named != listing or not isinstance(values, list) or len(values) != len(kinds):
            raise ValueError("a cursor of another listing")
        return tuple(
            None if (v is None and i == 0 and nullable_first) else _value(v, kind)
            for i, (v, kind) in enumerate(zip(values, kinds, strict=True))
        )
    # RecursionError: JSON nested past the parser's depth, a few hundred bytes of `[`.
    except (ValueError, TypeError, OverflowError, RecursionError, binascii.Error, UnicodeDecodeError):
        raise InvalidInputError("cursor is not one this listing returned", field="cursor") from None


def _value(value: Any, kind: str) -> Any:
    if kind == INT:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError("not an integer")
        if not -(2**63) <= value < 2**63:  # no column holds it: the databases refuse the parameter
            raise ValueError("out of range")
        return value
    if not isinstance(value, str):
        raise TypeError("not text")
    if "\x00" in value:  # no stored text has one (PostgreSQL refuses the parameter)
        raise ValueError("a NUL")
    if kind == MOMENT:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("no timezone")
        return moment.astimezone(UTC)
    return value


# ----------------------------------------------------------------------------- sortable listings


class Sort:
    """One sort of a listing: its keys (the sort column, then tie-breakers, a unique key last;
    none NULL in the rows listed), how each travels in a cursor, and the row fields holding them."""

    def __init__(self, keys: Sequence[Any], kinds: Sequence[str], fields: Sequence[str]) -> None:
        self.keys, self.kinds, self.fields = tuple(keys), tuple(kinds), tuple(fields)


def sort_of(sorts: dict[str, Sort], sort: str) -> Sort:
    """The sort named `sort`; any other name is an InvalidInputError on the field `sort`."""
    try:
        return sorts[sort]
    except KeyError:
        raise InvalidInputError(f"sort must be one of {', '.join(sorts)}", field="sort") from None


def sorted_page(
    conn: Any,
    query: Select[Any],
    listing: str,
    sorts: dict[str, Sort],
    sort: str,
    descending: bool,
    limit: int,
    cursor: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of `query` (limit+1 rows read) in the order of `sort`, and the cursor past it (None
    on the last page). The cursor names the listing, the sort and the direction: a cursor of
    another sort or direction is refused, never read as keys of the wrong column."""
    order = sort_of(sorts, sort)
    named = f"{listing}:{sort}:{'desc' if descending else 'asc'}"
    if cursor:
        query = query.where(after(order.keys, decode(cursor, named, order.kinds), descending))
    query = ordered(query, order.keys, descending).limit(limit + 1)
    rows = [_utc(dict(row)) for row in conn.execute(query).mappings()]
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode(named, [rows[-1][field] for field in order.fields]) if more else None


def _utc(row: dict[str, Any]) -> dict[str, Any]:
    """SQLite returns naive datetimes; every stored moment is UTC (encode must not read them as local)."""
    for key, value in row.items():
        if isinstance(value, datetime) and value.tzinfo is None:
            row[key] = value.replace(tzinfo=UTC)
    return row
