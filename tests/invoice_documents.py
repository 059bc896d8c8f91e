"""Invoices to print, and reading printed ones back: what the PDF tests share.

The invoices are built on the aggregate directly (no store): the PDF depends on the invoice's
state and its last event's time only. pypdf reads the text back as a reader's tool would.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid5

from pypdf import PdfReader

from ledger.invoices import BANK, Invoice
from ledger.lines import Line
from ledger.money import Money
from ledger.seller import Seller

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NAMESPACE = UUID("6f1c1d3e-29a4-4f59-9a55-0d2b6c7e9a10")

SELLER = Seller(
    name="Harbour Ledger Ltd",
    address=("1 Harbour Street", "Dublin D02 XY00", "Ireland"),
    email="billing@harbour.example",
    tax_id="IE1234567T",
    payment_instructions="Bank transfer to IBAN IE29 AIBK 9311 5212 3456 78, quoting the invoice number.",
)

# (description, quantity, unit amount in minor units, tax rate)
LineSpec = tuple[str, str, int, str | None]
CONSULTING: Sequence[LineSpec] = (("Consulting", "7.5", 12_000, "20"), ("Support plan", "1", 4_999, None))


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def draft(
    *,
    currency: str = "usd",
    name: str = "Example Ltd",
    email: str = "ap@example.com",
    lines: Sequence[LineSpec] = CONSULTING,
    memo: str = "",
    key: str = "invoice",
) -> Invoice:
    invoice = Invoice.create_draft(
        invoice_id=uuid5(NAMESPACE, key),
        customer={"email": email, "name": name},
        currency=currency,
        at=T0,
        due_date="2026-04-01",
        memo=memo,
    )
    for index, (description, quantity, unit_amount, tax_rate) in enumerate(lines):
        line = Line.price(
            line_id=f"li_{index}",
            description=description,
            quantity=quantity,
            unit_amount=unit_amount,
            tax_rate=tax_rate,
        )
        invoice.add_line(line, at=at(1))
    return invoice


def issued(invoice: Invoice) -> Invoice:
    invoice.issue(sequence=42, at=at(2))
    return invoice


def pay(invoice: Invoice, amount: int, *, payment_id: str = "pay_1", minutes: int = 3) -> Invoice:
    invoice.apply_payment(
        payment_id=payment_id, amount=Money(amount, invoice.currency), fee=0, cash_account=BANK, at=at(minutes)
    )
    return invoice


def refund(invoice: Invoice, amount: int, *, minutes: int = 4) -> Invoice:
    invoice.apply_refund(
        payment_id="pay_1", refund_id="re_1", amount=Money(amount, invoice.currency), cash_account=BANK, at=at(minutes)
    )
    return invoice


def money(invoice: Invoice, amount: int) -> str:
    return Money(amount, invoice.currency).format()


def reader(pdf: bytes) -> PdfReader:
    return PdfReader(io.BytesIO(pdf))


def pages_text(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in reader(pdf).pages]


def text_of(pdf: bytes) -> str:
    return "\n".join(pages_text(pdf))


def flat(text: str) -> str:
    """Whitespace as single spaces: a description wrapped over lines reads as one again."""
    return " ".join(text.split())


def printed(label: str, text: str) -> str:
    """The value printed after a totals label ("Amount due 1,234.56 USD" -> "1,234.56 USD"); the
    totals come last, so the last line that starts with the label (not "Tax ID: ...")."""
    found = re.findall(rf"^{re.escape(label)} (.+)$", text, re.MULTILINE)
    assert found, f"no {label!r} in {text!r}"
    return str(found[-1]).strip()
