"""Invoice PDFs read back with pypdf: what they say, in which currency's digits, in which
script, under which mark; and that the same invoice version always gives the same bytes."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.pdf.fonts import BOLD_FILE, DEFAULT_FONT_DIR, REGULAR_FILE, find_fonts
from adapters.pdf.render import FontMissingError, render_invoice_pdf
from ledger.invoices import Invoice
from tests.invoice_documents import (
    SELLER,
    at,
    draft,
    flat,
    issued,
    money,
    pages_text,
    pay,
    printed,
    reader,
    refund,
    text_of,
)

MARKS = ("DRAFT", "VOID", "PAID", "UNCOLLECTIBLE")


def render(invoice: Invoice, portal_url: str | None = None) -> str:
    return text_of(render_invoice_pdf(invoice, seller=SELLER, portal_url=portal_url))


@pytest.mark.parametrize(
    ("currency", "unit_amount", "unit", "total"),
    [
        ("jpy", 5_000, "5,000 JPY", "41,250 JPY"),  # no minor unit
        ("usd", 123_456, "1,234.56 USD", "10,185.12 USD"),
        ("kwd", 1_250_500, "1,250.500 KWD", "10,316.625 KWD"),  # three decimals
    ],
)
def test_every_amount_prints_as_money_formats_it(currency: str, unit_amount: int, unit: str, total: str) -> None:
    invoice = pay(issued(draft(currency=currency, lines=[("Hosting", "7.5", unit_amount, "10")])), unit_amount)
    text = render(invoice)

    assert "Number INV-000042" in text
    assert "Example Ltd" in text
    assert unit in text
    assert money(invoice, invoice.lines["li_0"].amount) in text
    assert printed("Subtotal", text) == money(invoice, invoice.subtotal)
    assert printed("Tax", text) == money(invoice, invoice.tax)
    assert printed("Total", text) == money(invoice, invoice.total) == total
    assert printed("Amount paid", text) == money(invoice, unit_amount)
    assert printed("Amount due", text) == money(invoice, invoice.amount_due)
    assert "Amount refunded" not in text  # nothing was


@pytest.mark.parametrize("name", ["Zoë Ångström", "Αθηνά Παπαδοπούλου", "Дмитрий Шостакович", "Łukasz Żółć"])
def test_names_in_any_european_script_print_as_given(name: str) -> None:
    invoice = issued(draft(name=name, currency="eur"))
    pdf = render_invoice_pdf(invoice, seller=SELLER)

    text = text_of(pdf)
    assert name in text
    assert "INV-000042" in text
    assert printed("Amount due", text) == money(invoice, invoice.amount_due) == "1,129.99 EUR"
    fonts = {
        str(font["/BaseFont"])
        for page in reader(pdf).pages
        for font in page["/Resources"]["/Font"].values()  # type: ignore[attr-defined]
    }
    assert fonts
    assert all("DejaVu" in font for font in fonts)  # embedded TrueType, not a core font


def test_the_heading_names_seller_customer_number_dates_and_status() -> None:
    text = render(issued(draft(name="Example Ltd", email="ap@example.com")))

    for expected in [
        "Harbour Ledger Ltd",
        "1 Harbour Street",
        "billing@harbour.example",
        "Tax ID: IE1234567T",
        "Example Ltd",
        "ap@example.com",
        "Number INV-000042",
        "Issue date 2026-03-02",
        "Due date 2026-04-01",
        "Status Open",
    ]:
        assert expected in text


def test_a_draft_is_numbered_draft_and_marked_draft() -> None:
    text = render(draft())

    assert "Number DRAFT" in text
    assert "Issue date \N{EM DASH}" in text
    assert [mark for mark in MARKS if mark in text] == ["DRAFT"]


@pytest.mark.parametrize(
    ("settle", "mark", "note"),
    [
        (lambda invoice: None, None, None),
        (lambda invoice: invoice.void(at=at(3)), "VOID", "This invoice is void"),
        (lambda invoice: pay(invoice, invoice.total), "PAID", "Paid on 2026-03-02"),
        (lambda invoice: invoice.mark_uncollectible(at=at(3)), "UNCOLLECTIBLE", "marked uncollectible"),
    ],
    ids=["open", "void", "paid", "uncollectible"],
)
def test_each_status_has_its_mark(settle: object, mark: str | None, note: str | None) -> None:
    invoice = issued(draft())
    settle(invoice)  # type: ignore[operator]
    text = render(invoice)

    assert [word for word in MARKS if word in text] == ([mark] if mark else [])
    if note is not None:
        assert note in text


def test_a_refund_is_printed_and_instructions_only_while_something_is_due() -> None:
    open_invoice = render(issued(draft()))
    assert "Payment instructions" in open_invoice
    assert "IBAN IE29 AIBK 9311 5212 3456 78" in flat(open_invoice)

    invoice = refund(pay(issued(draft()), issued(draft()).total), 1_000)
    text = render(invoice)
    assert printed("Amount refunded", text) == money(invoice, 1_000)
    assert printed("Amount due", text) == money(invoice, 0)
    assert "Payment instructions" not in text


def test_the_portal_link_is_printed_and_clickable() -> None:
    url = "https://billing.example/portal/abc.def/invoices/7f1c?x=1"
    pdf = render_invoice_pdf(issued(draft()), seller=SELLER, portal_url=url)

    assert f"Pay or view online: {url}" in flat(text_of(pdf))
    links = [
        annotation.get_object()["/A"]["/URI"]
        for page in reader(pdf).pages
        for annotation in page.get("/Annots", [])  # type: ignore[union-attr]
    ]
    assert url in links
    assert "Pay or view online" not in render(issued(draft()))  # none given, none printed


def test_the_memo_is_printed() -> None:
    memo = "Thank you for your business — net 30."
    assert memo in render(issued(draft(memo=memo)))


def test_a_hundred_lines_flow_over_pages_with_the_header_on_each() -> None:
    lines = [(f"Item {n:03d}: on-call engineering, weekend cover of the production cluster", "1", 100 + n, "20")
             for n in range(100)]  # fmt: skip
    invoice = issued(draft(lines=lines))
    pages = pages_text(render_invoice_pdf(invoice, seller=SELLER))

    assert len(pages) > 2
    whole = flat("\n".join(pages))
    for description, *_ in lines:
        assert description in whole
    for number, page in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in page
        if "Item " in page:  # the table goes on here: under its header
            assert "Description Quantity Unit price Tax Amount" in page
    assert printed("Amount due", pages[-1]) == money(invoice, invoice.amount_due)


def test_a_long_description_wraps_within_its_column() -> None:
    description = " ".join(["Annual maintenance of the harbour crane fleet including parts and labour"] * 6)
    text = render(issued(draft(lines=[(description, "1", 10_000, None)])))

    assert description in flat(text)
    assert description not in text  # it was broken over lines


def test_the_same_version_gives_the_same_bytes() -> None:
    first = render_invoice_pdf(issued(draft()), seller=SELLER, portal_url="https://x.example/p")
    again = render_invoice_pdf(issued(draft()), seller=SELLER, portal_url="https://x.example/p")
    assert first == again

    later = pay(issued(draft()), 100)
    assert render_invoice_pdf(later, seller=SELLER, portal_url="https://x.example/p") != first


RENDER_IN_A_NEW_PROCESS = """
import hashlib
from adapters.pdf.render import render_invoice_pdf
from tests.invoice_documents import SELLER, draft, issued, pay
invoice = pay(issued(draft(name="Αθηνά Παπαδοπούλου")), 100)
print(hashlib.sha256(render_invoice_pdf(invoice, seller=SELLER, portal_url="https://x.example/p")).hexdigest())
"""


def test_the_same_version_gives_the_same_bytes_in_another_process() -> None:
    """Another process hashes strings differently (set and dict orders of str keys may differ)."""
    here = render_invoice_pdf(
        pay(issued(draft(name="Αθηνά Παπαδοπούλου")), 100), seller=SELLER, portal_url="https://x.example/p"
    )
    root = Path(__file__).resolve().parents[2]
    digests = {
        subprocess.run(
            [sys.executable, "-c", RENDER_IN_A_NEW_PROCESS],
            env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(root)},
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert digests == {hashlib.sha256(here).hexdigest()}


def test_the_metadata_names_the_invoice_the_seller_and_the_last_event_time() -> None:
    invoice = pay(issued(draft()), 100, minutes=30)
    metadata = reader(render_invoice_pdf(invoice, seller=SELLER)).metadata

    assert metadata is not None
    assert metadata.title == "Invoice INV-000042"
    assert metadata.author == "Harbour Ledger Ltd"
    assert metadata.creation_date == invoice.modified_on == at(30)


def test_a_missing_font_is_named_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(FontMissingError) as missing:
        render_invoice_pdf(issued(draft()), seller=SELLER, font_dir=tmp_path)
    message = str(missing.value)
    assert str(tmp_path / REGULAR_FILE) in message
    assert "fonts-dejavu-core" in message
    assert "LEDGER_PDF_FONT_DIR" in message

    shutil.copy(DEFAULT_FONT_DIR / REGULAR_FILE, tmp_path / REGULAR_FILE)
    with pytest.raises(FontMissingError, match=str(tmp_path / BOLD_FILE)):
        find_fonts(tmp_path)


def test_fonts_from_another_directory(tmp_path: Path) -> None:
    for name in (REGULAR_FILE, BOLD_FILE):
        shutil.copy(DEFAULT_FONT_DIR / name, tmp_path / name)
    elsewhere = render_invoice_pdf(issued(draft()), seller=SELLER, font_dir=tmp_path)
    assert elsewhere == render_invoice_pdf(issued(draft()), seller=SELLER)
