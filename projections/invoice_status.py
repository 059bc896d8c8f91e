"""Invoice status: one row per invoice with its status, totals and what is still due."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table

from ledger.invoices import Invoice
from projections.bulk import upsert_rows
from projections.invoice_states import InvoiceStates
from projections.tables import invoice_status
from projections.tracked import Positioned


class InvoiceStatusProjection:
    name = "invoice_status"
    tables: tuple[Table, ...] = (invoice_status,)
    kinds: tuple[type, ...] = (Invoice.Event,)  # the events it reads (projections/tracked.py)

    def __init__(self, states: InvoiceStates) -> None:
        self.states = states  # shared with the other models that fold invoices (adapters/read_models.py)

    def prepare(self, batch: Sequence[Positioned]) -> None:
        self.states.prepare_batch(batch)

    def process(self, conn: Connection, batch: Sequence[Positioned]) -> None:
        latest = self.states.fold(batch).latest
        upsert_rows(conn, invoice_status, [row_of(invoice) for invoice in latest.values()], ["invoice_id"])

    def reset(self) -> None:
        self.states.forget()


def row_of(invoice: Invoice) -> dict[str, Any]:
    last_failure = invoice.failed_attempts[-1] if invoice.failed_attempts else None
    return {
        "invoice_id": str(invoice.id),
        "number": invoice.number,
        "status": invoice.status,
        "customer_email": invoice.customer["email"],
        "customer_name": invoice.customer["name"],
        "currency": invoice.currency,
        "subtotal": invoice.subtotal,
        "tax": invoice.tax,
        "total": invoice.total,
        "amount_paid": invoice.amount_paid,
        "amount_refunded": invoice.amount_refunded,
        "amount_due": invoice.amount_due,
        "amount_overpaid": invoice.amount_overpaid,
        "credit_refunded": invoice.credit_refunded,
        "amount_disputed": invoice.amount_disputed,
        "amount_dispute_lost": invoice.amount_dispute_lost,
        "written_off": invoice.written_off,
        "due_date": invoice.due_date,
        "created_at": invoice.created_on,
        "issued_at": invoice.issued_at,
        "paid_at": invoice.paid_at,
        "failed_attempts": len(invoice.failed_attempts),
        "last_failure_code": last_failure["code"] if last_failure else None,
        "last_failure_message": last_failure["message"] if last_failure else None,
        "last_failure_at": last_failure["at"] if last_failure else None,
        "version": invoice.version,
    }
