"""The tamper-evident audit chain: a SHA-256 hash chain over the whole event log, in log order.

    link_0 = 32 zero bytes (genesis)
    link_n = sha256(link_{n-1} || canonical(event n))

`canonical` covers the event's position (notification id), originator id, originator version,
topic and its state exactly as stored (never re-encoded), each length-prefixed so that no two
different events share canonical bytes.

`AuditChain` keeps the chain like any read model: the runner hands it each batch of the log and
commits its links with its tracking position, exactly once. `verify` recomputes the chain from
the log, from genesis, and compares it with the kept one, naming the first position that was
altered, deleted or inserted since it was chained (a reordering shows as an alteration at the
first swapped position). Each kept link is first checked on its own against the kept one
before it, which is the same by induction: by the server on PostgreSQL, in Python on SQLite (in
two processes when a core is idle); the Python walk (`walk_verify` alone) then runs only from
the first position in doubt.

The kept chain proves nothing against someone who can rewrite both the log and the chain: anchor
its head elsewhere (an exported file, a ticket, a signed e-mail) and compare. `ledger rebuild`
rechains the log as it stands: verify before rebuilding.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import struct
from binascii import hexlify
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice, pairwise
from operator import itemgetter
from typing import Any, NamedTuple, Protocol, TypeVar, cast

from sqlalchemy import Connection, Engine, Table, inspect, select

from projections.bulk import insert_tuples
from projections.forking import fork_refusal
from projections.tables import audit_chain
from projections.tracked import Positioned

GENESIS = bytes(32)
_sha256 = hashlib.sha256
BATCH = 10_000
# verify's batches: hashed while still in the CPU's cache (10% less time per event than 10,000
# on SQLite, docs/throughput.md, Audit verify)
VERIFY_BATCH = 1_000

_HEADER = struct.Struct(">qqI")  # position, originator version, length of the originator id
_LENGTH = struct.Struct(">I")
_POSITION = struct.Struct(">qq")  # _HEADER without the id's length, which `_held` keeps with the id
_STATE_LENGTH = struct.Struct(">Q")
T = TypeVar("T")


class Record(Protocol):
    """A stored event as the store holds it (the library's Notification)."""

    @property
    def id(self) -> int: ...
    @property
    def originator_id(self) -> Any: ...
    @property
    def originator_version(self) -> int: ...
    @property
    def topic(self) -> str: ...
    @property
    def state(self) -> bytes: ...


class RawLog(Protocol):
    """The event log as stored (BillingApplication.records_after)."""

    def records_after(self, position: int, limit: int) -> Sequence[Record]: ...


class StoredLog(RawLog, Protocol):
    """The log and the name of its table, which `verify` reads straight through the driver."""

    @property
    def events_table_name(self) -> str: ...


def canonical(position: int, originator_id: str, originator_version: int, topic: str, state: bytes) -> bytes:
    """Big-endian: position (int64), originator version (int64), then the originator id (its
    UUID text), the topic (UTF-8) and the stored state, each after its length (uint32, uint32,
    uint64). Fixed here for good: changing it changes every link."""
    oid = originator_id.encode()
    top = topic.encode()
    return b"".join(
        (
            _HEADER.pack(position, originator_version, len(oid)),
            oid,
            _LENGTH.pack(len(top)),
            top,
            _STATE_LENGTH.pack(len(state)),
            state,
        )
    )


def next_link(previous: bytes, record: Record) -> bytes:
    """sha256(previous || canonical(record)), inlined: verify calls it for every event."""
    state = record.state
    if type(state) is not bytes:  # a memoryview (PostgreSQL), or text put in SQLite's BLOB column by hand:
        state = state.encode() if isinstance(state, str) else bytes(state)  # its bytes as SQLite keeps them (UTF-8)
    oid = str(record.originator_id).encode()
    top = record.topic.encode()
    return _sha256(
        b"".join(
            (
                previous,
                _HEADER.pack(record.id, record.originator_version, len(oid)),
                oid,
                _LENGTH.pack(len(top)),
                top,
                _STATE_LENGTH.pack(len(state)),
                state,
            )
        )
    ).digest()


def records(log: RawLog, after: int = 0, batch: int = BATCH) -> Iterator[Record]:
    """Every stored record after `after`, in log order, read a batch at a time."""
    while True:
        chunk = log.records_after(after, batch)
        if not chunk:
            return
        yield from chunk
        after = chunk[-1].id


class AuditChain:
    """The read model that keeps the chain: one row (with its link) per event, in log order."""

    name = "audit_chain"
    tables: tuple[Table, ...] = (audit_chain,)
    rebuildable = False  # evidence: extended, never recomputed (see ProjectionRunner.rebuildable)
    decodes = False  # it hashes the stored bytes: only the batch's positions are read (projections/tracked.py)

    def __init__(self, log: RawLog) -> None:
        self.log = log
        self._prepared: Sequence[Record] = []

    def prepare(self, batch: Sequence[Positioned]) -> None:
        """The stored bytes of the batch, read before the runner takes the write lock."""
        self._prepared = self._records(batch) if batch else []

    def process(self, conn: Connection, batch: Sequence[Positioned]) -> None:
        if not batch:
            return
        positions = [position for position, _ in batch]
        raw = self._prepared if [r.id for r in self._prepared] == positions else self._records(batch)
        self._prepared = []
        if [r.id for r in raw] != positions:
            raise RuntimeError("the log changed under the batch being chained: run again")
        last = conn.execute(
            select(audit_chain.c.position, audit_chain.c.link).order_by(audit_chain.c.position.desc()).limit(1)
        ).first()
        if last is not None and int(last.position) >= positions[0]:
            raise RuntimeError(f"audit chain already holds position {last.position}: not chaining it twice")
        link = GENESIS if last is None else bytes.fromhex(last.link)
        # next_link inlined, each topic's prefix built once (a log has few topics): a rebuild
        # chains every event, and the per-call overhead was a third of the chain's own time.
        sha256, header, state_length = _sha256, _HEADER.pack, _STATE_LENGTH.pack
        topics: dict[str, bytes] = {}
        rows: list[tuple[Any, ...]] = []
        for record in raw:
            state = record.state if type(record.state) is bytes else bytes(record.state)
            originator_id = str(record.originator_id)
            oid = originator_id.encode()
            topic = record.topic
            top = topics.get(topic)
            if top is None:
                top = topics[topic] = _LENGTH.pack(len(topic.encode())) + topic.encode()
            link = sha256(
                b"".join(
                    (
                        link,
                        header(record.id, record.originator_version, len(oid)),
                        oid,
                        top,
                        state_length(len(state)),
                        state,
                    )
                )
            ).digest()
            # The table's columns in order (insert_tuples): no dict per row.
            rows.append((record.id, originator_id, record.originator_version, topic, link.hex()))
        insert_tuples(conn, audit_chain, rows)

    def reset(self) -> None:
        """Only the prepared records: the last link is read from the table, inside the transaction."""
        self._prepared = []

    def _records(self, batch: Sequence[Positioned]) -> Sequence[Record]:
        return self.log.records_after(batch[0][0] - 1, len(batch))


@dataclass(frozen=True)
class Verdict:
    """What `verify` found. `ok` with `count` chained events and the `head` link, or the first
    bad `position` and what happened there (`problem`: altered, deleted or inserted)."""

    ok: bool
    count: int
    head: str
    position: int | None = None
    problem: str | None = None
    detail: str = ""
    unchained: int = 0  # events logged after the chain's head, not chained yet

    def __str__(self) -> str:
        if self.ok:
            pending = f" ({self.unchained:,} newer events not chained yet)" if self.unchained else ""
            return f"OK: {self.count} events, head {self.head}{pending}"
        return f"FAILED: position {self.position} {self.problem}: {self.detail}"


def _fetch(engine: Engine, query: str, parameters: tuple[Any, ...], text_as_bytes: bool = False) -> Sequence[Any]:
    """Rows straight through the driver: SQLAlchemy's row objects would cost more than hashing.
    `text_as_bytes` (sqlite3 only): text columns as their stored UTF-8 bytes, not decoded."""
    raw = engine.raw_connection()
    driver = cast(Any, raw.dbapi_connection)
    try:
        if text_as_bytes:
            driver.text_factory = bytes
        cursor = raw.cursor()
        cursor.execute(query, parameters)
        rows: Sequence[Any] = cursor.fetchall()
        cursor.close()
    finally:
        if text_as_bytes:
            driver.text_factory = str  # the pool's other users read text as text
        raw.close()
    return rows


def log_position(dialect: str) -> str:
    """The events table's column holding an event's position in the log."""
    return "notification_id" if dialect == "postgresql" else "rowid"


def param_mark(dialect: str) -> str:
    """The driver's parameter mark: psycopg's or sqlite3's."""
    return "%s" if dialect == "postgresql" else "?"


def stored_id_text(dialect: str, column: str) -> str:
    """SQL for a stored originator id as UUID text (`str(UUID)`, with hyphens), the spelling the
    chain covers: PostgreSQL prints its uuid column so; the library stores it on SQLite as 32 hex
    digits, spelled here with hyphens."""
    if dialect == "postgresql":
        return f"{column}::text"
    return (
        f"substr({column}, 1, 8) || '-' || substr({column}, 9, 4) || '-' || "
        f"substr({column}, 13, 4) || '-' || substr({column}, 17, 4) || '-' || substr({column}, 21)"
    )


def _chain_head(engine: Engine) -> tuple[int | None, int]:
    """The kept chain's head position (None when never chained) and its number of links."""
    if not inspect(engine).has_table(audit_chain.name):
        return None, 0
    head, links = _fetch(engine, "SELECT max(position), count(*) FROM audit_chain", ())[0]
    return (None if head is None else int(head)), int(links)


def _first_deleted(engine: Engine, table: str) -> int | None:
    """The kept chain's lowest position no longer in the log (a deleted event, which a left join
    of the log and the chain cannot show), by one anti-join."""
    key = log_position(engine.dialect.name)
    query = (
        "SELECT min(c.position) FROM audit_chain c "  # noqa: S608
        f"WHERE NOT EXISTS (SELECT 1 FROM {table} e WHERE e.{key} = c.position)"
    )
    (deleted,) = _fetch(engine, query, ())[0]
    return None if deleted is None else int(deleted)


Row = tuple[int, Any, int, str, bytes, Any]  # position, originator id, version, topic, state, kept link


def _stored(
    engine: Engine, table: str, batch: int, chained: bool, after: int = 0, upto: int | None = None
) -> Iterator[Sequence[Row]]:
    """The log's rows in order, a batch per query, as (position, originator id as stored,
    version, topic, state, kept link or None), straight through the driver: no Notification
    objects, no UUID objects, nothing decoded. The kept link comes in the same query (a left
    join on the position): one stream to walk, not the log and the chain merged event by event,
    which cost verify half its rate on PostgreSQL (docs/throughput.md, Audit verify).

    On SQLite text comes as its stored bytes (decoding it cost more than hashing it). The chain
    covers the originator id as UUID text (`str(UUID)`, with hyphens): `_spelling` gives those
    bytes from the id as this query returns it. `verify` checks a link that does not
    match again the way the chain was built (the record as the library reads it), so an id
    stored in another spelling cannot change the verdict. `upto`: the last position to read
    (None: the end of the log)."""
    dialect = engine.dialect.name
    key, mark = log_position(dialect), param_mark(dialect)
    # PostgreSQL prints its uuid column as UUID text; SQLite's 32 hex digits are spelled with
    # hyphens in Python (`_spelling`), where it costs a tenth of what substr() did in the query.
    oid = "e.originator_id::text" if dialect == "postgresql" else "e.originator_id"
    link = "c.link" if chained else "NULL"
    join = f"LEFT JOIN audit_chain c ON c.position = e.{key} " if chained else ""
    bound = "" if upto is None else f"AND e.{key} <= {int(upto)} "
    query = (
        f"SELECT e.{key}, {oid}, e.originator_version, e.topic, e.state, {link} FROM {table} e {join}"  # noqa: S608
        f"WHERE e.{key} > {mark} {bound}ORDER BY e.{key} LIMIT {mark}"
    )
    while True:
        chunk = _fetch(engine, query, (after, batch), text_as_bytes=_spelling(dialect).text_as_bytes)
        if not chunk:
            return
        yield chunk
        after = int(chunk[-1][0])


def _prefixed(text: bytes) -> bytes:
    return _LENGTH.pack(len(text)) + text


def _as_text(stored: Any) -> bytes:
    """The originator id as PostgreSQL's `::text` prints it (UUID text), length first."""
    return _prefixed(str(stored).encode())


def _hyphenated(stored: Any) -> bytes:
    """The originator id as SQLite stores it (32 hex digits, read as bytes), spelled as UUID
    text with hyphens, length first: the slices `stored_id_text` takes in SQL. Another spelling
    gives other bytes, a link that does not match, and the walk's check through the library's
    record."""
    text = stored if type(stored) is bytes else str(stored).encode()
    return _prefixed(b"-".join((text[:8], text[8:12], text[12:16], text[16:20], text[20:])))


def _encoded(topic: Any) -> bytes:
    return _prefixed(str(topic).encode())


def _raw(topic: Any) -> bytes:
    return _prefixed(topic if type(topic) is bytes else str(topic).encode())


class _Spelling(NamedTuple):
    """How `_stored`'s rows spell what the chain covers, per database: `ident` and `topic` give
    an id's and a topic's canonical bytes (length first) from the fetched value; `hexed`, a
    link as the fetched kept link spells it (text, or on SQLite its bytes)."""

    text_as_bytes: bool
    ident: Callable[[Any], bytes]
    topic: Callable[[Any], bytes]
    hexed: Callable[[bytes], Any]


_SPELLINGS = {
    "postgresql": _Spelling(False, _as_text, _encoded, bytes.hex),
    "sqlite": _Spelling(True, _hyphenated, _raw, hexlify),
}


def _spelling(dialect: str) -> _Spelling:
    return _SPELLINGS.get(dialect, _SPELLINGS["postgresql"])


def _held(
    rows: Sequence[Row], start: int, end: int, link: bytes, spelling: _Spelling, topics: dict[Any, bytes]
) -> tuple[int, bytes]:
    """The chain from `link` over rows[start:end] as long as each row's kept link is the one
    computed: the index of the first row whose is not (or that has none; `end` when all hold)
    and the link of the row before it. The walk and the SQLite check (`_scan`) both run on it:
    it is verify's time, so nothing in it is a function of ours per event. `topics`: each
    topic's bytes, length first (a log has few topics)."""
    sha256, header, state_length = _sha256, _POSITION.pack, _STATE_LENGTH.pack
    spell, spell_topic, hexed = spelling.ident, spelling.topic, spelling.hexed
    ids: dict[Any, bytes] = {}  # an aggregate's events are near each other in the log
    index = start
    for position, originator_id, version, topic, state, kept_link in islice(rows, start, end):
        ident = ids.get(originator_id)
        if ident is None:
            ident = ids[originator_id] = spell(originator_id)
        top = topics.get(topic)
        if top is None:
            top = topics[topic] = spell_topic(topic)
        message = b"".join((link, header(position, version), ident, top, state_length(len(state)), state))
        linked = sha256(message).digest()
        if hexed(linked) != kept_link:
            return index, link
        link = linked
        index += 1
    return index, link


def verify(log: StoredLog, engine: Engine, batch: int = VERIFY_BATCH, workers: int | None = None) -> Verdict:
    """Recompute the chain over the whole log from genesis and compare it with the kept chain.

    Hashes each row's stored state as it is, never decoded; the log is read in batches straight
    through the driver with each event's kept link beside it (they live in the same database).
    The first problem by position is named: a chained position no longer in the log (deleted),
    a log row below the chain's head without a link (inserted), or a link that differs
    (altered).

    Every kept link is first checked on its own against the kept link before it: on PostgreSQL
    (11 and later, which have `sha256()`) by the server (`_first_suspect`), in its parallel
    workers; elsewhere (SQLite) in Python (`_scanned_suspect`), the log cut by position into
    ranges that `workers` processes take in turn (None: two for a log large enough to be worth
    a fork when a core is idle, else one; see `_workers`). When all hold, the chain recomputed
    from genesis is the kept one, and its head and count are the walk's; otherwise the walk
    (`_walk`, the reference) starts just before the lowest position in doubt, with the kept
    link there, and names the problem as it always did."""
    table = log.events_table_name
    head, links = _chain_head(engine)
    if head is not None:
        if _server_hashes(engine):
            suspect = _first_suspect(engine, table, head, links)
        else:
            suspect = _scanned_suspect(engine, table, head, links, batch, _workers(engine, head, workers))
        if suspect is not None and suspect.position is None:
            return Verdict(ok=True, count=suspect.checked, head=suspect.link, unchained=suspect.unchained)
        if suspect is not None:
            link = bytes.fromhex(suspect.link)
            return _walk(log, engine, batch, head, suspect.deleted, suspect.after, suspect.checked, link)
    return _from_genesis(log, engine, batch, head)


def walk_verify(log: StoredLog, engine: Engine, batch: int = BATCH) -> Verdict:
    """`verify` without the server's check: the Python walk from genesis, the reference that
    the server-checked verdict must equal (the tests and bench/verify_fetch.py compare them)."""
    head, _ = _chain_head(engine)
    return _from_genesis(log, engine, batch, head)


def _from_genesis(log: StoredLog, engine: Engine, batch: int, head: int | None) -> Verdict:
    deleted = None if head is None else _first_deleted(engine, log.events_table_name)
    return _walk(log, engine, batch, head, deleted, 0, 0, GENESIS)


def _walk(
    log: StoredLog,
    engine: Engine,
    batch: int,
    head: int | None,
    deleted: int | None,
    after: int,
    count: int,
    link: bytes,
) -> Verdict:
    """The reference check, in Python: the chain from `link`, the verified link of the event at
    `after` (GENESIS and 0 from the start), over the log's rows after it; `count` events
    already verified before them. The rows whose kept link holds go through `_held` a run at a
    time; each other row is judged here, one by one."""
    unchained = 0
    spelling, topics = _spelling(engine.dialect.name), dict[Any, bytes]()
    for chunk in _stored(engine, log.events_table_name, batch, chained=head is not None, after=after):
        end = len(chunk)
        if deleted is not None and chunk[-1][0] > deleted:
            end = bisect_right(chunk, deleted, key=itemgetter(0))  # the rows before the deleted one
        index = 0
        while index < end:
            held, link = _held(chunk, index, end, link, spelling, topics)
            count += held - index
            if held == end:
                break
            position, kept_link = chunk[held][0], chunk[held][5]
            if kept_link is None:
                if head is not None and position < head:
                    return _bad(count, link, position, "inserted", "in the log below the chain's head, never chained")
                unchained += len(chunk) - held  # above the head: the rest of the log is not chained yet
                break
            # Again as the chain was built: the record as the library reads it (the id through UUID).
            record = log.records_after(position - 1, 1)[0]
            linked = next_link(link, record)
            if spelling.hexed(linked) != kept_link:
                return _bad(count, linked, position, "altered", _what_differs(engine, record))
            link = linked
            count += 1
            index = held + 1
        if end < len(chunk):
            break  # the deleted position comes next
    if deleted is not None:
        return _bad(count, link, deleted, "deleted", "chained, but no longer in the log")
    return Verdict(ok=True, count=count, head=link.hex(), unchained=unchained)


def _server_hashes(engine: Engine) -> bool:
    """PostgreSQL 11 or later: its builtin `sha256(bytea)` can check the links."""
    version = engine.dialect.server_version_info  # known once connected: verify has read the chain's head
    return engine.dialect.name == "postgresql" and version is not None and version >= (11,)


@dataclass(frozen=True)
class _Suspect:
    """What the server's check found: the first `position` (None: none) where a link does not
    hold, or an event is missing, or was never chained; the log's last position before it
    (`after`, 0 if none), the events before it (`checked`) and the kept link of the event at
    `after` (`link`, hex), and the lowest chained position no longer in the log (`deleted`,
    for the walk). With no suspect: `checked` is every chained event, `link` the kept head,
    and `unchained` the events logged after the head."""

    position: int | None
    after: int
    checked: int
    link: str
    deleted: int | None = None  # the chain's lowest position no longer in the log
    unchained: int = 0


# The canonical bytes of an event (`canonical`), spelled in SQL: int8send and int4send are the
# big-endian int64 and int32 of `_HEADER`, `_LENGTH` and `_STATE_LENGTH` (lengths are below 2**31,
# where int32 and uint32 agree), the originator id as UUID text, the topic in UTF-8.
_CANONICAL_SQL = (
    "int8send(e.notification_id) || int8send(e.originator_version::bigint) || "
    "int4send(octet_length(e.originator_id::text)) || convert_to(e.originator_id::text, 'UTF8') || "
    "int4send(octet_length(convert_to(e.topic, 'UTF8'))) || convert_to(e.topic, 'UTF8') || "
    "int8send(octet_length(e.state)::bigint) || e.state"
)


def _first_suspect(engine: Engine, table: str, head: int, links: int) -> _Suspect | None:
    """Each chained event's kept link checked by the server on its own: link_n must equal
    sha256(kept link of the chain's previous position || canonical(n)). Below the lowest of a
    deleted position, a log row under the head without a link (inserted) and a link that does
    not hold, the log's and the chain's positions are the same, so every link there holds from
    genesis by induction, as the walk would find: the walk can start at that lowest one, with
    the kept link before it. None when the server cannot tell (a kept link that is not hex):
    the walk from genesis then gives the verdict.

    Where the chain holds position n - 1 (all but the first event, barring gaps in PostgreSQL's
    sequence), the previous link comes by a hash join, which PostgreSQL runs in parallel
    workers; the other rows are checked apart, the previous link found through the index. The
    anti-join that finds a deleted event runs only when some of the chain's `links` found no
    event in the log."""
    canonical_sql = _CANONICAL_SQL
    joined = (
        f"FROM {table} e LEFT JOIN audit_chain c ON c.position = e.notification_id "
        "LEFT JOIN audit_chain p ON p.position = e.notification_id - 1 WHERE e.notification_id <= %s"
    )
    consecutive = (
        "SELECT min(e.notification_id) FILTER (WHERE c.link IS NULL OR (p.link IS NOT NULL AND c.link "  # noqa: S608
        f"IS DISTINCT FROM encode(sha256(decode(p.link, 'hex') || {canonical_sql}), 'hex'))), count(*), count(c.link), "
        f"min(e.notification_id) FILTER (WHERE p.link IS NULL), max(e.notification_id) FILTER (WHERE p.link IS NULL) "
        f"{joined}"
    )
    previous = (
        "coalesce((SELECT k.link FROM audit_chain k WHERE k.position < e.notification_id "  # noqa: S608
        f"ORDER BY k.position DESC LIMIT 1), '{GENESIS.hex()}')"
    )
    apart = (
        "SELECT min(e.notification_id) FILTER (WHERE c.link IS NULL OR c.link IS DISTINCT FROM "  # noqa: S608
        f"encode(sha256(decode({previous}, 'hex') || {canonical_sql}), 'hex')) "
        f"FROM {table} e LEFT JOIN audit_chain c ON c.position = e.notification_id "
        "WHERE e.notification_id BETWEEN %s AND %s "
        "AND NOT EXISTS (SELECT 1 FROM audit_chain p WHERE p.position = e.notification_id - 1)"
    )
    try:
        first, chained, found, lowest, highest = _fetch(engine, consecutive, (head,))[0]
        if lowest is not None:
            (other,) = _fetch(engine, apart, (lowest, highest))[0]
            first = other if first is None or (other is not None and other < first) else first
    except engine.dialect.loaded_dbapi.DataError:  # decode() of a kept link that is not hex
        return None
    deleted = None if int(found) == links else _first_deleted(engine, table)
    if first is None and deleted is None:
        ends = (
            "SELECT (SELECT link FROM audit_chain WHERE position = %s), "  # noqa: S608
            f"(SELECT count(*) FROM {table} WHERE notification_id > %s)"
        )
        link, newer = _fetch(engine, ends, (head, head))[0]
        return _Suspect(None, head, int(chained), str(link), unchained=int(newer))
    return _suspect_at(engine, table, first, deleted)


def _suspect_at(engine: Engine, table: str, first: int | None, deleted: int | None) -> _Suspect:
    """The lowest of `first` (a row whose kept link is missing or does not hold) and `deleted`,
    with the log's last position before it, the events below it and the kept link there."""
    position = min(int(candidate) for candidate in (first, deleted) if candidate is not None)
    key, mark = log_position(engine.dialect.name), param_mark(engine.dialect.name)
    before = f"SELECT max({key}), count(*) FROM {table} WHERE {key} < {mark}"  # noqa: S608
    last, below = _fetch(engine, before, (position,))[0]
    after = 0 if last is None else int(last)
    link = GENESIS.hex()
    if after:
        kept = f"SELECT link FROM audit_chain WHERE position = {mark}"  # noqa: S608
        link = str(_fetch(engine, kept, (after,))[0][0])
    return _Suspect(position, after, int(below), link, deleted)


# SQLite (and PostgreSQL before 11): the links checked in Python, each on its own.


PARALLEL_FROM = 50_000  # the chain head position from which `verify` may split the log between processes


def _workers(engine: Engine, head: int, asked: int | None) -> int:
    """How many processes check the links: `asked`, or else two when the log is large enough
    for a fork to pay, a core is idle (the load average a core below the cores available: on a
    busy machine a second process was slower than one, docs/throughput.md, Audit verify) and
    this process runs no other thread (`ledger audit verify` runs none); one where a fork cannot
    see the same database (in memory)."""
    if fork_refusal(engine.url, threads=asked is None) is not None:  # projections/forking.py
        return 1
    if asked is not None:
        return max(1, asked)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        busy = os.getloadavg()[0] > cores - 1
    except OSError:  # no load average to be had: no way to tell a core is idle
        return 1
    if head < PARALLEL_FROM or cores < 2 or busy:
        return 1
    return 2


@dataclass(frozen=True)
class _Range:
    """A range of the log checked: the first row whose kept link is missing or does not hold
    (`suspect`, None: none), the rows before it (`held`, every one of them having held) and
    the link of the last of them (`link`, None when there were none)."""

    suspect: int | None
    held: int
    link: bytes | None


def _scan(engine: Engine, table: str, batch: int, after: int, upto: int) -> _Range:
    """The log's rows in (after, upto], each kept link checked against the one before it: the
    first from the kept link of the log's last row at or below `after`. A start that is not a
    link (none, or not hex) can only be after a row whose own check fails, in this range or a
    lower one, which is the lower suspect: any start does then."""
    link = GENESIS
    if after:
        key, mark = log_position(engine.dialect.name), param_mark(engine.dialect.name)
        start = (
            f"SELECT c.link FROM {table} e LEFT JOIN audit_chain c ON c.position = e.{key} "  # noqa: S608
            f"WHERE e.{key} <= {mark} ORDER BY e.{key} DESC LIMIT 1"
        )
        kept = _fetch(engine, start, (after,))
        try:
            link = bytes.fromhex(kept[0][0]) if kept and kept[0][0] is not None else GENESIS
        except (TypeError, ValueError):
            link = GENESIS
    spelling, topics = _spelling(engine.dialect.name), dict[Any, bytes]()
    held, last = 0, None
    for chunk in _stored(engine, table, batch, chained=True, after=after, upto=upto):
        index, link = _held(chunk, 0, len(chunk), link, spelling, topics)
        held += index
        if index:
            last = link
        if index < len(chunk):
            return _Range(int(chunk[index][0]), held, last)
    return _Range(None, held, last)


RANGES_PER_WORKER = 4  # ranges taken in turn: a process the machine slows takes fewer of them


def _scanned_suspect(engine: Engine, table: str, head: int, links: int, batch: int, workers: int) -> _Suspect:
    """`_first_suspect` in Python: each kept link up to the chain's head checked against the
    kept link of the log's row before it (below the lowest row where one does not hold, that
    row is the chain's previous position, barring a deletion, which the count of links shows).
    With `workers` > 1, the positions (0, head] are cut in ranges that this process and
    `workers` - 1 forked ones take in turn: every link is checked on its own, so the ranges are
    independent. A range left unchecked by a process that failed is checked here."""
    parts = 1 if workers == 1 else workers * RANGES_PER_WORKER
    cuts = [head * part // parts for part in range(parts + 1)]
    ranges = list(pairwise(cuts))
    found: dict[int, _Range] = {}
    taken = _shared_counter() if workers > 1 else None
    if taken is not None:

        def take() -> dict[int, _Range]:
            done: dict[int, _Range] = {}
            while True:
                with taken.get_lock():
                    part = taken.value
                    taken.value += 1
                if part >= len(ranges):
                    return done
                done[part] = _scan(engine, table, batch, *ranges[part])

        pending = [_in_child(engine, take) for _ in range(workers - 1)]
        try:
            found.update(take())
        finally:  # each process waited for, even when this one's ranges failed
            for result in pending:
                found.update(result() or {})
    for part, (low, high) in enumerate(ranges):
        if part not in found:
            found[part] = _scan(engine, table, batch, low, high)
    checked = [found[part] for part in range(len(ranges))]
    first = next((part.suspect for part in checked if part.suspect is not None), None)
    held = sum(part.held for part in checked)
    if first is None and held == links:
        link = next((part.link for part in reversed(checked) if part.link is not None), GENESIS)
        key, mark = log_position(engine.dialect.name), param_mark(engine.dialect.name)
        newer = f"SELECT count(*) FROM {table} WHERE {key} > {mark}"  # noqa: S608
        (unchained,) = _fetch(engine, newer, (head,))[0]
        return _Suspect(None, head, held, link.hex(), unchained=int(unchained))
    return _suspect_at(engine, table, first, _first_deleted(engine, table))


def _shared_counter() -> Any:
    """The next range to take, shared with the forked processes; None where the system has no
    shared memory or semaphores for it (this process then checks every range itself)."""
    try:
        return multiprocessing.get_context("fork").Value("q", 0)
    except OSError:
        return None


def _in_child(engine: Engine, work: Callable[[], T]) -> Callable[[], T | None]:
    """`work` started in a forked process (the engine's pooled connections left to the parent:
    the child opens its own); the returned function waits for its result, None if the process
    failed (the caller does the work itself, and meets the error there if there is one)."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)

    def run() -> None:
        engine.dispose(close=False)
        try:
            sender.send(work())
        except BaseException:
            sender.send(None)

    process = context.Process(target=run, daemon=True)
    try:
        process.start()
    except OSError:  # no process to be had (fork's EAGAIN, ENOMEM): this one does the work
        sender.close()
        receiver.close()
        return lambda: None
    sender.close()

    def result() -> T | None:
        try:
            done: T | None = receiver.recv()
        except EOFError:
            done = None
        finally:
            receiver.close()
            process.join()
        return done

    return result


def _bad(count: int, link: bytes, position: int, problem: str, detail: str) -> Verdict:
    return Verdict(ok=False, count=count, head=link.hex(), position=position, problem=problem, detail=detail)


def _what_differs(engine: Engine, record: Record) -> str:
    with engine.connect() as conn:
        row = conn.execute(select(audit_chain).where(audit_chain.c.position == record.id)).mappings().one()
    changed = [
        name
        for name, now in [
            ("originator_id", str(record.originator_id)),
            ("originator_version", record.originator_version),
            ("topic", record.topic),
        ]
        if row[name] != now
    ]
    if changed:
        return f"{', '.join(changed)} differ from what was chained"
    return "stored bytes differ from what was chained"
