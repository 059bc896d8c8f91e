"""What the invoice-as-of tests share: an issued invoice with a few moments behind it, and an
invoice's state in a form two replays can be compared by."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from adapters.clock import ManualClock
from commands.application import BillingApplication
from commands.messages import NewLine
from ledger.invoices import Invoice

CUSTOMER = {"email": "ap@example.com", "name": "Example Ltd"}


def issued_invoice(app: BillingApplication, clock: ManualClock) -> UUID:
    """Created, a line added and removed, issued: a minute between each."""
    invoice_id = app.create_draft(customer=CUSTOMER, currency="usd", lines=[NewLine("Work", 3, 100_000, "20")]).result
    clock.advance(timedelta(minutes=1))
    line = app.add_line(invoice_id, NewLine("Support", 1, 5_000)).result
    clock.advance(timedelta(minutes=1))
    app.remove_line(invoice_id, line)
    clock.advance(timedelta(minutes=1))
    app.issue(invoice_id)
    return invoice_id


def state(invoice: Invoice | None) -> dict[str, Any] | None:
    return None if invoice is None else dict(vars(invoice))
