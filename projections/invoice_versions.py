"""Invoice versions: what `invoice_as_of` needs to start near the moment, in any process.

Two tables (projections/tables.py): `invoice_versions`, one row per invoice event with the
running maximum of the invoice's stamps up to it (`reached`), and `invoice_version_states`, the
invoice's state every STATE_INTERVAL versions in this read model's own encoding (`FORMAT`,
below: not the stored event format, which does not change; a new format is a migration and a
rebuild away, and a row of another format is ignored, never misread).

`InvoiceVersionIndex.locate(invoice_id, moment)` answers with two index seeks in one statement:
the first version whose running maximum passes the moment (a replay folds the events before it),
and the kept state nearest at or below the version before it. `commands/as_of.py` `InvoicesAsOf`
then folds at most STATE_INTERVAL - 1 events onto that state; when the read model lags, the
events it has not seen yet are folded too (docs/throughput.md, As of). Given the event store's
table (`StoredEvents`), the same statement returns those events' rows as well, decoded by the
adapter's decoder: one round trip in all; without it they are read from the store.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Engine, Table, bindparam, func, select

from commands.as_of import Located
from ledger.invoices import Invoice
from ledger.lines import Line
from projections.bulk import insert_tuples
from projections.invoice_states import FACTS_KEPT, InvoiceStates
from projections.tables import invoice_version_states, invoice_versions
from projections.tracked import Positioned

logger = logging.getLogger(__name__)

# Versions between kept states. A call folds at most STATE_INTERVAL - 1 events read from the
# store (~10 us each to read and decode); a state costs its whole encoding, and an invoice's
# state grows with its payments, so an invoice of N events keeps ~N^2 / (2 STATE_INTERVAL) ids.
STATE_INTERVAL = 64
FORMAT = 1  # the encoding below; bump it (with a migration that empties the table) when it changes

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

# Invoice's attributes in the order Invoice.__init__ sets them, with how each is encoded: "plain"
# values are JSON already (events carry plain JSON values only, ledger/invoices.py), "moment" is
# an aware datetime or None, "lines" the dict of Line by line id.
_FIELDS: tuple[tuple[str, str], ...] = (
    ("customer", "plain"),
    ("currency", "plain"),
    ("due_date", "plain"),
    ("memo", "plain"),
    ("metadata", "plain"),
    ("series", "plain"),
    ("status", "plain"),
    ("number", "plain"),
    ("issued_at", "moment"),
    ("paid_at", "moment"),
    ("lines", "lines"),
    ("frozen_totals", "plain"),
    ("amount_paid", "plain"),
    ("amount_refunded", "plain"),
    ("amount_overpaid", "plain"),
    ("credit_refunded", "plain"),
    ("written_off", "plain"),
    ("recovered", "plain"),
    ("payment_ids", "plain"),
    ("refund_ids", "plain"),
    ("disputes", "plain"),
    ("failed_attempts", "plain"),
    ("checkouts", "plain"),
)
_AGGREGATE = ("_id", "_version", "_created_on", "_modified_on", "_pending_events")  # the library's own
_KNOWN = frozenset(_AGGREGATE) | {name for name, _ in _FIELDS}
_LINE = ("line_id", "description", "quantity", "unit_amount", "tax_rate", "amount", "tax")
# A field added to Line (one with a default, say) would be left out of the encoding and decoded
# as its default: lines are refused instead, until FORMAT knows the new field.
_LINE_KNOWN = tuple(f.name for f in dataclass_fields(Line)) == _LINE


def micros(moment: datetime) -> int:
    """A moment as microseconds since the epoch: exact, and ordered as the moments are."""
    return (moment - _EPOCH) // _MICROSECOND


class UnencodableError(ValueError):
    """The invoice holds something FORMAT does not say how to encode."""


def encode_invoice(invoice: Invoice) -> str:
    """The invoice's state as FORMAT's JSON text; `decode_invoice` gives back an equal invoice.

    Raises UnencodableError for an attribute or a value the format does not know (an attribute
    added to Invoice without a format for it, say): never a lossy encoding."""
    state = vars(invoice)
    if state.keys() != _KNOWN:
        raise UnencodableError(f"unknown invoice attributes {sorted(state.keys() ^ _KNOWN)}")
    if state["_pending_events"]:
        raise UnencodableError("an invoice with pending events is not a stored state")
    document: dict[str, Any] = {
        "id": str(state["_id"]),
        "version": _plain(state["_version"]),
        "created_on": _moment(state["_created_on"]),
        "modified_on": _moment(state["_modified_on"]),
    }
    for name, kind in _FIELDS:
        value = state[name]
        if kind == "plain":
            document[name] = _plain(value)
        elif kind == "moment":
            document[name] = None if value is None else _moment(value)
        else:
            document[name] = [_line(line_id, line) for line_id, line in value.items()]
    return json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def decode_invoice(text: str) -> Invoice:
    """The invoice `encode_invoice` encoded (a fresh object: nothing is shared between calls)."""
    document = json.loads(text)
    invoice = object.__new__(Invoice)
    state = invoice.__dict__
    state["_id"] = UUID(document["id"])
    state["_version"] = document["version"]
    state["_created_on"] = datetime.fromisoformat(document["created_on"])
    state["_modified_on"] = datetime.fromisoformat(document["modified_on"])
    state["_pending_events"] = []
    for name, kind in _FIELDS:
        value = document[name]
        if kind == "moment":
            state[name] = None if value is None else datetime.fromisoformat(value)
        elif kind == "lines":
            state[name] = {fields[0]: Line(*fields) for fields in value}
        else:
            state[name] = value
    return invoice


def _moment(value: object) -> str:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise UnencodableError(f"expected an aware datetime, got {value!r}")
    return value.isoformat()


def _plain(value: object) -> object:
    """`value` itself if JSON gives it back equal and of the same types (no tuple, float, ...)."""
    if value is None or type(value) in (str, int, bool):
        return value
    if type(value) is list:
        for item in value:
            _plain(item)
        return value
    if type(value) is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise UnencodableError(f"a key that is not text: {key!r}")
            _plain(item)
        return value
    raise UnencodableError(f"not a plain JSON value: {type(value).__name__}")


def _line(line_id: str, line: object) -> list[object]:
    if type(line) is not Line or line.line_id != line_id:
        raise UnencodableError(f"not a line under its own id: {line!r}")
    if not _LINE_KNOWN:
        known = [f.name for f in dataclass_fields(Line)]
        raise UnencodableError(f"Line's fields {known} are not the format's {list(_LINE)}")
    values = [getattr(line, name) for name in _LINE]
    for value in values:
        _plain(value)
    return values


class InvoiceVersionsProjection:
    """Keeps invoice_versions and invoice_version_states: a row per invoice event, a state every
    STATE_INTERVAL versions, in the runner's transaction with its position."""

    name = "invoice_versions"
    tables: tuple[Table, ...] = (invoice_versions, invoice_version_states)
    kinds: tuple[type, ...] = (Invoice.Event,)  # the events it reads (projections/tracked.py)

    def __init__(self, states: InvoiceStates) -> None:
        # Shared with the other models that fold invoices (adapters/read_models.py): the fold
        # encodes the states this model keeps as it reaches them.
        self.states = states
        states.watch(_kept_state)
        self._reached: dict[UUID, tuple[int, int]] = {}  # invoice -> (version, running max stamp) last written
        self.max_reached = FACTS_KEPT  # the oldest past it: one indexed read when it comes back

    def prepare(self, batch: Sequence[Positioned]) -> None:
        self.states.prepare_batch(batch)

    def process(self, conn: Connection, batch: Sequence[Positioned]) -> None:
        events = [event for _, event in batch if isinstance(event, Invoice.Event)]
        taken = self.states.fold(batch).taken
        reached = self._reached_before(conn, events)
        # Each row a tuple in the table's column order (insert_tuples), not a dict: a rebuild
        # writes one per invoice event.
        rows: list[tuple[str, int, int]] = []
        kept: list[dict[str, Any]] = []
        texts: dict[UUID, str] = {}  # each invoice's id as text, made once a batch
        last: dict[UUID, int] = {}  # each invoice's last version in the batch
        for event in events:
            invoice_id: UUID = event.originator_id
            version: int = event.originator_version
            stamp = micros(event.timestamp)
            if version > 1:
                stamp = max(stamp, reached[invoice_id])
            reached[invoice_id] = stamp
            text = texts.get(invoice_id)
            if text is None:
                text = texts[invoice_id] = str(invoice_id)
            rows.append((text, version, stamp))
            last[invoice_id] = version
            state = taken.get((invoice_id, version)) if version % STATE_INTERVAL == 0 else None
            if isinstance(state, str):
                kept.append({"invoice_id": text, "version": version, "format": FORMAT, "state": state})
        insert_tuples(conn, invoice_versions, rows)
        if kept:
            # A plain insert, one parameter per state: when this was measured, insert_rows sent
            # each column as one array on PostgreSQL, and psycopg escapes an array's text byte by
            # byte (~0.25 us a byte, 10 ms for one late state of a 1,000-event invoice,
            # bench/asof.py). insert_rows now uses COPY for plain inserts; not measured again here.
            conn.execute(invoice_version_states.insert(), kept)
        for invoice_id, version in last.items():  # once an invoice, not once an event
            self._remember(invoice_id, (version, reached[invoice_id]))

    def reset(self) -> None:
        self.states.forget()
        self._reached.clear()

    def _reached_before(self, conn: Connection, events: Sequence[Any]) -> dict[UUID, int]:
        """Each invoice's running maximum before its first event in `events`: from memory, or
        from its row of the version before (written by an earlier batch, maybe another process)."""
        reached: dict[UUID, int] = {}
        for event in events:
            invoice_id: UUID = event.originator_id
            version: int = event.originator_version
            if invoice_id in reached or version == 1:
                reached.setdefault(invoice_id, 0)
                continue
            known = self._reached.get(invoice_id)
            if known is not None and known[0] == version - 1:
                reached[invoice_id] = known[1]
                continue
            previous = conn.execute(
                select(invoice_versions.c.reached).where(
                    invoice_versions.c.invoice_id == str(invoice_id), invoice_versions.c.version == version - 1
                )
            ).scalar()
            if previous is None:
                raise LookupError(f"invoice_versions has no row for invoice {invoice_id} version {version - 1}")
            reached[invoice_id] = int(previous)
        return reached

    def _remember(self, invoice_id: UUID, last: tuple[int, int]) -> None:
        self._reached.pop(invoice_id, None)
        if len(self._reached) >= self.max_reached:
            del self._reached[next(iter(self._reached))]  # the oldest: one indexed read when it comes back
        self._reached[invoice_id] = last


def _kept_state(invoice: Invoice) -> str | None:
    """The state to keep at the invoice's version, encoded now (the fold goes on changing it)."""
    if invoice.version % STATE_INTERVAL != 0:
        return None
    try:
        return encode_invoice(invoice)
    except UnencodableError:
        # No state kept: as of reads from the one before (correct, slower). A test encodes every
        # attribute the stories reach, so this is a new one.
        logger.warning("invoice %s version %s: state not kept", invoice.id, invoice.version, exc_info=True)
        return None


# One statement, one round trip (PostgreSQL: each is ~0.2-0.5 ms here), built once: building a
# statement costs more than running it (tens of microseconds of SQLAlchemy's Python per clause
# against a few microseconds for an indexed SQLite read). `past`: the running maximum never
# decreases with the version, so the versions at or before a moment are a prefix, and the first
# row past it is one seek of (invoice, reached). `state`: the kept state nearest below it.
_PAST = (
    select(invoice_versions.c.version)
    .where(invoice_versions.c.invoice_id == bindparam("invoice_id"), invoice_versions.c.reached > bindparam("at"))
    .order_by(invoice_versions.c.reached, invoice_versions.c.version)
    .limit(1)
    .scalar_subquery()
)
_NO_VERSION_BEYOND = 2**31 - 1  # versions are INTEGER columns
_KEPT = (
    select(invoice_version_states.c.state)
    .where(
        invoice_version_states.c.invoice_id == bindparam("invoice_id"),
        invoice_version_states.c.version < func.coalesce(_PAST, _NO_VERSION_BEYOND),
        invoice_version_states.c.format == FORMAT,
    )
    .order_by(invoice_version_states.c.version.desc())
    .limit(1)
    .scalar_subquery()
)
_LOCATE = select(_PAST.label("past"), _KEPT.label("state"))


# A stored event's row as selected (topic, originator id, originator version, state bytes) ->
# the domain event, as the library's mapper gives it (adapters/event_decoding.py EventDecoder).
DecodeStored = Callable[[str, UUID, int, bytes], object]


@dataclass(frozen=True)
class StoredEvents:
    """The event store's table in the read models' database, as SQL names it (qualified on
    PostgreSQL: the read models may live in another schema), and how to decode its rows."""

    table: str
    decode: DecodeStored


def _locate_with_events(dialect: str, table: str) -> str:
    """_LOCATE and the stored events it leaves to fold, in one statement: a first row (sort key 0)
    with the first version past the moment and the kept state nearest below it, then the rows of
    the events after that state's version and before that version (no bound when none is past
    the moment), by version. PostgreSQL plans the CTEs once; each is an index seek."""
    if dialect == "postgresql":
        invoice, at, stored_id, text, blob = "%(invoice_id)s", "%(at)s", "%(originator_id)s", "::text", "::bytea"
    else:
        invoice, at, stored_id, text, blob = ":invoice_id", ":at", ":originator_id", "", ""
    return (
        "WITH past AS ("  # noqa: S608  (the table name is the library's, not input)
        f"SELECT version FROM invoice_versions WHERE invoice_id = {invoice} AND reached > {at} "
        "ORDER BY reached, version LIMIT 1), "
        "kept AS (SELECT version, state FROM invoice_version_states "
        f"WHERE invoice_id = {invoice} AND format = {FORMAT} "
        f"AND version < coalesce((SELECT version FROM past), {_NO_VERSION_BEYOND}) "
        "ORDER BY version DESC LIMIT 1) "
        "SELECT 0 AS n, (SELECT version FROM past), (SELECT version FROM kept), (SELECT state FROM kept), "
        f"NULL{text}, NULL{blob} "
        f"UNION ALL SELECT originator_version, NULL, NULL, NULL, topic, state FROM {table} "
        f"WHERE originator_id = {stored_id} "
        "AND originator_version > coalesce((SELECT version FROM kept), 0) "
        f"AND originator_version < coalesce((SELECT version FROM past), {_NO_VERSION_BEYOND}) "
        "ORDER BY n"
    )


class InvoiceVersionIndex:
    """`commands/as_of.py` VersionIndex over the read model, on its engine.

    Given `events` (the event store's table, in the same database, as `ledger serve` gives it:
    adapters/read_models.py `invoice_version_index`), `locate` also reads the stored events to
    fold in the same statement: one round trip for the whole call instead of two, and no
    connection of the library's. Without it, InvoicesAsOf reads them from the store."""

    def __init__(self, engine: Engine, events: StoredEvents | None = None) -> None:
        self._engine = engine
        self._events = events
        self._query: str | None = None
        # One statement is its own transaction, with one snapshot of the read model and the log:
        # on PostgreSQL, autocommit spares psycopg's BEGIN and the pool's ROLLBACK, a round trip
        # each (measured: the locating call 1.1-1.2 ms -> 0.7-0.8 ms). SQLite's driver sends no
        # BEGIN before a SELECT: nothing to spare there.
        self._single = (
            engine.execution_options(isolation_level="AUTOCOMMIT") if engine.dialect.name == "postgresql" else engine
        )

    def locate(self, invoice_id: UUID, moment: datetime) -> Located:
        if self._events is not None:
            return self._locate_with_events(self._events, invoice_id, moment)
        with self._engine.connect() as conn:
            past, state = conn.execute(_LOCATE, {"invoice_id": str(invoice_id), "at": micros(moment)}).one()
        return Located(past=None if past is None else int(past), base=None if state is None else decode_invoice(state))

    def _locate_with_events(self, events: StoredEvents, invoice_id: UUID, moment: datetime) -> Located:
        with self._single.connect() as conn:
            dialect = conn.dialect.name
            if self._query is None:
                self._query = _locate_with_events(dialect, events.table)
            # The library stores SQLite's ids as 32 hex digits, PostgreSQL's in a uuid column.
            stored_id: object = invoice_id if dialect == "postgresql" else invoice_id.hex
            params = {"invoice_id": str(invoice_id), "at": micros(moment), "originator_id": stored_id}
            # Straight to the driver: SQLAlchemy's Row objects for up to 63 rows cost more than the statement.
            cursor = conn.exec_driver_sql(self._query, params).cursor
            assert cursor is not None
            rows = cursor.fetchall()
        _, past, _, state, _, _ = rows[0]
        decode = events.decode
        return Located(
            past=None if past is None else int(past),
            base=None if state is None else decode_invoice(state),
            # Decoded as folded: InvoicesAsOf stops at the first event past the moment.
            events=(decode(topic, invoice_id, int(version), bytes(data)) for version, _, _, _, topic, data in rows[1:]),
        )
