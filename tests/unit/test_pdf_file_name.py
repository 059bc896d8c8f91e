"""The PDF's file name (adapters/pdf/figures.py: the API's download, the mail's attachment): the
invoice's number, never anything a client could take for a path or a header's end."""

from __future__ import annotations

from uuid import UUID

import pytest

from adapters.pdf.figures import file_name
from ledger.invoices import Invoice
from ledger.lines import Line
from tests.invoice_documents import T0, at

ID = UUID("6f1c1d3e-29a4-4f59-9a55-0d2b6c7e9a10")


def _issued(series: str) -> Invoice:
    invoice = Invoice.create_draft(
        invoice_id=ID, customer={"email": "ap@example.com", "name": ""}, currency="usd", at=T0, series=series
    )
    invoice.add_line(Line.price(line_id="li_0", description="x", quantity="1", unit_amount=100), at=at(1))
    invoice.issue(sequence=7, at=at(2))
    return invoice


@pytest.mark.parametrize(
    ("series", "name"),
    [
        ("INV", "INV-000007.pdf"),
        ("2026_EU.A", "2026_EU.A-000007.pdf"),
        ('a"b\\c/../d', "a-b-c-..-d-000007.pdf"),
        ("Ωmega Σ", "mega--000007.pdf"),
        ("..", "000007.pdf"),
    ],
)
def test_the_number_names_the_file_with_safe_characters_only(series: str, name: str) -> None:
    assert file_name(_issued(series)) == name


def test_a_draft_is_named_after_its_id() -> None:
    draft = Invoice.create_draft(invoice_id=ID, customer={"email": "ap@example.com"}, currency="usd", at=T0)
    assert file_name(draft) == f"draft-{ID}.pdf"
