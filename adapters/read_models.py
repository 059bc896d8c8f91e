"""Wiring of the read models: which projections exist, on which engine, fed by which log."""

from __future__ import annotations

import logging
import threading
from bisect import bisect_right
from collections.abc import Sequence
from itertools import repeat
from typing import Any, NamedTuple
from uuid import UUID

from eventsourcing.domain import DomainEvent
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine.interfaces import DBAPIConnection, ExceptionContext
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import ConnectionPoolEntry

from adapters.event_decoding import EventDecoder
from adapters.log_notifications import LogWaiter, Sleeper, log_waiter
from adapters.persistence import DATABASE_TIMEOUT_SECONDS, read_model_url
from commands.application import BillingApplication, Undecoded
from ledger.dunning.aggregate import Dunning
from ledger.errors import StoreUnavailableError
from ledger.invoices import Invoice
from ledger.mail.emails import InvoiceEmail
from ledger.payments import Payment
from projections.admin.activity import AdminActivityProjection
from projections.admin.dunning import DunningStatusProjection
from projections.admin.users import AdminUsersProjection
from projections.audit_chain import AuditChain, RawLog, Record, log_position, param_mark, stored_id_text
from projections.invoice_states import InvoiceStates
from projections.invoice_status import InvoiceStatusProjection
from projections.invoice_versions import InvoiceVersionIndex, InvoiceVersionsProjection, StoredEvents
from projections.journal import JournalProjection
from projections.mail.emails import InvoiceEmailsProjection
from projections.payments import PaymentsProjection
from projections.reconciliation.items import ReconciliationItemsProjection
from projections.reconciliation.ledger_side import LedgerSideProjection
from projections.reconciliation.runs import ReconciliationRunsProjection
from projections.runner import GATHER_SECONDS, Gathering, ProjectionRunner
from projections.tracked import Projection
from projections.webhook_inbox import WebhookInboxProjection

log = logging.getLogger("ledger.read_models")


def read_model_engine(database_url: str, timeout_seconds: float = DATABASE_TIMEOUT_SECONDS) -> Engine:
    # A request waits for a pooled connection as long as it waits for the event store's.
    engine = create_engine(read_model_url(database_url), pool_timeout=timeout_seconds)
    event.listen(engine, "handle_error", _lost_database_as_unavailable)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _lost_database_as_unavailable(context: ExceptionContext) -> None:
    """A read model that cannot reach its database is the store being unavailable (a 503 to
    retry), as for the event store, not an unexpected error (a 500)."""
    if not isinstance(context.original_exception, Exception):  # Ctrl-C mid-query (SQLAlchemy calls it a
        return  # disconnect too): it stops the command, as it would have without this hook
    if context.is_disconnect or isinstance(context.sqlalchemy_exception, OperationalError):
        raise StoreUnavailableError(str(context.original_exception)) from context.original_exception


def _sqlite_pragmas(connection: DBAPIConnection, _: ConnectionPoolEntry) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA busy_timeout = 10000")  # wait for the event store's writer, never fail at once
    cursor.execute("PRAGMA journal_mode = WAL")
    # In WAL mode NORMAL syncs at checkpoints, not at every commit: a power cut may lose the last
    # read-model transactions (rows and their position together, so a restart redoes them), never
    # corrupt them. Events are written by the event store's own connections, at FULL.
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


# The topics the read models read (invoice status, payments, journal, the reconciliation's ledger
# side, its items and runs, the webhook inbox, the dunning status, the dashboard's users and their
# actions, the invoice emails); the audit chain reads the stored bytes of every record itself. Usage
# records, receipts, portal links (read from the store by the portal, docs/portal.md) and the like
# are not decoded for them.
READ_MODEL_TOPICS = (
    "invoice.",
    "payment.",
    "payout.",
    "processor-fee.",
    "reconciliation-",
    "provider-event.",
    "dunning.",
    "admin-user.",
    "admin-action.",
    "invoice-email.",
)


class StoredRow(NamedTuple):
    """A stored event as selected: what the audit chain hashes (`projections/audit_chain.py` Record).
    The originator id is UUID text with hyphens, the spelling the chain covers on both backends."""

    id: int
    originator_id: str
    originator_version: int
    topic: str
    state: bytes


# Reads kept for the audit chain: a pass reads at most one batch per distinct position.
_READS_KEPT = 4


class _ReadModelLog:
    """The log as the read models need it: every position, only their topics decoded.

    With the read models' `engine` (the events live in the same database), it selects the stored
    rows itself, in keyset order (rowid on SQLite, notification_id on PostgreSQL), and decodes the
    read models' topics with msgspec (`EventDecoder`): the library's recorder builds a
    Notification and a UUID per row and its mapper decodes with json's object hook, which made
    reading most of a rebuild (docs/throughput.md §Replay). The rows just read are kept, so the
    audit chain hashes the same stored bytes (`records_after`) instead of reading the log again.
    Without an engine it reads through the application, as before.

    A keyset read never passes over a position that a later commit fills, for the same reason
    the library's reader does not: its PostgreSQL writer takes the events table's EXCLUSIVE lock
    before the INSERT draws ids and keeps it until the commit, so ids are visible in commit
    order (SQLite has one writer). The library's database functions skip that lock: they stay
    off (adapters/persistence.py); a gap is a rolled-back insert and is never filled.
    """

    def __init__(
        self, app: BillingApplication, topics: tuple[str, ...] = READ_MODEL_TOPICS, engine: Engine | None = None
    ) -> None:
        self._app = app
        self._topics = topics
        self._engine = engine
        self._decoder = EventDecoder(app.mapper)
        self._reads: dict[int, list[StoredRow]] = {}  # position read after -> the rows
        self._query: str | None = None
        self._skipped: dict[str, Undecoded] = {}
        self._skip: frozenset[str] = frozenset()  # topics under `topics` left undecoded (`part_runner`)

    def events_after(self, position: int, limit: int) -> list[tuple[int, Any]]:
        if self._engine is None:
            return self._app.events_after(position, limit, topics=self._topics)
        rows = self._read(self._engine, position, limit)
        return self._decoder.decode_rows(rows, self._topics, self._undecoded, self._skip)

    def undecoded_after(self, position: int, limit: int) -> list[tuple[int, Any]]:
        """The events after `position`, every one `Undecoded`: for a pass's models that read
        only positions (the audit chain, whose stored bytes `records_after` then gives)."""
        if self._engine is None:
            return self._app.events_after(position, limit, topics=())
        undecoded = self._undecoded
        return [(row[0], undecoded(row[3])) for row in self._read(self._engine, position, limit)]

    def _read(self, engine: Engine, position: int, limit: int) -> list[StoredRow]:
        """The rows after `position`, kept for `records_after`."""
        rows = self._select(engine, position, limit)
        if len(self._reads) >= _READS_KEPT:
            del self._reads[next(iter(self._reads))]
        self._reads[position] = rows
        return rows

    def _undecoded(self, topic: str) -> Undecoded:
        # One per topic, shared (it is frozen): building one per skipped event cost 0.56 us
        # against 0.14 us to look it up, on logs where most events are skipped (usage records).
        try:
            return self._skipped[topic]
        except KeyError:
            made = self._skipped[topic] = Undecoded(topic)
            return made

    def records_after(self, position: int, limit: int) -> Sequence[Record]:
        """The stored rows after `position`: from a read of this pass when one covers them (the
        same rows the events came from), else from the store."""
        for after, rows in self._reads.items():
            if after <= position:
                # Rows after `after` as they were read, in order: a contiguous stretch of the log,
                # whose stored rows never change. It answers if it holds `limit` rows past `position`.
                start = bisect_right(rows, position, key=_position)
                if len(rows) - start >= limit:
                    return rows[start : start + limit]
        if self._engine is None:
            return self._app.records_after(position, limit)
        return self._select(self._engine, position, limit)

    def head(self) -> int:
        return self._app.head()

    def _select(self, engine: Engine, position: int, limit: int) -> list[StoredRow]:
        with engine.connect() as conn:
            if self._query is None:
                self._query = _select_query(conn.dialect.name, self._app.events_table_name)
            # Straight to the driver: SQLAlchemy's Row objects would cost as much as the decoding.
            cursor = conn.exec_driver_sql(self._query, (position, limit)).cursor
            assert cursor is not None
            # tuple.__new__ mapped in C: StoredRow._make is a Python call per row (0.9 us of a 6 us event).
            return list(map(tuple.__new__, repeat(StoredRow), cursor.fetchall()))


def _position(row: StoredRow) -> int:
    return row.id


def _select_query(dialect: str, table: str) -> str:
    """The log's rows after a position, the id as UUID text: what the chain hashes (str(UUID))
    and the decoder takes (UUID(text))."""
    key, mark = log_position(dialect), param_mark(dialect)
    return (
        f"SELECT {key}, {stored_id_text(dialect, 'originator_id')}, originator_version, topic, state "  # noqa: S608
        f"FROM {table} WHERE {key} > {mark} ORDER BY {key} LIMIT {mark}"
    )


def projection_runner(app: BillingApplication, engine: Engine) -> ProjectionRunner:
    log = _ReadModelLog(app, engine=engine)
    runner = ProjectionRunner(engine, log, read_model_projections(app, log))
    runner.create_tables()
    return runner


def part_runner(app: BillingApplication, engine: Engine, models: frozenset[str]) -> ProjectionRunner:
    """A runner over the models named only, their tables taken as they are (no migration, no
    index made): one part of a rebuild split over processes (adapters/parallel_rebuild.py).
    Its log leaves undecoded the event classes those models are never handed (`topics_skipped`)."""
    log = _ReadModelLog(app, engine=engine)
    projections = [p for p in read_model_projections(app, log) if p.name in models]
    log._skip = topics_skipped(projections)
    return ProjectionRunner(engine, log, projections)


def topics_skipped(projections: Sequence[Projection]) -> frozenset[str]:
    """The read models' topics that no model of `projections` is handed: the `TOPIC` of each
    event class under the read models' topics (`READ_MODEL_TOPICS`) that is under none of their
    `kinds` (the runner hands a model only the events of its kinds). None where a model names
    no kinds (it is handed every event); a model that `decodes = False` needs none decoded. A
    stored topic that names no class known here (an alias, an unknown one) is decoded as one
    process decodes it, and fails or is handed on the same way."""
    wanted: list[type] = []
    for projection in projections:
        if not getattr(projection, "decodes", True):
            continue
        kinds: tuple[type, ...] | None = getattr(projection, "kinds", None)
        if kinds is None:
            return frozenset()
        wanted.extend(kinds)
    kinds_wanted = tuple(wanted)
    return frozenset(
        topic
        for cls, topic in _event_topics().items()
        if topic.startswith(READ_MODEL_TOPICS) and not issubclass(cls, kinds_wanted)
    )


def _event_topics() -> dict[type, str]:
    """Every event class of this process that declares its own `TOPIC`, with it."""
    found: dict[type, str] = {}
    stack: list[type] = [DomainEvent]
    seen: set[type] = set()
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        topic = vars(cls).get("TOPIC")
        if isinstance(topic, str):
            found[cls] = topic
        stack.extend(cls.__subclasses__())
    return found


def invoice_version_index(app: BillingApplication, engine: Engine) -> InvoiceVersionIndex:
    """invoice_as_of's index over the invoice_versions read model on `engine`, which reads the
    events to fold from the event store's table in the same statement (the read models live in
    the events' database, as this module's log reads them; docs/throughput.md, As of)."""
    return InvoiceVersionIndex(engine, StoredEvents(app.events_table_name, EventDecoder(app.mapper).decode))


def read_model_projections(app: BillingApplication, log: RawLog | None = None) -> list[Projection]:
    """Fresh instances (no in-memory state) of every read model, the audit chain last (reading
    the stored bytes from `log`, the runner's, when given: the rows the pass already read)."""

    def load(invoice_id: UUID, version: int) -> Invoice:
        return app.invoice(invoice_id, version=version)

    def load_payment(payment_id: UUID, version: int) -> Payment:
        return app.payment(payment_id, version=version)

    def load_dunning(dunning_id: UUID, version: int) -> Dunning:
        dunning = app.runner.get(dunning_id, Dunning, version=version)
        if dunning is None:
            raise LookupError(f"dunning {dunning_id} is not in the log")  # the log gave one of its events
        return dunning

    def load_email(email_id: UUID, version: int) -> InvoiceEmail:
        return app.mail.email(email_id, version=version)

    # One fold of each invoice event for the models that need the invoice's state (each batch
    # folded once between them: projections/invoice_states.py).
    invoices = InvoiceStates(load)
    projections: list[Projection] = [
        InvoiceStatusProjection(invoices),
        JournalProjection(load),
        PaymentsProjection(load_payment),
        LedgerSideProjection(load_payment),
        ReconciliationItemsProjection(),
        ReconciliationRunsProjection(),
        WebhookInboxProjection(),
        DunningStatusProjection(load_dunning),
        AdminUsersProjection(),
        AdminActivityProjection(),
        InvoiceEmailsProjection(load_email),
        InvoiceVersionsProjection(invoices),  # invoice_as_of's index (projections/invoice_versions.py)
    ]
    projections.append(AuditChain(log or app))  # the tamper-evident chain, kept like a read model
    return projections


def audit_chain_runner(app: BillingApplication, engine: Engine) -> ProjectionRunner:
    """A runner for the audit chain alone (`ledger audit verify` extends the chain first)."""
    log = _ReadModelLog(app, topics=(), engine=engine)  # it reads the bytes, decodes nothing
    runner = ProjectionRunner(engine, log, [AuditChain(log)])
    runner.create_tables()
    return runner


class InProcessProjections:
    """The read models kept up to date inside a web process (`ledger serve`).

    One runner, one lock: the follower thread and requests that want their own writes in a
    list (`catch_up`) never apply batches at the same time in this process; other processes
    are kept apart by the runner's transaction (see projections/runner.py). The follower waits
    for new events with the backend's waiter (NOTIFY on PostgreSQL, polling on SQLite).
    """

    def __init__(
        self,
        app: BillingApplication,
        engine: Engine,
        database_url: str | None = None,
        gather_seconds: float = GATHER_SECONDS,
    ) -> None:
        self.engine = engine
        self.gather_seconds = gather_seconds
        self.runner = projection_runner(app, engine)
        self._app = app
        self._database_url = database_url
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._waiter: LogWaiter | None = None

    def catch_up(self) -> None:
        """Apply everything logged so far (read-your-writes for the lists)."""
        with self._lock:
            self.runner.catch_up()

    def start(self) -> None:
        """Follow the log on a daemon thread until `stop()`."""
        if self._thread is not None:
            return
        self._stop.clear()
        # LISTEN before the first pass: no commit falls between the two.
        self._waiter = log_waiter(self._app, self._database_url) if self._database_url else Sleeper()
        self._thread = threading.Thread(
            target=self._follow, args=(self._waiter,), name="ledger-projections", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._waiter is not None:
            self._waiter.interrupt()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        if self._waiter is not None:
            self._waiter.close()
            self._waiter = None

    def _follow(self, waiter: LogWaiter) -> None:
        # Under load, a pause between passes (projections/runner.py Gathering): each pass then
        # takes more events at once, and the webhook path pays a pass's fixed cost less often.
        gathering = Gathering(self.gather_seconds)
        while not self._stop.is_set():
            try:
                with self._lock:
                    applied = self.runner.run_once()
            except Exception as error:  # the store is down: try again later, never die
                log.warning("read models not updated: %s", error)
                applied = 0
            delay = gathering.after(applied)  # every pass, empty ones too: they end a busy spell
            if self._stop.is_set():
                return
            if applied == 0:
                waiter.wait(waiter.poll_seconds)
            elif delay:
                self._stop.wait(delay)  # outside the lock: requests' catch_up need not wait for it
