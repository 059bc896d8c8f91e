"""What follows the totals: what the status means for the customer, the memo, how to pay when
something is due, and the link to pay or view the invoice online."""

from __future__ import annotations

from fpdf import FPDF

from adapters.pdf.fonts import FAMILY
from ledger.invoices import DRAFT, OPEN, PAID, UNCOLLECTIBLE, VOID, Invoice
from ledger.seller import Seller

LINE = 4.6

STATUS_NOTES = {
    DRAFT: "This is a draft: it is not an invoice until it is issued, and it may still change.",
    VOID: "This invoice is void: nothing is owed on it.",
    UNCOLLECTIBLE: "This invoice has been marked uncollectible.",
}


def draw_notes(pdf: FPDF, invoice: Invoice, seller: Seller, portal_url: str | None) -> None:
    note = _status_note(invoice)
    if note:
        _paragraph(pdf, None, note)
    if invoice.memo:
        _paragraph(pdf, "Note", invoice.memo)
    # A draft is not owed yet; an uncollectible invoice still is.
    if invoice.status in (OPEN, UNCOLLECTIBLE) and invoice.amount_due > 0 and seller.payment_instructions:
        _paragraph(pdf, "Payment instructions", seller.payment_instructions)
    if portal_url:
        _link(pdf, portal_url)


def _status_note(invoice: Invoice) -> str | None:
    if invoice.status == PAID and invoice.paid_at is not None:
        return f"Paid on {invoice.paid_at.date().isoformat()}. Thank you."
    return STATUS_NOTES.get(invoice.status)


def _paragraph(pdf: FPDF, heading: str | None, text: str) -> None:
    if heading:
        pdf.set_font(FAMILY, "B", 9.5)
        pdf.cell(0, LINE + 1, heading, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FAMILY, "", 9)
    pdf.multi_cell(0, LINE, text, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)


def _link(pdf: FPDF, url: str) -> None:
    pdf.set_font(FAMILY, "B", 9.5)
    pdf.write(LINE, "Pay or view online: ")
    pdf.set_font(FAMILY, "", 9.5)
    pdf.set_text_color(20, 70, 170)
    # write() wraps a long URL over lines and makes every piece of it the same clickable link.
    pdf.write(LINE, url, link=url)
    pdf.set_text_color(0, 0, 0)
    pdf.ln(LINE)
