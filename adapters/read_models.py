"""Wiring of the read models: which projections exist, on which engine, fed by which log."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

from adapters.persistence import read_model_url
from commands.application import BillingApplication
from ledger.invoices import Invoice
from ledger.payments import Payment
from projections.audit_chain import AuditChain
from projections.invoice_status import InvoiceStatusProjection
from projections.journal import JournalProjection
from projections.payments import PaymentsProjection
from projections.runner import ProjectionRunner
from projections.tracked import Projection


def read_model_engine(database_url: str) -> Engine:
    engine = create_engine(read_model_url(database_url))
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(connection: DBAPIConnection, _: ConnectionPoolEntry) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA busy_timeout = 10000")  # wait for the event store's writer, never fail at once
    cursor.execute("PRAGMA journal_mode = WAL")
    # In WAL mode NORMAL syncs at checkpoints, not at every commit: a power cut may lose the last
    # read-model transactions (rows and their position together, so a restart redoes them), never
    # corrupt them. Events are written by the event store's own connections, at FULL.
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


def projection_runner(app: BillingApplication, engine: Engine) -> ProjectionRunner:
    runner = ProjectionRunner(engine, app, read_model_projections(app))
    runner.create_tables()
    return runner


def read_model_projections(app: BillingApplication) -> list[Projection]:
    """Fresh instances (no in-memory state) of every read model, the audit chain last."""

    def load(invoice_id: UUID, version: int) -> Invoice:
        return app.invoice(invoice_id, version=version)

    def load_payment(payment_id: UUID, version: int) -> Payment:
        return app.payment(payment_id, version=version)

    projections: list[Projection] = [
        InvoiceStatusProjection(load),
        JournalProjection(load),
        PaymentsProjection(load_payment),
    ]
    projections.append(AuditChain(app))  # the tamper-evident chain, kept like a read model
    return projections


def audit_chain_runner(app: BillingApplication, engine: Engine) -> ProjectionRunner:
    """A runner for the audit chain alone (`ledger audit verify` extends the chain first)."""
    runner = ProjectionRunner(engine, app, [AuditChain(app)])
    runner.create_tables()
    return runner
