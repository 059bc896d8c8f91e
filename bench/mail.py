"""Invoice emails delivered per second to a local SMTP server, beside raw smtplib sends of the same
message measured in the same run.

Setup: N issued invoices, one email queued for each (`app.mail.queue`), on a fresh database; an
aiosmtpd server on a loopback port (tests/mail_server.py) that keeps what it receives. Load: one
MailWorker (adapters/mail/worker.py) calling `run_once()` until nothing is due: per email a claim
(one event), the invoice loaded at its queued version, its PDF rendered (fpdf2), the message built,
one SMTP connection (EHLO, MAIL, RCPT, DATA, QUIT) and the outcome recorded (one event), then the
read model caught up. Every message is counted at the server.

Baseline ("raw smtplib"): the first email's message, sent N times by smtplib alone, one
connection per message as the worker does, to the same server: what the SMTP conversation costs
without the ledger. The PDF column is `render_invoice_pdf` alone on the same invoice, N times:
the share of the gap that is the attachment.
Alone: `python -m bench --only mail [--backend sqlite] [--quick]`.
"""

from __future__ import annotations

import smtplib
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from adapters.bootstrap import bootstrap
from adapters.clock import ManualClock
from adapters.mail.message import build_invoice_message
from adapters.mail.smtp import SmtpSender
from adapters.mail.smtp_url import parse_smtp_url
from adapters.mail.worker import MailWorker
from adapters.pdf.render import render_invoice_pdf
from adapters.read_models import projection_runner, read_model_engine
from adapters.settings import Settings
from bench.report import fmt, table
from commands.messages import NewLine
from ledger.invoices import Invoice
from ledger.mail.emails import INVOICE
from ledger.seller import Seller
from tests.mail_server import HOST, MailServer

SELLER = Seller(name="Acme Billing", address=("1 Main St", "Springfield"), email="billing@acme.example")
MAIL_FROM = "billing@acme.example"


@dataclass(frozen=True)
class MailPlan:
    emails: int


FULL = MailPlan(emails=300)
QUICK = MailPlan(emails=40)


@dataclass(frozen=True)
class MailRow:
    backend: str
    emails: int
    delivered: int  # counted at the server
    seconds: float
    raw_per_second: float
    pdf_ms: float  # render_invoice_pdf alone, per email

    @property
    def per_second(self) -> float:
        return self.emails / self.seconds if self.seconds else 0.0


def run_mail(backend: str, url: str, plan: MailPlan) -> MailRow:
    clock = ManualClock(datetime(2026, 3, 2, 9, tzinfo=UTC))
    app = bootstrap(Settings(database_url=url), clock=clock)
    engine = read_model_engine(url)
    server = MailServer()
    server.start()
    try:
        invoice_ids = []
        for n in range(plan.emails):
            invoice_id = app.create_draft(
                customer={"email": f"ap{n}@example.com", "name": f"Customer {n}"},
                currency="usd",
                due_date="2026-04-01",
                lines=[NewLine("Consulting", "7.5", 12_000, "20"), NewLine("Support plan", 1, 49_900, None)],
            ).result
            app.issue(invoice_id)
            app.mail.queue(invoice_id, trigger="api")
            invoice_ids.append(invoice_id)
        sender = SmtpSender(parse_smtp_url(server.url))
        worker = MailWorker(app, engine, sender, seller=SELLER, mail_from=MAIL_FROM, clock=clock)
        projection_runner(app, engine).catch_up()  # the queue in the read model before the clock starts
        started = time.perf_counter()
        while worker.run_once().total:
            pass
        seconds = time.perf_counter() - started
        delivered = len(server.envelopes)
        raw = _raw_per_second(server, app.invoice(invoice_ids[0]), plan.emails)
        pdf_ms = _pdf_ms(app.invoice(invoice_ids[0]), plan.emails)
        return MailRow(backend, plan.emails, delivered, seconds, raw, pdf_ms)
    finally:
        server.stop()
        engine.dispose()
        app.close()


def _raw_per_second(server: MailServer, invoice: Invoice, count: int) -> float:
    """The same message as the worker's first, sent `count` times by smtplib alone."""
    message = build_invoice_message(
        invoice,
        email_id=invoice.id,
        purpose=INVOICE,
        recipient=invoice.customer["email"],
        seller=SELLER,
        mail_from=MAIL_FROM,
        pdf=render_invoice_pdf(invoice, seller=SELLER),
        at=datetime.now(UTC),
    )
    data = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
    started = time.perf_counter()
    for _ in range(count):
        with smtplib.SMTP(HOST, server.port, timeout=5) as smtp:
            smtp.sendmail(MAIL_FROM, [invoice.customer["email"]], data)
    return count / (time.perf_counter() - started)


def _pdf_ms(invoice: Invoice, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        render_invoice_pdf(invoice, seller=SELLER)
    return (time.perf_counter() - started) * 1000 / count


def render(rows: list[MailRow]) -> str:
    body = [
        [
            row.backend,
            fmt(row.emails),
            fmt(row.delivered),
            fmt(row.per_second, 1),
            fmt(row.raw_per_second, 1),
            f"{row.per_second / row.raw_per_second:.2f}" if row.raw_per_second else "-",
            fmt(row.pdf_ms, 1),
        ]
        for row in rows
    ]
    headers = ["backend", "emails", "at server", "ledger emails/s", "raw smtplib msgs/s", "ratio", "PDF ms/email"]
    return table("invoice emails to a local SMTP server (one worker)", headers, body)
