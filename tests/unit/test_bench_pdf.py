"""The PDF bench (bench/pdf.py): its invoices are what its table says they are, and the table
has a row per case with the renders it timed."""

from __future__ import annotations

import io

from pypdf import PdfReader

from adapters.pdf.render import render_invoice_pdf
from bench.pdf import LINE_COUNTS, SELLER, PdfPlan, bench_invoice, empty_page, page_count, render, run_pdf


def test_the_bench_invoices_have_their_lines_and_render_the_same_bytes_each_time() -> None:
    for lines in LINE_COUNTS:
        invoice = bench_invoice(lines)
        assert (len(invoice.lines), invoice.status) == (lines, "open")
        assert 0 < invoice.amount_due < invoice.total
        assert bench_invoice(lines).lines == invoice.lines
    assert render_invoice_pdf(bench_invoice(1), seller=SELLER) == render_invoice_pdf(bench_invoice(1), seller=SELLER)


def test_page_count_reads_what_pypdf_reads() -> None:
    for body in (empty_page(), render_invoice_pdf(bench_invoice(LINE_COUNTS[-1]), seller=SELLER)):
        assert page_count(body) == len(PdfReader(io.BytesIO(body)).pages)
    assert page_count(render_invoice_pdf(bench_invoice(LINE_COUNTS[-1]), seller=SELLER)) > 1


def test_the_table_has_the_baselines_and_each_case() -> None:
    plan = PdfPlan(warmup=0, renders=2)
    report = run_pdf(plan)

    assert [len(row.samples_ms) for row in report.rows] == [2] * (2 + len(LINE_COUNTS))
    text = render(report, plan)
    assert "baseline: one line of text, fonts embedded" in text
    for lines in LINE_COUNTS:
        assert f"invoice of {lines} line" in text
