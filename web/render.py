"""The JSON shapes of the API: an invoice, a payment, an event of the audit trail, a list row,
each a TypedDict of web/models.py (mypy holds this module to the documented shapes).

Money is integer minor units beside its `currency`; moments are ISO 8601 in UTC; dates are
YYYY-MM-DD. Quantities and tax rates are decimal strings, as given.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from ledger.invoices import Invoice
from ledger.payments import Payment
from web import models

_BASE_FIELDS = {"originator_id", "originator_version", "timestamp", "originator_topic"}


def moment(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def invoice_json(invoice: Invoice, *, today: date | None = None) -> models.Invoice:
    return {
        "id": str(invoice.id),
        "object": "invoice",
        "number": invoice.number,
        "status": invoice.status,
        "overdue": invoice.is_overdue(today) if today is not None else None,
        "currency": invoice.currency,
        "customer": {"email": invoice.customer["email"], "name": invoice.customer["name"]},
        "lines": [
            {
                "id": line.line_id,
                "description": line.description,
                "quantity": line.quantity,
                "unit_amount": line.unit_amount,
                "tax_rate": line.tax_rate,
                "amount": line.amount,
                "tax": line.tax,
            }
            for line in invoice.lines.values()
        ],
        "subtotal": invoice.subtotal,
        "tax": invoice.tax,
        "total": invoice.total,
        "amount_paid": invoice.amount_paid,
        "amount_refunded": invoice.amount_refunded,
        "amount_due": invoice.amount_due,
        "amount_overpaid": invoice.amount_overpaid,
        "amount_disputed": invoice.amount_disputed,
        "amount_dispute_lost": invoice.amount_dispute_lost,
        "written_off": invoice.written_off,
        "due_date": invoice.due_date,
        "memo": invoice.memo,
        "metadata": dict(invoice.metadata),
        "failed_attempts": [_attempt(attempt) for attempt in invoice.failed_attempts],
        "version": invoice.version,
        "created_at": moment(invoice.created_on),
        "updated_at": moment(invoice.modified_on),
        "issued_at": moment(invoice.issued_at),
        "paid_at": moment(invoice.paid_at),
    }


def _attempt(attempt: dict[str, str]) -> models.FailedAttempt:
    return {
        "payment_id": attempt["payment_id"],
        "code": attempt["code"],
        "message": attempt["message"],
        "at": attempt["at"],
    }


def payment_json(payment: Payment) -> models.Payment:
    return {
        "id": str(payment.id),
        "object": "payment",
        "invoice_id": payment.invoice_id,
        "provider": payment.provider,
        "reference": payment.provider_payment_id,
        "status": payment.status,
        "currency": payment.currency,
        "amount": payment.amount,
        "amount_captured": payment.amount_captured,
        "amount_refunded": payment.amount_refunded,
        "fee": payment.fee,
        "version": payment.version,
        "created_at": moment(payment.created_on),
    }


def event_json(event: Invoice.Event) -> models.Event:
    data: dict[str, Any] = {}
    if is_dataclass(event):
        data = {f.name: _plain(getattr(event, f.name)) for f in fields(event) if f.name not in _BASE_FIELDS}
    return {
        "version": event.originator_version,
        "type": getattr(type(event), "TOPIC", type(event).__name__),
        "at": moment(event.timestamp),
        "data": data,
    }


def row_json(row: dict[str, Any]) -> models.InvoiceSummary:
    """A row of the invoice_status read model, as a list item."""
    return {
        "id": row["invoice_id"],
        "object": "invoice_summary",
        "number": row["number"],
        "status": row["status"],
        "customer": {"email": row["customer_email"], "name": row["customer_name"]},
        "currency": row["currency"],
        "subtotal": row["subtotal"],
        "tax": row["tax"],
        "total": row["total"],
        "amount_paid": row["amount_paid"],
        "amount_refunded": row["amount_refunded"],
        "amount_due": row["amount_due"],
        "due_date": row["due_date"],
        "failed_attempts": row["failed_attempts"],
        "version": row["version"],
        "created_at": moment(row["created_at"]),
        "issued_at": moment(row["issued_at"]),
        "paid_at": moment(row["paid_at"]),
    }


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return moment(value)
    if isinstance(value, date | Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
