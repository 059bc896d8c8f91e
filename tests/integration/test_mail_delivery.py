"""Invoice emails delivered to a real SMTP server (aiosmtpd, tests/mail_server.py), on SQLite and
PostgreSQL: what the customer receives, and that every email goes out once, whatever fails."""

from __future__ import annotations

import io
import ssl
import threading
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from uuid import UUID

import pytest
from pypdf import PdfReader
from sqlalchemy import Engine

from adapters.clock import ManualClock
from adapters.mail.smtp import Delivery, SmtpSender
from adapters.mail.smtp_url import parse_smtp_url
from adapters.mail.worker import MailCounts, MailWorker
from adapters.pdf.render import render_invoice_pdf
from adapters.read_models import projection_runner, read_model_projections
from commands.application import BillingApplication
from commands.messages import NewLine
from ledger.errors import InvoiceNotFoundError
from ledger.invoices import Invoice
from ledger.mail.emails import BOUNCED, FAILED, GAVE_UP, LEASE, REMINDER, SENT, InvoiceNotSendableError
from ledger.money import Money
from ledger.seller import Seller
from projections.consistency import check
from projections.mail.emails import invoice_emails_of
from tests.conftest import AppFactory
from tests.mail_server import MailServer, self_signed_tls

SELLER = Seller(name="Acme Billing", address=("1 Main St", "Springfield"), email="billing@acme.example")
CUSTOMER = {"email": "zoe@example.com", "name": "Zoë <script>alert(1)</script>"}
MEMO = "Thanks! <script>steal()</script>"


def issued_invoice(app: BillingApplication, customer: dict[str, str] | None = None) -> UUID:
    invoice_id = app.create_draft(
        customer=customer or CUSTOMER,
        currency="usd",
        due_date="2026-04-01",
        memo=MEMO,
        lines=[NewLine("Consulting", "7.5", 12_000, "20")],
    ).result
    app.issue(invoice_id)
    return invoice_id


def queued_invoice(app: BillingApplication, customer: dict[str, str] | None = None) -> UUID:
    """An issued invoice whose email is queued, as `POST /invoices/{id}/send` queues it."""
    invoice_id = issued_invoice(app, customer)
    app.mail.queue(invoice_id, trigger="api")
    return invoice_id


def worker(app: BillingApplication, engine: Engine, server: MailServer, clock: ManualClock) -> MailWorker:
    sender = SmtpSender(parse_smtp_url(server.url))
    return MailWorker(app, engine, sender, seller=SELLER, mail_from="billing@acme.example", clock=clock)


def only_email(app: BillingApplication, engine: Engine, invoice_id: UUID) -> dict[str, object]:
    """The invoice's one email, as the read model shows it once it caught up."""
    projection_runner(app, engine).catch_up()
    [row] = invoice_emails_of(engine, invoice_id)
    return row


def bodies(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None
    assert html is not None
    return str(text.get_content()), str(html.get_content())


def test_an_issued_invoice_reaches_the_customer_with_text_html_and_its_pdf(
    app: BillingApplication, engine: Engine, mail_server: MailServer, clock: ManualClock
) -> None:
    invoice_id = issued_invoice(app)
    email_id = app.mail.queue(invoice_id, trigger="api").result

    assert worker(app, engine, mail_server, clock).run_once() == MailCounts(sent=1)

    [message] = mail_server.messages
    invoice = app.invoice(invoice_id)
    due = Money(invoice.amount_due, "usd").format()
    assert due == "1,080.00 USD"
    assert message["Subject"] == f"Invoice {invoice.number} from Acme Billing"
    assert message["To"].addresses[0].display_name == CUSTOMER["name"]
    assert message["To"].addresses[0].addr_spec == "zoe@example.com"
    assert message["From"].addresses[0].addr_spec == "billing@acme.example"
    assert message["Message-ID"] == f"<{email_id}@acme.example>"
    text, html = bodies(message)
    assert invoice.number in text
    assert due in text
    assert "2026-04-01" in text
    assert "<script>" in text  # plain text is shown as it is
    assert due in html
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == f"{invoice.number}.pdf"
    pdf_text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(attachment.get_content())).pages)
    assert invoice.number in pdf_text
    assert "Zoë" in pdf_text
    assert due in pdf_text

    row = only_email(app, engine, invoice_id)
    assert (row["status"], row["attempts"], row["message_id"]) == (SENT, 1, f"<{email_id}@acme.example>")
    assert row["reply"] == "250 2.0.0 Ok: queued as Q1"
    assert row["next_attempt_at"] is None
    assert app.invoice(invoice_id).version == invoice.version  # the invoice did not move


def test_the_header_name_is_encoded_and_the_subject_of_a_reminder_says_it_is_due(
    app: BillingApplication, engine: Engine, mail_server: MailServer, clock: ManualClock
) -> None:
    invoice_id = issued_invoice(app, {"email": "jose@example.com", "name": "José Müller"})
    app.mail.queue(invoice_id, purpose=REMINDER, trigger="dunning")

    worker(app, engine, mail_server, clock).run_once()

    [message] = mail_server.messages
    raw = mail_server.envelopes[0][2]
    assert b"Jos\xc3\xa9" not in raw.split(b"\r\n\r\n")[0]  # headers stay ASCII: RFC 2047 words
    assert message["To"].addresses[0].display_name == "José Müller"
    assert message["Subject"] == f"Reminder: invoice {app.invoice(invoice_id).number} is due"  # not yet overdue


def test_a_server_that_is_down_fails_with_a_retry_and_the_email_goes_out_once_it_is_back(
    app: BillingApplication, engine: Engine, mail_server: MailServer, clock: ManualClock
) -> None:
    invoice_id = queued_invoice(app)
    mailer = worker(app, engine, mail_server, clock)
    mail_server.stop()

    assert mailer.run_once() == MailCounts(failed=1)
    row = only_email(app, engine, invoice_id)
    assert row["status"] == FAILED
    assert row["next_attempt_at"] == clock.now() + timedelta(minutes=1)
    assert "Connection refused" in str(row["last_error"]) or "refused" in str(row["last_error"]).lower()
    assert mailer.run_once() == MailCounts()  # not due yet: nothing tried

    mail_server.start()
    clock.advance(timedelta(minutes=1))
    assert mailer.run_once() == MailCounts(sent=1)
    assert mailer.run_once() == MailCounts()
    assert len(mail_server.messages) == 1
    assert only_email(app, engine, invoice_id)["attempts"] == 2


def test_after_the_last_attempt_the_worker_gives_up(
    app: BillingApplication, engine: Engine, mail_server: MailServer, clock: ManualClock
) -> None:
    invoice_id = issued_invoice(app)
    app.mail.queue(invoice_id, trigger="api", max_attempts=2)
    mailer = worker(app, engine, mail_server, clock)
    mail_server.stop()

    assert mailer.run_once() == MailCounts(failed=1)
    clock.advance(timedelta(minutes=1))
    assert mailer.run_once() == MailCounts(gave_up=1)
    clock.advance(timedelta(days=1))
    assert mailer.run_once() == MailCounts()
    row = only_email(app, engine, invoice_id)
    assert (row["status"], row["attempts"], row["next_attempt_at"]) == (GAVE_UP, 2, None)


def test_running_the_worker_again_or_two_workers_at_once_sends_once(
    make_app: AppFactory, engine: Engine, mail_server: MailServer, clock: ManualClock
) -> None:
    first, second = make_app(), make_app()
    invoices = [issued_invoice(first) for _ in range(3)]
    for invoice_id in invoices:
        first.mail.queue(invoice_id, trigger="api")
    workers = [worker(first, engine, mail_server, clock), worker(second, engine, mail_server, clock)]
    for mailer in workers:
        mailer._catch_up()  # both see every email due before either claims one
    counts: list[MailCounts] = []
    start = threading.Barrier(2)

    def run(mailer: MailWorker) -> None:
        start.wait()
        counts.append(mailer.run_once())

    threads = [threading.Thread(target=run, args=(mailer,)) for mailer in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(c.sent for c in counts) == 3
    assert sum(c.sent + c.skipped for c in counts) <= 6
    assert workers[0].run_once() == MailCounts()
    assert len(mail_server.messages) == 3
    assert sorted(m["To"].addresses[0].addr_spec for m in mail_server.messages) == ["zoe@example.com"] * 3


def test_a_refused_recipient_bounces_and_is_not_retried(
    app: BillingApplication, engine: Engine, mail_server: MailServer, clock: ManualClock
) -> None:
    invoice_id = issued_invoice(app, {"email": "gone@example.com", "name": "Gone"})
    email_id = app.mail.queue(invoice_id, trigger="api").result
    mail_server.refuse("gone@example.com")
    mailer = worker(app, engine, mail_server, clock)

    assert mailer.run_once() == MailCounts(bounced=1)
    clock.advance(timedelta(days=1))
    assert mailer.run_once() == MailCounts()

    assert mail_server.messages == []
    [*_, bounced] = list(app.repository.event_store.get(email_id))
    assert type(bounced).__name__ == "Bounced"
    assert bounced.code == 550
    row = only_email(app, engine, invoice_id)
    assert row["status"] == BOUNCED
    assert "550" in str(row["last_error"])
    assert "User unknown" in str(row["last_error"])


def test_the_same_send_twice_is_one_email_and_a_resend_is_another(
    app: BillingApplication, engine: Engine, mail_server: MailServer, clock: ManualClock
) -> None:
    invoice_id = issued_invoice(app)
    first = app.mail.queue(invoice_id, trigger="api").result
    assert app.mail.queue(invoice_id, trigger="cli").result == first
    worker(app, engine, mail_server, clock).run_once()
    assert app.mail.queue(invoice_id, trigger="api").result == first  # sent already: still that one

    again = app.mail.queue(invoice_id, trigger="api", resend=True).result
    assert again != first
    assert worker(app, engine, mail_server, clock).run_once() == MailCounts(sent=1)
    assert len(mail_server.messages) == 2
    assert {m["Message-ID"] for m in mail_server.messages} == {f"<{first}@acme.example>", f"<{again}@acme.example>"}


def test_a_draft_is_not_sent_and_an_unknown_invoice_is_not_found(app: BillingApplication) -> None:
    draft = app.create_draft(customer=CUSTOMER, currency="usd", lines=[NewLine("x", 1, 100, None)]).result
    with pytest.raises(InvoiceNotSendableError, match="draft"):
        app.mail.queue(draft, trigger="api")
    with pytest.raises(InvoiceNotFoundError):
        app.mail.queue(UUID(int=7), trigger="api")


def test_starttls_required_against_a_server_without_it_sends_nothing_and_says_why(
    app: BillingApplication, engine: Engine, mail_server: MailServer, clock: ManualClock
) -> None:
    invoice_id = queued_invoice(app)
    sender = SmtpSender(parse_smtp_url(f"smtp://127.0.0.1:{mail_server.port}?starttls=required&timeout=5"))
    mailer = MailWorker(app, engine, sender, seller=SELLER, clock=clock)

    assert mailer.run_once() == MailCounts(failed=1)

    assert mail_server.messages == []
    row = only_email(app, engine, invoice_id)
    assert "does not offer STARTTLS" in str(row["last_error"])
    assert "starttls=required" in str(row["last_error"])


def test_an_attempt_whose_worker_stopped_is_taken_up_after_the_lease(
    app: BillingApplication, engine: Engine, mail_server: MailServer, clock: ManualClock
) -> None:
    invoice_id = issued_invoice(app)
    email_id = app.mail.queue(invoice_id, trigger="api").result
    app.mail.start_attempt(email_id, 1)  # a worker claimed it, then died before sending
    mailer = worker(app, engine, mail_server, clock)

    assert mailer.run_once() == MailCounts()  # within the lease: left to that worker
    clock.advance(LEASE)
    assert mailer.run_once() == MailCounts(abandoned=1)
    clock.advance(timedelta(minutes=1))
    assert mailer.run_once() == MailCounts(sent=1)
    assert len(mail_server.messages) == 1
    assert only_email(app, engine, invoice_id)["attempts"] == 2


def test_a_message_that_cannot_be_built_fails_with_the_reason_and_goes_out_once_it_can(
    app: BillingApplication, engine: Engine, mail_server: MailServer, clock: ManualClock, tmp_path: Path
) -> None:
    invoice_id = queued_invoice(app)
    sender = SmtpSender(parse_smtp_url(mail_server.url))
    no_fonts = MailWorker(app, engine, sender, seller=SELLER, clock=clock, font_dir=tmp_path)

    assert no_fonts.run_once() == MailCounts(failed=1)
    row = only_email(app, engine, invoice_id)
    assert "the message could not be built" in str(row["last_error"])
    assert "DejaVuSans" in str(row["last_error"])
    assert mail_server.messages == []

    clock.advance(timedelta(minutes=1))
    assert worker(app, engine, mail_server, clock).run_once() == MailCounts(sent=1)
    assert len(mail_server.messages) == 1


def test_the_emails_read_model_rebuilds_to_the_same_rows(
    app: BillingApplication, engine: Engine, mail_server: MailServer, clock: ManualClock
) -> None:
    sent, bounced = issued_invoice(app), issued_invoice(app, {"email": "gone@example.com", "name": "Gone"})
    app.mail.queue(sent, trigger="api")
    app.mail.queue(bounced, trigger="dunning", purpose=REMINDER)
    mail_server.refuse("gone@example.com")
    mailer = worker(app, engine, mail_server, clock)
    mail_server.stop()
    mailer.run_once()  # both fail
    mail_server.start()
    clock.advance(timedelta(minutes=1))
    assert mailer.run_once() == MailCounts(sent=1, bounced=1)

    report = check(engine, app, lambda: read_model_projections(app), batch_size=3)

    assert report.ok, report
    assert "invoice_emails" in {table.table for table in report.tables}


def test_a_temporary_refusal_is_retried_and_implicit_tls_to_a_plain_server_fails(
    app: BillingApplication, engine: Engine, mail_server: MailServer, clock: ManualClock
) -> None:
    invoice_id = queued_invoice(app)
    mail_server.defer("zoe@example.com")
    mailer = worker(app, engine, mail_server, clock)

    assert mailer.run_once() == MailCounts(failed=1)
    assert "451" in str(only_email(app, engine, invoice_id)["last_error"])

    clock.advance(timedelta(minutes=1))
    tls = SmtpSender(parse_smtp_url(f"smtps://127.0.0.1:{mail_server.port}?timeout=5"))
    assert MailWorker(app, engine, tls, seller=SELLER, clock=clock).run_once() == MailCounts(failed=1)
    assert "SSL" in str(only_email(app, engine, invoice_id)["last_error"])

    mail_server.deferred.clear()
    clock.advance(timedelta(minutes=5))
    assert mailer.run_once() == MailCounts(sent=1)
    assert len(mail_server.messages) == 1


def test_follow_delivers_until_it_is_stopped(
    app: BillingApplication, engine: Engine, mail_server: MailServer, clock: ManualClock
) -> None:
    invoice_id = queued_invoice(app)
    stop = threading.Event()
    smtp = SmtpSender(parse_smtp_url(mail_server.url))

    class StopAfterOne:
        """The real sender; the test stops the worker once it has sent one message."""

        def send(self, message: EmailMessage) -> Delivery:
            delivery = smtp.send(message)
            stop.set()
            return delivery

    mailer = MailWorker(app, engine, StopAfterOne(), seller=SELLER, clock=clock)
    mailer.follow(stop, interval=0.01)

    assert len(mail_server.messages) == 1
    assert only_email(app, engine, invoice_id)["status"] == SENT


@pytest.fixture
def tls_mail_server(tmp_path: Path) -> Iterator[tuple[MailServer, ssl.SSLContext]]:
    """A server that offers STARTTLS and wants a login, and a client context that trusts its certificate."""
    contexts = self_signed_tls(tmp_path)
    if contexts is None:
        pytest.skip("the openssl command is not installed")
    server_context, client_context = contexts
    server = MailServer(tls_context=server_context, credentials=("billing@acme.example", "p@ss:word"))
    server.start()
    try:
        yield server, client_context
    finally:
        server.stop()


def test_starttls_when_offered_then_the_login_from_the_url(
    app: BillingApplication, engine: Engine, tls_mail_server: tuple[MailServer, ssl.SSLContext], clock: ManualClock
) -> None:
    server, trust = tls_mail_server
    queued_invoice(app)
    url = f"smtp://billing%40acme.example:p%40ss%3Aword@127.0.0.1:{server.port}?starttls=required&timeout=5"
    mailer = MailWorker(app, engine, SmtpSender(parse_smtp_url(url), tls_context=trust), seller=SELLER, clock=clock)

    assert mailer.run_once() == MailCounts(sent=1)
    assert server.sessions == [{"tls": True, "login": "billing@acme.example"}]
    assert len(server.messages) == 1


def test_a_wrong_password_fails_and_is_retried(
    app: BillingApplication, engine: Engine, tls_mail_server: tuple[MailServer, ssl.SSLContext], clock: ManualClock
) -> None:
    server, trust = tls_mail_server
    invoice_id = queued_invoice(app)
    url = f"smtp://billing%40acme.example:wrong@127.0.0.1:{server.port}?timeout=5"
    mailer = MailWorker(app, engine, SmtpSender(parse_smtp_url(url), tls_context=trust), seller=SELLER, clock=clock)

    assert mailer.run_once() == MailCounts(failed=1)
    row = only_email(app, engine, invoice_id)
    assert "535" in str(row["last_error"])
    assert "wrong" not in str(row["last_error"])
    assert server.messages == []


def test_an_address_smtp_cannot_carry_bounces_before_any_server_is_asked(
    app: BillingApplication, engine: Engine, mail_server: MailServer, clock: ManualClock
) -> None:
    invoice_id = queued_invoice(app, {"email": "zoë@example.com", "name": "Zoë"})

    assert worker(app, engine, mail_server, clock).run_once() == MailCounts(bounced=1)

    assert mail_server.messages == []
    assert "SMTPUTF8" in str(only_email(app, engine, invoice_id)["last_error"])


@pytest.mark.parametrize("address", ["ann,bob@example.com", "ann;bob@example.com", "ann:bob@example.com"])
def test_an_address_no_header_can_hold_bounces_and_the_pass_goes_on(
    app: BillingApplication, engine: Engine, mail_server: MailServer, clock: ManualClock, address: str
) -> None:
    """The ledger takes any text with one @ as an address; the email package refuses these in
    a To header. Such an email bounces (no retry can help) and the others are still delivered."""
    unaddressable = queued_invoice(app, {"email": address, "name": "Ann"})
    fine = issued_invoice(app)
    app.mail.queue(fine, trigger="api")

    assert worker(app, engine, mail_server, clock).run_once() == MailCounts(sent=1, bounced=1)

    assert [message["To"].addresses[0].addr_spec for message in mail_server.messages] == ["zoe@example.com"]
    assert "address" in str(only_email(app, engine, unaddressable)["last_error"])


def test_a_fault_building_one_message_fails_that_email_and_the_pass_goes_on(
    app: BillingApplication, engine: Engine, mail_server: MailServer, clock: ManualClock
) -> None:
    """A fault of ours (not a LedgerError) in one message is that email's failed attempt, retried
    later; the other emails of the pass still go out."""
    broken = issued_invoice(app, {"email": "ann@example.com", "name": "Ann"})
    app.mail.queue(broken, trigger="api")
    fine = issued_invoice(app)
    app.mail.queue(fine, trigger="api")

    def render(invoice: Invoice, **options: object) -> bytes:
        if invoice.id == broken:
            raise RuntimeError("a bug in the layout")
        return render_invoice_pdf(invoice, **options)  # type: ignore[arg-type]

    sender = SmtpSender(parse_smtp_url(mail_server.url))
    faulty = MailWorker(app, engine, sender, seller=SELLER, clock=clock, render_pdf=render)

    assert faulty.run_once() == MailCounts(sent=1, failed=1)
    assert [message["To"].addresses[0].addr_spec for message in mail_server.messages] == ["zoe@example.com"]
    row = only_email(app, engine, broken)
    assert row["status"] == "failed"
    assert "RuntimeError: a bug in the layout" in str(row["last_error"])
