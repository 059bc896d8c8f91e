"""The top of an invoice's first page: the title and number, who sells and who is billed, and
the invoice's dates and status."""

from __future__ import annotations

from fpdf import FPDF

from adapters.pdf import figures
from adapters.pdf.fonts import FAMILY
from ledger.invoices import Invoice
from ledger.seller import Seller

LINE = 4.6  # mm per line of body text
FACT_LABEL_WIDTH = 28.0


def draw_heading(pdf: FPDF, invoice: Invoice, seller: Seller) -> None:
    _title(pdf, invoice)
    top = pdf.get_y()
    column = pdf.epw / 2
    _party(pdf, "From", _seller_lines(seller), x=pdf.l_margin, width=column - 4)
    seller_bottom = pdf.get_y()
    pdf.set_y(top)
    customer = invoice.customer
    _party(pdf, "Bill to", [customer.get("name", ""), customer["email"]], x=pdf.l_margin + column, width=column)
    pdf.set_y(max(seller_bottom, pdf.get_y()) + 4)
    _facts(pdf, invoice)
    pdf.ln(4)


def _title(pdf: FPDF, invoice: Invoice) -> None:
    pdf.set_font(FAMILY, "B", 20)
    pdf.cell(pdf.epw / 2, 10, "Invoice")
    pdf.set_font(FAMILY, "B", 13)
    pdf.cell(pdf.epw / 2, 10, figures.number(invoice), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)


def _seller_lines(seller: Seller) -> list[str]:
    lines = [seller.name, *seller.address]
    if seller.email:
        lines.append(seller.email)
    if seller.tax_id:
        lines.append(f"Tax ID: {seller.tax_id}")
    return lines


def _party(pdf: FPDF, label: str, lines: list[str], *, x: float, width: float) -> None:
    pdf.set_x(x)
    pdf.set_font(FAMILY, "B", 8)
    pdf.set_text_color(110, 110, 110)
    pdf.cell(width, LINE, label.upper(), new_x="LEFT", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    for index, text in enumerate(line for line in lines if line):
        pdf.set_font(FAMILY, "B" if index == 0 else "", 10 if index == 0 else 9)
        pdf.multi_cell(width, LINE, text, new_x="LEFT", new_y="NEXT")


def _facts(pdf: FPDF, invoice: Invoice) -> None:
    facts = [
        ("Number", figures.number(invoice)),
        ("Issue date", figures.issue_date(invoice)),
        ("Due date", figures.due_date(invoice)),
        ("Status", figures.status(invoice)),
    ]
    for label, value in facts:
        pdf.set_font(FAMILY, "B", 9)
        pdf.cell(FACT_LABEL_WIDTH, LINE, label)
        pdf.set_font(FAMILY, "", 9)
        pdf.cell(0, LINE, value, new_x="LMARGIN", new_y="NEXT")
