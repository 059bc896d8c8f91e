"""What an invoice prints, as text: amounts, dates, the status and the title.

Every amount goes through `Money.format` ("1,234.56 USD", "5,000 JPY", "1,250.500 KWD"), so
the PDF shows what the API, the CLI and the emails show. Nothing here depends on today's
date: the same invoice version must always print the same.
"""

from __future__ import annotations

import re

from ledger.invoices import DELETED, DRAFT, PAID, UNCOLLECTIBLE, VOID, Invoice
from ledger.money import Money

NONE = "\N{EM DASH}"
UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

STATUS_NAMES = {
    DRAFT: "Draft",
    "open": "Open",
    PAID: "Paid",
    VOID: "Void",
    UNCOLLECTIBLE: "Uncollectible",
    DELETED: "Deleted",
}

# The word across every page; an open invoice has none.
MARKS = {DRAFT: "DRAFT", VOID: "VOID", PAID: "PAID", UNCOLLECTIBLE: "UNCOLLECTIBLE", DELETED: "DELETED"}


def money(invoice: Invoice, minor_units: int) -> str:
    return Money(minor_units, invoice.currency).format()


def number(invoice: Invoice) -> str:
    """The invoice's number, or DRAFT until it is issued (a draft has none)."""
    return invoice.number or "DRAFT"


def title(invoice: Invoice) -> str:
    return f"Invoice {invoice.number}" if invoice.number else f"Draft invoice {invoice.id}"


def status(invoice: Invoice) -> str:
    return STATUS_NAMES.get(invoice.status, invoice.status.capitalize())


def mark(invoice: Invoice) -> str | None:
    return MARKS.get(invoice.status)


def issue_date(invoice: Invoice) -> str:
    return invoice.issued_at.date().isoformat() if invoice.issued_at else NONE


def due_date(invoice: Invoice) -> str:
    return invoice.due_date or NONE


def tax_rate(rate: str | None) -> str:
    return NONE if rate is None else f"{rate}%"


def file_name(invoice: Invoice) -> str:
    """`INV-000042.pdf`, or `draft-<id>.pdf`: the download's or the attachment's name. Only
    letters, digits, dot, dash and underscore, whatever the series is called, so a header needs
    no quoting rules and no client writes outside its download folder."""
    stem = invoice.number or f"draft-{invoice.id}"
    return f"{UNSAFE.sub('-', stem).strip('.-') or 'invoice'}.pdf"
