"""The invoice's lines as a table: long descriptions wrap inside their cell, and a table longer
than the page goes on over the next ones with its header row repeated."""

from __future__ import annotations

from fpdf import FPDF
from fpdf.fonts import FontFace

from adapters.pdf import figures
from adapters.pdf.fonts import FAMILY
from ledger.invoices import Invoice

HEADINGS = ("Description", "Quantity", "Unit price", "Tax", "Amount")
# mm, summing to the 180 mm between A4's margins. An amount column holds "99,999,999.99 USD" on
# one line and the digits of the largest amount the ledger allows on one line too (its currency
# code then wraps under it, at the space: never inside the number).
WIDTHS = (58, 20, 43, 16, 43)
ALIGN = ("LEFT", "RIGHT", "RIGHT", "RIGHT", "RIGHT")
HEADING_STYLE = FontFace(emphasis="BOLD", fill_color=(238, 238, 238))


def draw_lines(pdf: FPDF, invoice: Invoice) -> None:
    pdf.set_font(FAMILY, "", 9)
    with pdf.table(
        col_widths=WIDTHS,
        width=sum(WIDTHS),
        align="LEFT",
        text_align=ALIGN,
        borders_layout="HORIZONTAL_LINES",
        headings_style=HEADING_STYLE,
        line_height=4.6,
        padding=(1.2, 1.5),
        v_align="TOP",
    ) as table:
        table.row(HEADINGS)
        for line in invoice.lines.values():
            table.row(
                (
                    line.description,
                    line.quantity,
                    figures.money(invoice, line.unit_amount),
                    figures.tax_rate(line.tax_rate),
                    figures.money(invoice, line.amount),
                )
            )
    pdf.ln(3)
