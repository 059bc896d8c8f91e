"""Payments: one row per payment with what was captured, refunded and disputed, and its queries."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Engine, Table, select

from ledger.payments import Payment
from projections.bulk import upsert_rows
from projections.invoice_states import AggregateStates
from projections.paging import Page, keyset_page, with_utc
from projections.tables import payments
from projections.tracked import Positioned

LoadPayment = Callable[[UUID, int], Payment]


class PaymentsProjection:
    name = "payments"
    tables: tuple[Table, ...] = (payments,)
    kinds: tuple[type, ...] = (Payment.Event,)  # the events it reads (projections/tracked.py)

    def __init__(self, load: LoadPayment) -> None:
        self.states = AggregateStates(Payment, load)

    def prepare(self, batch: Sequence[Positioned]) -> None:
        self.states.prepare(event for _, event in batch)

    def process(self, conn: Connection, batch: Sequence[Positioned]) -> None:
        latest: dict[UUID, Payment] = {}
        for _, event in batch:
            if isinstance(event, Payment.Event):
                latest[event.originator_id] = self.states.apply(event)
        upsert_rows(conn, payments, [row_of(payment) for payment in latest.values()], ["payment_id"])

    def reset(self) -> None:
        self.states.forget()


def row_of(payment: Payment) -> dict[str, Any]:
    return {
        "payment_id": str(payment.id),
        "invoice_id": payment.invoice_id,
        "provider": payment.provider,
        "provider_payment_id": payment.provider_payment_id,
        "charge_id": payment.charge_id,
        "currency": payment.currency,
        "amount": payment.amount,
        "amount_captured": payment.amount_captured,
        "fee": payment.fee,
        "status": payment.status,
        "amount_refunded": payment.amount_refunded,
        "refunds": len(payment.refunds),
        "amount_disputed": payment.amount_disputed,
        "amount_dispute_lost": payment.amount_dispute_lost,
        "failed_attempts": len(payment.failed_attempt_ids),
        "failure_code": payment.failure["code"] if payment.failure else None,
        "failure_message": payment.failure["message"] if payment.failure else None,
        "created_at": payment.created_on,
        "updated_at": payment.modified_on,
        "version": payment.version,
    }


def payment_row(engine: Engine, payment_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(payments).where(payments.c.payment_id == payment_id)).mappings().first()
    return with_utc(dict(row)) if row else None


def list_payments(
    engine: Engine,
    *,
    invoice_id: str | None = None,
    status: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page:
    """Payments newest first, filtered, a page at a time (keyset pagination, as list_invoices)."""
    query = select(payments)
    if invoice_id:
        query = query.where(payments.c.invoice_id == invoice_id)
    if status:
        query = query.where(payments.c.status == status)
    return keyset_page(engine, query, payments.c.created_at, payments.c.payment_id, limit=limit, cursor=cursor)
