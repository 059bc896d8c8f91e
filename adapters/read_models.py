"""Wiring of the read models: which projections exist, on which engine, fed by which log."""

from __future__ import annotations

import logging
import threading
from typing import Any
from uuid import UUID

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine.interfaces import DBAPIConnection, ExceptionContext
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import ConnectionPoolEntry

from adapters.log_notifications import LogWaiter, Sleeper, log_waiter
from adapters.persistence import DATABASE_TIMEOUT_SECONDS, read_model_url
from commands.application import BillingApplication
from ledger.dunning.aggregate import Dunning
from ledger.errors import StoreUnavailableError
from ledger.invoices import Invoice
from ledger.mail.emails import InvoiceEmail
from ledger.payments import Payment
from projections.admin.activity import AdminActivityProjection
from projections.admin.dunning import DunningStatusProjection
from projections.admin.users import AdminUsersProjection
from projections.audit_chain import AuditChain
from projections.invoice_status import InvoiceStatusProjection
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


class _ReadModelLog:
    """The log as the read models need it: every position, only their topics decoded."""

    def __init__(self, app: BillingApplication, topics: tuple[str, ...] = READ_MODEL_TOPICS) -> None:
        self._app = app
        self._topics = topics

    def events_after(self, position: int, limit: int) -> list[tuple[int, Any]]:
        return self._app.events_after(position, limit, topics=self._topics)

    def head(self) -> int:
        return self._app.head()


def projection_runner(app: BillingApplication, engine: Engine) -> ProjectionRunner:
    runner = ProjectionRunner(engine, _ReadModelLog(app), read_model_projections(app))
    runner.create_tables()
    return runner


def read_model_projections(app: BillingApplication) -> list[Projection]:
    """Fresh instances (no in-memory state) of every read model, the audit chain last."""

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

    projections: list[Projection] = [
        InvoiceStatusProjection(load),
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
    ]
    projections.append(AuditChain(app))  # the tamper-evident chain, kept like a read model
    return projections


def audit_chain_runner(app: BillingApplication, engine: Engine) -> ProjectionRunner:
    """A runner for the audit chain alone (`ledger audit verify` extends the chain first)."""
    runner = ProjectionRunner(engine, _ReadModelLog(app, topics=()), [AuditChain(app)])  # it reads the bytes
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
