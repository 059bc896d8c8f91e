"""Invoice PDFs: the time to render one (adapters/pdf, render_invoice_pdf) for an invoice of 1
line and one of 100 lines, p50/p99, beside a baseline measured in the same run.

Rendering is pure CPU in the calling thread: no database, no server. Each case renders WARMUP
times untimed, then RENDERS timed renders one after another (`time.perf_counter` around the
call, and `time.process_time` for the CPU it cost: the machine is shared, and the CPU time is
what a worker thread really spends). The invoices are fixed (an issued usd invoice, partly paid,
long and short descriptions, taxed and untaxed lines), so two runs render the same bytes.

Baselines, same process, same run: the floor of any PDF in this font (an fpdf2 document with
DejaVu Sans regular and bold added as render_invoice_pdf adds them, parsed once per process, and
one line of text on one page: copying the parsed fonts, subsetting and embedding them), and
Money.format of the 100-line invoice's amounts (what the figures cost as text).
Alone: `python -m bench --only pdf [--quick]` (--quick: fewer renders).
"""

from __future__ import annotations

import os
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from uuid import UUID, uuid5

from fpdf import FPDF

from adapters.pdf.fonts import FAMILY, find_fonts, typeface
from adapters.pdf.render import render_invoice_pdf
from bench.report import fmt, table
from ledger.invoices import BANK, Invoice
from ledger.lines import Line
from ledger.money import Money
from ledger.seller import Seller

NAMESPACE = UUID("0b6f5a52-8d0c-4c55-bb1e-b9a1f2f7d0a4")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SELLER = Seller(
    name="Harbour Ledger Ltd",
    address=("1 Harbour Street", "Dublin D02 XY00", "Ireland"),
    email="billing@harbour.example",
    tax_id="IE1234567T",
    payment_instructions="Bank transfer to IBAN IE29 AIBK 9311 5212 3456 78, quoting the invoice number.",
)
PORTAL_URL = "https://billing.example/portal/AbCdEfGhIjKlMnOp.QrStUvWxYz0123456789/invoices/6f1c1d3e"
LINE_COUNTS = (1, 100)
PAGE_OBJECT = re.compile(rb"/Type\s*/Page(?![s\w])")
WORDS = "on-call engineering weekend cover of the production cluster with incident reviews".split()


@dataclass(frozen=True)
class PdfPlan:
    warmup: int
    renders: int


FULL = PdfPlan(warmup=5, renders=200)
QUICK = PdfPlan(warmup=2, renders=20)


@dataclass
class PdfRow:
    case: str
    samples_ms: list[float] = field(default_factory=list)
    cpu_ms: float = 0.0  # mean CPU time per render
    bytes: int = 0
    pages: int | None = None

    def pct(self, q: float) -> float:
        ordered = sorted(self.samples_ms)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class PdfReport:
    rows: list[PdfRow]
    load: tuple[float, float]  # the machine's 1-minute load average before and after


def bench_invoice(lines: int) -> Invoice:
    """An issued usd invoice of `lines` lines, partly paid: the same one every run."""
    invoice = Invoice.create_draft(
        invoice_id=uuid5(NAMESPACE, f"invoice-{lines}"),
        customer={"email": "ap@example.com", "name": "Zoë Ångström"},
        currency="usd",
        at=T0,
        due_date="2026-04-01",
        memo="Thank you for your business.",
    )
    for n in range(lines):
        description = " ".join(WORDS[: 3 + n % len(WORDS)])  # short ones and ones that wrap
        line = Line.price(
            line_id=f"li_{n}",
            description=f"Item {n + 1}: {description}",
            quantity=str(1 + n % 5),
            unit_amount=1_000 + 37 * n,
            tax_rate="20" if n % 3 else None,
        )
        invoice.add_line(line, at=T0 + timedelta(minutes=1))
    invoice.issue(sequence=lines, at=T0 + timedelta(minutes=2))
    invoice.apply_payment(
        payment_id="pay_1", amount=Money(500, "usd"), fee=0, cash_account=BANK, at=T0 + timedelta(minutes=3)
    )
    return invoice


def empty_page() -> bytes:
    """The floor: one line of DejaVu Sans on one page, fonts added and subset as for an invoice
    (parsed once per process: adapters/pdf/fonts.py typeface)."""
    fonts = find_fonts()
    pdf = FPDF(format="A4")
    for style, path in (("", fonts.regular), ("B", fonts.bold)):
        parsed = typeface(path)
        if parsed is None:
            pdf.add_font(FAMILY, style, str(path))
        else:
            parsed.attach(pdf, FAMILY, style)
    pdf.set_creation_date(T0)
    pdf.add_page()
    pdf.set_font(FAMILY, "B", 12)
    pdf.cell(0, 10, "Invoice")
    return bytes(pdf.output())


def formatted_amounts(invoice: Invoice) -> Callable[[], bytes]:
    amounts = [amount for line in invoice.lines.values() for amount in (line.unit_amount, line.amount)]
    amounts += [invoice.subtotal, invoice.tax, invoice.total, invoice.amount_paid, invoice.amount_due]

    def run() -> bytes:
        return "\n".join(Money(amount, invoice.currency).format() for amount in amounts).encode()

    return run


def _time(case: str, make: Callable[[], bytes], plan: PdfPlan, pages: Callable[[bytes], int | None]) -> PdfRow:
    for _ in range(plan.warmup):
        make()
    row = PdfRow(case)
    cpu_start = time.process_time()
    body = b""
    for _ in range(plan.renders):
        start = time.perf_counter()
        body = make()
        row.samples_ms.append((time.perf_counter() - start) * 1_000)
    row.cpu_ms = (time.process_time() - cpu_start) * 1_000 / max(1, plan.renders)
    row.bytes = len(body)
    row.pages = pages(body)
    return row


def page_count(body: bytes) -> int:
    """Pages of a PDF fpdf2 wrote: its page objects, which it never puts in compressed streams."""
    return len(PAGE_OBJECT.findall(body))


def run_pdf(plan: PdfPlan) -> PdfReport:
    before = os.getloadavg()[0]
    invoices = {lines: bench_invoice(lines) for lines in LINE_COUNTS}
    rows = [
        _time("baseline: one line of text, fonts embedded", empty_page, plan, page_count),
        _time(
            f"baseline: Money.format of the {LINE_COUNTS[-1]}-line invoice's amounts",
            formatted_amounts(invoices[LINE_COUNTS[-1]]),
            plan,
            lambda _: None,
        ),
    ]
    for lines, invoice in invoices.items():
        rows.append(
            _time(
                f"invoice of {lines} line{'s' if lines > 1 else ''}",
                partial(render_invoice_pdf, invoice, seller=SELLER, portal_url=PORTAL_URL),
                plan,
                page_count,
            )
        )
    return PdfReport(rows, (before, os.getloadavg()[0]))


def render(report: PdfReport, plan: PdfPlan) -> str:
    floor = report.rows[0]
    body = [
        [
            row.case,
            fmt(len(row.samples_ms)),
            fmt(row.pct(0.5), 2),
            fmt(row.pct(0.99), 2),
            fmt(statistics.fmean(row.samples_ms), 2),
            fmt(row.cpu_ms, 2),
            f"{row.pct(0.5) / floor.pct(0.5):.1f}x" if row is not floor else "-",
            fmt(row.bytes),
            "-" if row.pages is None else fmt(row.pages),
        ]
        for row in report.rows
    ]
    title = "\n".join(
        [
            f"Invoice PDFs (fpdf2, DejaVu Sans embedded): {plan.warmup} warm-up + {plan.renders} timed renders per "
            "case, one after another in one thread.",
            "x floor = the case's p50 over the first baseline's (the same fonts on one page, same run); CPU ms: "
            "process CPU time per render;",
            f"load: the machine's 1-minute load average before and after: {report.load[0]:.1f} / "
            f"{report.load[1]:.1f} (it is shared: 2 cores).",
        ]
    )
    headers = ["case", "renders", "p50 ms", "p99 ms", "mean ms", "CPU ms", "p50 x floor", "bytes", "pages"]
    return table(title, headers, body)
