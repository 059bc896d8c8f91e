"""The dashboard's invoice list: filters, search, any sort, keyset pages; and one invoice's audit.

`search_invoices` pages in the order of one sort column, ties broken by invoice_id, ascending or
descending. The cursor is the last row's (sort value, invoice_id), opaque to clients (base64'd
JSON that also names the sort and direction: a cursor is only good for the listing that gave it;
any other is an InvalidInputError). Each sort has an index in exactly its order (migration 0006),
so a page is a range scan of `limit` rows however deep it is.

NULLs (no due date, no number while draft) come last in both directions. A page is read as two
segments: the rows with a value, in (value, invoice_id) order, then the rows without one, in
invoice_id order; both are ranges of the same (column, invoice_id) index. (A single ORDER BY
could not place NULLs alike on both backends and use the index: SQLite puts them first
ascending, PostgreSQL last.)

Search:
- `number`: a prefix of the invoice number, as typed: a range of the number index plus an exact check.
- `q`: a number prefix, or a substring of the customer's email or name, case-insensitive
  (wildcards in the text escaped). No index serves a substring, so the query reads the whole
  table in storage order and sorts the matches (see `_Search`), whatever the sort. Measured on
  100,000 invoices, 2 cores shared with other work (load ~10): SQLite ~35 ms alone, 50-110 ms
  under that load; PostgreSQL ~170 ms under that load (lower() LIKE; ILIKE took ~250 ms).
  See docs/read-models.md.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    Connection,
    DateTime,
    Engine,
    Integer,
    Interval,
    Select,
    and_,
    func,
    literal,
    literal_column,
    or_,
    select,
    type_coerce,
)

from ledger.errors import InvalidInputError
from ledger.invoices import DELETED, DRAFT, OPEN, PAID, UNCOLLECTIBLE, VOID
from projections.admin import keyset
from projections.admin.keyset import INT, MOMENT, TEXT
from projections.audit_chain import GENESIS, next_link
from projections.audit_export import timestamp
from projections.paging import MAX_PAGE, Page, with_utc
from projections.tables import audit_chain, invoice_status

STATUSES = (DRAFT, OPEN, PAID, VOID, UNCOLLECTIBLE)
CSV_PAGE = 1_000  # rows per query when streaming every match (iter_invoices)
TEXT_LIMIT = 254  # the longest searched column (customer_email)

_c = invoice_status.c


@dataclass(frozen=True)
class _Sort:
    keys: tuple[Any, ...]  # the order: the sort column, then tie-breakers, invoice_id last
    kinds: tuple[str, ...]  # how each key's value travels in a cursor
    nullable: bool = False  # the sort column may be NULL


SORTS: dict[str, _Sort] = {
    "created_at": _Sort((_c.created_at, _c.invoice_id), (MOMENT, TEXT)),
    "due_date": _Sort((_c.due_date, _c.invoice_id), (TEXT, TEXT), nullable=True),
    "number": _Sort((_c.number, _c.invoice_id), (TEXT, TEXT), nullable=True),
    "customer_name": _Sort((_c.customer_name, _c.invoice_id), (TEXT, TEXT)),
    "total": _Sort((_c.total, _c.invoice_id), (INT, TEXT)),
    "amount_due": _Sort((_c.amount_due, _c.invoice_id), (INT, TEXT)),
    # Within a status, newest first (or last): the (status, created_at, invoice_id) index.
    "status": _Sort((_c.status, _c.created_at, _c.invoice_id), (TEXT, MOMENT, TEXT)),
}


def search_invoices(
    engine: Engine,
    *,
    status: str | None = None,
    customer: str | None = None,
    currency: str | None = None,
    created_from: date | datetime | None = None,
    created_to: date | datetime | None = None,
    number: str | None = None,
    q: str | None = None,
    sort: str = "created_at",
    descending: bool = True,
    limit: int = 50,
    cursor: str | None = None,
) -> Page:
    """One page of invoices (every invoice_status column), filtered and sorted.

    `status`: one of STATUSES (deleted drafts are never listed). `customer`: the customer's email,
    exactly as invoiced (the email index answers it). `currency`: a lowercase ISO code. `created_from` / `created_to`:
    the creation moment in [from, to); a date is a whole UTC day, so `created_to=date` includes
    that day. `number`: a number prefix. `q`: see the module docstring.
    """
    search = _search(engine, status, customer, currency, created_from, created_to, number, q)
    with engine.connect() as conn:
        return _page(conn, search, _sort(sort), sort, descending, max(1, min(limit, MAX_PAGE)), cursor)


def iter_invoices(
    engine: Engine,
    *,
    status: str | None = None,
    customer: str | None = None,
    currency: str | None = None,
    created_from: date | datetime | None = None,
    created_to: date | datetime | None = None,
    number: str | None = None,
    q: str | None = None,
    sort: str = "created_at",
    descending: bool = True,
) -> Iterator[dict[str, Any]]:
    """Every invoice `search_invoices` would list with these filters, in its order, read a page
    (CSV_PAGE rows) per query: memory stays flat for a CSV of any size."""
    search = _search(engine, status, customer, currency, created_from, created_to, number, q)
    order = _sort(sort)
    cursor: str | None = None
    while True:
        with engine.connect() as conn:  # a connection per page: a slow reader holds no lock between pages
            page = _page(conn, search, order, sort, descending, CSV_PAGE, cursor)
        yield from page.rows
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


# ----------------------------------------------------------------------------- filters


def _sort(sort: str) -> _Sort:
    try:
        return SORTS[sort]
    except KeyError:
        raise InvalidInputError(f"sort must be one of {', '.join(SORTS)}", field="sort") from None


@dataclass(frozen=True)
class _Search:
    filters: list[ColumnElement[bool]]
    # Read the whole table in storage order, then sort the matches (for `q`): a substring test can
    # use no index, and walking the sort index instead tests rows in random order until the page
    # is full, or to the end when few match. Measured on 100,000 invoices, a `q` matching
    # nothing: SQLite ~35 ms scanned, ~430 ms walking the index (PostgreSQL: see the docs).
    scan: bool = False


def _search(
    engine: Engine,
    status: str | None,
    customer: str | None,
    currency: str | None,
    created_from: date | datetime | None,
    created_to: date | datetime | None,
    number: str | None,
    q: str | None,
) -> _Search:
    filters: list[ColumnElement[bool]] = [_c.status != DELETED]
    if status:
        if status not in STATUSES:
            raise InvalidInputError(f"status must be one of {', '.join(STATUSES)}", field="status")
        filters.append(_c.status == status)
    customer, currency, number, q = (
        _typed(value, field)
        for value, field in ((customer, "customer"), (currency, "currency"), (number, "number"), (q, "q"))
    )
    if customer:
        filters.append(_c.customer_email == customer)
    if currency:
        filters.append(_c.currency == currency.lower())
    if created_from is not None:
        filters.append(_c.created_at >= _moment(created_from, "created_from"))
    # The last day a date holds ends past the last moment a datetime holds: no bound is needed.
    if created_to is not None and created_to != date.max:
        end = created_to if isinstance(created_to, datetime) else created_to + timedelta(days=1)
        filters.append(_c.created_at < _moment(end, "created_to"))
    if number:
        filters.append(_number_prefix(number))
    if not q:
        return _Search(filters)
    # Case-insensitive: SQLite's LIKE folds ASCII letters (its lower() folds no more); on
    # PostgreSQL lower(column) LIKE lower(text) folds any letter, and costs two thirds of ILIKE
    # (which lowers both sides of every comparison in a UTF-8 database). No index serves a
    # substring either way: hence the scan (see _Search).
    text = q if engine.dialect.name == "sqlite" else q.lower()
    escaped = _escape_like(text)

    def matches(column: ColumnElement[Any], pattern: str) -> ColumnElement[bool]:
        folded = column if engine.dialect.name == "sqlite" else func.lower(column)
        return folded.like(pattern, escape="\\")

    filters.append(
        or_(
            matches(_c.number, f"{escaped}%"),
            matches(_c.customer_email, f"%{escaped}%"),
            matches(_c.customer_name, f"%{escaped}%"),
        )
    )
    return _Search(filters, scan=True)


def _typed(value: str | None, field: str) -> str | None:
    """What was typed, stripped; None when blank. Refused (a 4xx, not a database error): text
    longer than any column searched, or holding NUL, which PostgreSQL text cannot."""
    text = (value or "").strip()
    if len(text) > TEXT_LIMIT or "\x00" in text:
        raise InvalidInputError(f"{field} must be at most {TEXT_LIMIT} characters, without NUL", field=field)
    return text or None


def _moment(value: date | datetime, field: str) -> datetime:
    """In UTC (SQLite keeps the text without its zone: compare in UTC)."""
    if not isinstance(value, datetime):
        return datetime.combine(value, time(0), tzinfo=UTC)
    if value.tzinfo is None:
        raise InvalidInputError(f"{field} needs a timezone", field=field)
    return value.astimezone(UTC)


def _number_prefix(prefix: str) -> ColumnElement[bool]:
    """Numbers starting with `prefix`: the range [prefix, prefix + U+10FFFF) finds them in the
    number index (SQLite and a C / C.UTF-8 PostgreSQL compare text by code point, so every such
    number is in it); the exact check keeps a collation that orders otherwise from adding others."""
    return and_(
        _c.number >= prefix,
        _c.number < prefix + "\U0010ffff",
        func.substr(_c.number, 1, len(prefix)) == prefix,
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# ----------------------------------------------------------------------------- keyset paging


def _page(
    conn: Connection,
    search: _Search,
    order: _Sort,
    sort: str,
    descending: bool,
    limit: int,
    cursor: str | None,
) -> Page:
    listing = f"invoices:{sort}:{'desc' if descending else 'asc'}"
    last = keyset.decode(cursor, listing, order.kinds, nullable_first=order.nullable) if cursor else None
    keys = tuple(_unindexed(key, conn.dialect.name) for key in order.keys) if search.scan else order.keys
    rows: list[dict[str, Any]] = []
    in_null_segment = last is not None and last[0] is None
    if not in_null_segment:
        query = select(invoice_status).where(*search.filters)
        if order.nullable:
            query = query.where(keys[0].is_not(None))
        if last is not None:
            query = query.where(keyset.after(keys, last, descending))
        rows = _fetch(conn, keyset.ordered(query, keys, descending), limit + 1)
    if order.nullable and len(rows) <= limit:
        query = select(invoice_status).where(*search.filters, keys[0].is_(None))
        if last is not None and in_null_segment:
            query = query.where(keyset.after(keys[1:], last[1:], descending))
        rows += _fetch(conn, keyset.ordered(query, keys[1:], descending), limit + 1 - len(rows))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = keyset.encode(listing, [rows[-1][key.key] for key in order.keys]) if more else None
    return Page(rows, next_cursor)


def _unindexed(column: Any, dialect: str) -> Any:
    """The column, in an expression that sorts and compares as it does but that no index
    serves: SQLite's no-op unary plus; on PostgreSQL `|| ''`, `+ 0` or `+ interval '0'`."""
    if dialect == "sqlite":
        return type_coerce(literal_column(f"+{column.table.name}.{column.name}"), column.type)
    if isinstance(column.type, DateTime):
        return column + literal(timedelta(0), Interval())
    if isinstance(column.type, Integer):
        return column + 0
    return column.concat("")


def _fetch(conn: Connection, query: Select[Any], limit: int) -> list[dict[str, Any]]:
    return [with_utc(dict(row)) for row in conn.execute(query.limit(limit)).mappings()]


# ----------------------------------------------------------------------------- one invoice's audit


class StoredEvent(Protocol):
    """An event as the store holds it (the library's StoredEvent)."""

    @property
    def originator_id(self) -> Any: ...
    @property
    def originator_version(self) -> int: ...
    @property
    def topic(self) -> str: ...
    @property
    def state(self) -> bytes: ...


class AggregateRecords(Protocol):
    """The stored events of one aggregate (the application's recorder: `app.recorder`)."""

    def select_events(
        self, originator_id: UUID, *, gt: int | None = None, lte: int | None = None
    ) -> Sequence[StoredEvent]: ...


OK = "ok"
ALTERED = "altered"
NOT_CHAINED = "not yet chained"
MISSING = "missing"  # chained, but no longer in the store


@dataclass(frozen=True)
class _Chained:
    """A stored event at the position it was chained at: what next_link hashes."""

    id: int
    originator_id: Any
    originator_version: int
    topic: str
    state: bytes


def invoice_audit(
    engine: Engine, log: AggregateRecords, invoice_id: UUID, *, after: int | None = None, upto: int | None = None
) -> list[dict[str, Any]]:
    """Per stored event of the invoice, oldest first, whether it is still what was chained.

    Each event is re-hashed from the link before its position (the previous row of the kept
    chain) and compared with its own kept link: `ok`, `altered` (its stored bytes, topic or
    version are not what was chained), `not yet chained` (newer than the chain's head), or
    `missing` (chained, no longer stored). Keys: position (None when not chained), topic,
    version, moment (the event's timestamp, None when it cannot be read), status.
    Two queries: the invoice's stored events, and its chain rows each with the link before it.
    `after` < version <= `upto` narrows both to the versions a page shows: a page of the timeline
    costs what its rows cost, not what the invoice's whole history does.
    """
    stored = {event.originator_version: event for event in log.select_events(invoice_id, gt=after, lte=upto)}
    mine = audit_chain.alias("mine")
    before = audit_chain.alias("before")
    previous = (
        select(before.c.link)
        .where(before.c.position < mine.c.position)
        .order_by(before.c.position.desc())
        .limit(1)
        .scalar_subquery()
    )
    query = (
        select(mine.c.position, mine.c.originator_version, mine.c.topic, mine.c.link, previous.label("previous"))
        .where(mine.c.originator_id == str(invoice_id))
        .order_by(mine.c.originator_version)
    )
    if after is not None:
        query = query.where(mine.c.originator_version > after)
    if upto is not None:
        query = query.where(mine.c.originator_version <= upto)
    with engine.connect() as conn:
        chained = {int(row.originator_version): row for row in conn.execute(query)}
    audit: list[dict[str, Any]] = []
    for version in sorted(stored.keys() | chained.keys()):
        event = stored.get(version)
        row = chained.get(version)
        entry: dict[str, Any] = {
            "position": int(row.position) if row is not None else None,
            "topic": event.topic if event is not None else row.topic if row is not None else "",
            "version": version,
            "moment": None,
            "status": OK,
        }
        if event is not None:
            entry["moment"] = timestamp(_Chained(0, event.originator_id, version, event.topic, bytes(event.state)))
        if row is None:
            entry["status"] = NOT_CHAINED
        elif event is None:
            entry["status"] = MISSING
        else:
            link_before = bytes.fromhex(row.previous) if row.previous else GENESIS
            record = _Chained(int(row.position), invoice_id, version, event.topic, bytes(event.state))
            entry["status"] = OK if next_link(link_before, record).hex() == row.link else ALTERED
        audit.append(entry)
    return audit
