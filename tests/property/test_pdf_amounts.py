"""The PDF prints the invoice's own figures: for any lines in jpy, usd or kwd, partly paid or not,
the amount due on the page is Money.format of the invoice's amount_due, and so is the total.

Rendering takes a tenth of a second or more: a few examples, each a whole invoice.
"""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.pdf.render import render_invoice_pdf
from ledger.invoices import Invoice
from tests.invoice_documents import SELLER, LineSpec, draft, issued, money, pay, printed, text_of

words = st.text(st.characters(codec="utf-8", categories=("L", "N")), min_size=1, max_size=12)
descriptions = st.lists(words, min_size=1, max_size=25).map(" ".join)
quantities = st.one_of(st.integers(1, 10_000).map(str), st.decimals("0.001", "999.999", places=3).map(str))
rates = st.one_of(st.none(), st.sampled_from(["0", "5", "7.25", "10", "20", "8.875"]))
lines: st.SearchStrategy[list[LineSpec]] = st.lists(
    st.tuples(descriptions, quantities, st.integers(0, 10**9), rates), min_size=1, max_size=12
)


@settings(max_examples=12, deadline=None)
@given(currency=st.sampled_from(["jpy", "usd", "kwd"]), specs=lines, paid_share=st.fractions(0, 1))
def test_the_amount_due_printed_is_the_invoices(currency: str, specs: list[LineSpec], paid_share: Fraction) -> None:
    invoice: Invoice = issued(draft(currency=currency, lines=specs))
    paid = int(invoice.total * paid_share)
    if paid > 0:
        pay(invoice, paid)

    text = text_of(render_invoice_pdf(invoice, seller=SELLER))

    assert printed("Total", text) == money(invoice, invoice.total)
    assert printed("Amount due", text) == money(invoice, invoice.amount_due)
