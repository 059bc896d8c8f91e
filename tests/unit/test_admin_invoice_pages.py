"""The invoice pages' pure parts: which actions an invoice's state offers, and the CSV's cells."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ledger.invoices import BANK, Invoice
from ledger.money import Money
from tests.unit.given import at
from tests.unit.test_invoice_rules import draft, issued, line
from web.admin.invoice import allowed_actions
from web.admin.invoices import CSV_HEADER, csv_row, major_units


def offered(invoice: Invoice, *, checkout_configured: bool = True) -> set[str]:
    return {
        name for name, allowed in allowed_actions(invoice, checkout_configured=checkout_configured).items() if allowed
    }


def test_a_draft_can_only_be_issued() -> None:
    assert offered(draft(line())) == {"issue"}


def test_an_open_invoice_offers_every_collection_action() -> None:
    invoice = issued(1_000)

    assert offered(invoice) == {"void", "uncollectible", "payment", "checkout", "remind"}
    assert "checkout" not in offered(invoice, checkout_configured=False)  # no provider, no checkout


def test_a_partly_paid_invoice_cannot_be_voided() -> None:
    invoice = issued(1_000)
    invoice.apply_payment(payment_id="pay_1", amount=Money(400, "usd"), fee=0, cash_account=BANK, at=at(20))

    assert offered(invoice) == {"uncollectible", "payment", "checkout", "remind"}


def test_an_uncollectible_invoice_can_still_be_paid_or_voided() -> None:
    invoice = issued(1_000)
    invoice.mark_uncollectible(at=at(20))

    assert offered(invoice) == {"void", "payment", "checkout"}


def test_a_paid_invoice_offers_nothing() -> None:
    invoice = issued(1_000)
    invoice.apply_payment(payment_id="pay_1", amount=Money(1_000, "usd"), fee=0, cash_account=BANK, at=at(20))

    assert offered(invoice) == set()


@pytest.mark.parametrize(
    ("amount", "currency", "major"),
    [(1234, "usd", "12.34"), (5, "usd", "0.05"), (1500, "jpy", "1500"), (1234, "kwd", "1.234"), (0, "eur", "0.00")],
)
def test_major_units_follow_the_currency_exponent(amount: int, currency: str, major: str) -> None:
    assert major_units(amount, currency) == major


def row(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "invoice_id": "6f1c2d4e-0000-4000-8000-000000000001",
        "number": "INV-000001",
        "status": "open",
        "customer_email": "ap@example.com",
        "customer_name": "Example Ltd",
        "currency": "usd",
        "subtotal": 1000,
        "tax": 234,
        "total": 1234,
        "amount_paid": 0,
        "amount_refunded": 0,
        "amount_due": 1234,
        "due_date": "2026-04-01",
        "failed_attempts": 0,
        "created_at": datetime(2026, 3, 2, 9, tzinfo=UTC),
        "issued_at": datetime(2026, 3, 2, 10, tzinfo=UTC),
        "paid_at": None,
    }
    return {**base, **changes}


def test_a_csv_row_has_each_amount_in_both_units_under_its_header() -> None:
    cells = dict(zip(CSV_HEADER, csv_row(row()), strict=True))

    assert cells["total_major_units"] == "12.34"
    assert cells["total_minor_units"] == 1234
    assert cells["tax_major_units"] == "2.34"
    assert cells["created_at"] == "2026-03-02T09:00:00Z"
    assert cells["paid_at"] == ""


@pytest.mark.parametrize("name", ["=SUM(A1:A9)", "+1", "-1", "@cmd", "\tx"])
def test_a_cell_a_spreadsheet_would_run_is_kept_as_text(name: str) -> None:
    cells = dict(zip(CSV_HEADER, csv_row(row(customer_name=name)), strict=True))

    assert cells["customer_name"] == "'" + name
