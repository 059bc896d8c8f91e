"""The totals under the lines, right-aligned: subtotal, tax, total, what was paid and refunded,
and the amount due in bold."""

from __future__ import annotations

from fpdf import FPDF

from adapters.pdf import figures
from adapters.pdf.fonts import FAMILY
from ledger.invoices import Invoice

LABEL_WIDTH = 45.0
VALUE_WIDTH = 55.0  # wide enough for the largest amount the ledger holds on one line
LINE = 5.5


def draw_totals(pdf: FPDF, invoice: Invoice) -> None:
    rows = [("Subtotal", invoice.subtotal), ("Tax", invoice.tax), ("Total", invoice.total)]
    rows.append(("Amount paid", invoice.amount_paid))
    if invoice.amount_refunded:
        rows.append(("Amount refunded", invoice.amount_refunded))
    # The rows and the amount due stay together on one page.
    needed = LINE * (len(rows) + 1) + 2
    if pdf.will_page_break(needed):
        pdf.add_page()
    for label, amount in rows:
        _row(pdf, label, figures.money(invoice, amount), bold=label == "Total")
    pdf.set_draw_color(150, 150, 150)
    x = pdf.l_margin + pdf.epw - LABEL_WIDTH - VALUE_WIDTH
    pdf.line(x, pdf.get_y() + 0.5, pdf.l_margin + pdf.epw, pdf.get_y() + 0.5)
    pdf.ln(1.5)
    _row(pdf, "Amount due", figures.money(invoice, invoice.amount_due), bold=True, size=11)
    pdf.ln(4)


def _row(pdf: FPDF, label: str, value: str, *, bold: bool = False, size: float = 9.5) -> None:
    pdf.set_x(pdf.l_margin + pdf.epw - LABEL_WIDTH - VALUE_WIDTH)
    pdf.set_font(FAMILY, "B" if bold else "", size)
    pdf.cell(LABEL_WIDTH, LINE, label)
    pdf.cell(VALUE_WIDTH, LINE, value, align="R", new_x="LMARGIN", new_y="NEXT")
