"""The fonts parsed once per process (adapters/pdf/fonts.py typeface): a document given the parsed
font is the document fpdf2's add_font would have made, byte for byte; documents rendered at once
in several threads are the ones rendered one after another; a font file replaced on disk is read
again, and one gone is named."""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fpdf import FPDF

from adapters.pdf.fonts import BOLD_FILE, DEFAULT_FONT_DIR, FAMILY, REGULAR_FILE, FontMissingError, typeface
from adapters.pdf.render import render_invoice_pdf
from ledger.invoices import Invoice
from tests.invoice_documents import SELLER, draft, issued, pay, reader, text_of

NAMES = ("Zoë Ångström", "Αθηνά Παπαδοπούλου", "Дмитрий Шостакович", "Łukasz Żółć", "Ørsted & Søn")


def page(*, parsed_once: bool, font_dir: Path = DEFAULT_FONT_DIR) -> bytes:
    """A page of text in every script of NAMES, regular and bold, its fonts added one way or the other."""
    pdf = FPDF(format="A4")
    for style, name in (("", REGULAR_FILE), ("B", BOLD_FILE)):
        parsed = typeface(font_dir / name) if parsed_once else None
        if parsed is None:
            pdf.add_font(FAMILY, style, str(font_dir / name))
        else:
            parsed.attach(pdf, FAMILY, style)
    pdf.set_creation_date(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    pdf.add_page()
    for style in ("", "B"):
        pdf.set_font(FAMILY, style, 11)
        for name in NAMES:
            pdf.multi_cell(0, 6, f"{name}: 1,234.56 EUR", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FAMILY, "", 11)
    pdf.cell(0, 6, "中")  # not in DejaVu: printed as the missing glyph, and logged
    return bytes(pdf.output())


def test_a_font_parsed_once_gives_the_bytes_add_font_gives() -> None:
    expected = page(parsed_once=False)
    assert page(parsed_once=True) == expected
    assert page(parsed_once=True) == expected  # a second document from the same parse: nothing left over
    text = text_of(expected)
    assert all(name in text for name in NAMES)

    # What a document changes was its own copy: the parse every document copies is as it was.
    parsed = typeface(DEFAULT_FONT_DIR / REGULAR_FILE)
    assert parsed is not None
    template = parsed.template
    assert template.desc.font_name is None  # output names (and numbers) each document's descriptor
    assert not hasattr(template.desc, "font_file2")
    assert template.missing_glyphs == []
    assert len(template.subset) == 2  # only the two glyphs every subset reserves (.notdef, space)
    page(parsed_once=True)
    assert ord("中") not in template.cw  # looking up a missing character's width adds it: not here


def invoices() -> list[Invoice]:
    # Different names and lines: different glyphs in each document's font subsets.
    return [pay(issued(draft(name=name, currency="eur")), 100 * n) for n, name in enumerate(NAMES, start=1)]


def test_documents_rendered_at_once_in_threads_are_those_rendered_one_by_one() -> None:
    serial = [render_invoice_pdf(invoice, seller=SELLER) for invoice in invoices()]
    assert len(set(serial)) == len(serial)

    many = invoices() * 4
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(lambda invoice: render_invoice_pdf(invoice, seller=SELLER), many))
    assert concurrent == serial * 4


def embedded_fonts(pdf: bytes) -> set[str]:
    return {
        str(font["/BaseFont"])
        for page in reader(pdf).pages
        for font in page["/Resources"]["/Font"].values()  # type: ignore[index]
    }


def test_a_font_file_replaced_on_disk_is_read_again(tmp_path: Path) -> None:
    for name in (REGULAR_FILE, BOLD_FILE):
        shutil.copy(DEFAULT_FONT_DIR / name, tmp_path / name)
    invoice = issued(draft(name="Αθηνά Παπαδοπούλου"))
    before = render_invoice_pdf(invoice, seller=SELLER, font_dir=tmp_path)
    assert embedded_fonts(before) == {"/MPDFAA+DejaVuSansBook", "/MPDFAA+DejaVuSansBold"}

    # Another font renamed into place, as a package upgrade does: the next document embeds it.
    shutil.copy(DEFAULT_FONT_DIR / "DejaVuSansMono.ttf", tmp_path / "new.ttf")
    os.replace(tmp_path / "new.ttf", tmp_path / REGULAR_FILE)
    after = render_invoice_pdf(invoice, seller=SELLER, font_dir=tmp_path)
    assert embedded_fonts(after) == {"/MPDFAA+DejaVuSansMonoBook", "/MPDFAA+DejaVuSansBold"}
    assert "Αθηνά Παπαδοπούλου" in text_of(after)

    # Written over in place (same file, new bytes and time).
    shutil.copyfile(DEFAULT_FONT_DIR / REGULAR_FILE, tmp_path / REGULAR_FILE)
    assert render_invoice_pdf(invoice, seller=SELLER, font_dir=tmp_path) == before


def test_a_font_file_gone_after_it_was_parsed_is_named(tmp_path: Path) -> None:
    for name in (REGULAR_FILE, BOLD_FILE):
        shutil.copy(DEFAULT_FONT_DIR / name, tmp_path / name)
    render_invoice_pdf(issued(draft()), seller=SELLER, font_dir=tmp_path)
    (tmp_path / BOLD_FILE).unlink()

    with pytest.raises(FontMissingError, match=str(tmp_path / BOLD_FILE)):
        render_invoice_pdf(issued(draft()), seller=SELLER, font_dir=tmp_path)
    with pytest.raises(FontMissingError, match=str(tmp_path / BOLD_FILE)):
        typeface(tmp_path / BOLD_FILE)
