"""An invoice as a PDF: `render_invoice_pdf(invoice, seller=..., portal_url=...) -> bytes`.

The same invoice version always gives the same bytes: the document's creation date is the time
of the invoice's last event (not the moment of rendering), fpdf2's file identifier is a hash of
the content and that date, and nothing on the page depends on today. The mail adapter attaches
the result, the portal and the API serve it.
"""

from __future__ import annotations

from pathlib import Path

from adapters.pdf import figures
from adapters.pdf.document import InvoiceDocument
from adapters.pdf.fonts import FontMissingError, find_fonts
from adapters.pdf.heading import draw_heading
from adapters.pdf.line_table import draw_lines
from adapters.pdf.notes import draw_notes
from adapters.pdf.totals import draw_totals
from ledger.invoices import Invoice
from ledger.seller import Seller

__all__ = ["FontMissingError", "render_invoice_pdf"]

CREATOR = "Billing Ledger"


def render_invoice_pdf(
    invoice: Invoice, *, seller: Seller, portal_url: str | None = None, font_dir: Path | None = None
) -> bytes:
    """The invoice as it stands in this version, as PDF bytes.

    `font_dir` holds DejaVuSans.ttf and DejaVuSans-Bold.ttf (LEDGER_PDF_FONT_DIR; None: Debian's
    fonts-dejavu-core); FontMissingError names the file that is not there.
    """
    pdf = InvoiceDocument(
        find_fonts(font_dir),
        mark=figures.mark(invoice),
        footer_text=f"{figures.title(invoice)} \N{MIDDLE DOT} {seller.name}",
    )
    pdf.set_creation_date(invoice.modified_on)
    pdf.set_title(figures.title(invoice))
    pdf.set_author(seller.name)
    pdf.set_creator(CREATOR)
    pdf.set_lang("en")
    pdf.add_page()
    draw_heading(pdf, invoice, seller)
    draw_lines(pdf, invoice)
    draw_totals(pdf, invoice)
    draw_notes(pdf, invoice, seller, portal_url)
    return bytes(pdf.output())
