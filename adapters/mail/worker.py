"""The mail worker: delivers the invoice emails that are due, one claimed attempt at a time.

`run_once()` brings the read models up to date, takes the due emails from invoice_emails
(projections/mail/emails.py) and, for each:

1. withdraws it (`app.mail.withdraw`) when it should no longer go out: a reminder of an
   invoice paid, voided or marked uncollectible since it was queued, the email of an invoice
   voided since (ledger.mail.emails.withdrawal_reason); nothing is sent;
2. claims the next attempt (`app.mail.start_attempt` with the version the row showed): a
   StaleVersionError or EmailNotDueError means another worker has it, and it is skipped;
3. builds the message from the invoice at the version the email was queued with, the PDF
   attached (adapters/pdf/render.py) and the portal link when `portal_link` gives one (one
   link per email: every attempt carries the same URL);
4. hands it to the server (adapters/mail/smtp.py) and records what happened: sent, failed
   (retried later on the backoff schedule) or bounced.

Delivery is at least once: a crash between the server's 250 and our record leaves the attempt
`sending`; after the lease (ledger.mail.emails.LEASE) the abandoned attempt is recorded as failed
and retried. Its Message-ID is the same, so a receiving MUA can drop the copy (ADR 0020).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from functools import partial
from pathlib import Path
from typing import Protocol
from uuid import UUID

from sqlalchemy import Engine

from adapters.mail.message import build_invoice_message
from adapters.mail.smtp import ACCEPTED, BOUNCED, Delivery, SmtpSender, unsendable
from adapters.mail.smtp_url import parse_smtp_url
from adapters.pdf.render import render_invoice_pdf
from adapters.persistence import ConfigurationError
from adapters.read_models import projection_runner
from adapters.settings import Settings
from commands.application import BillingApplication
from commands.ports import Clock
from ledger.errors import LedgerError, StaleVersionError
from ledger.invoices import Invoice
from ledger.mail.emails import (
    SENDING,
    EmailNotDueError,
    EmailNotWithdrawableError,
    InvoiceEmail,
    withdrawal_reason,
)
from ledger.seller import Seller
from projections.mail.emails import due_emails

log = logging.getLogger("ledger.mail")

# (invoice id, email id) -> the customer's portal URL for that email's message, or None. The same
# email must get the same URL on every attempt (portal_links: the link is keyed by the email).
PortalLink = Callable[[UUID, UUID], str | None]


class RenderPdf(Protocol):
    """Renders the invoice's PDF (adapters/pdf/render.py's `render_invoice_pdf` and its font directory)."""

    def __call__(self, invoice: Invoice, *, seller: Seller, portal_url: str | None) -> bytes: ...


ABANDONED = "no outcome was reported within the lease: the worker stopped mid-attempt (the message may have gone out)"


class Sender(Protocol):
    """Hands one message to a mail server (adapters/mail/smtp.py's SmtpSender)."""

    def send(self, message: EmailMessage) -> Delivery: ...


@dataclass(frozen=True)
class MailCounts:
    """What one pass did."""

    sent: int = 0
    failed: int = 0  # will be retried
    bounced: int = 0
    gave_up: int = 0
    withdrawn: int = 0  # no longer due (the invoice paid or voided since): not sent
    skipped: int = 0  # another worker had it, or it was settled meanwhile
    abandoned: int = 0  # attempts found stopped mid-way, recorded as failed

    @property
    def total(self) -> int:
        return self.sent + self.failed + self.bounced + self.gave_up + self.withdrawn + self.skipped + self.abandoned

    def __str__(self) -> str:
        withdrawn = f", {self.withdrawn} withdrawn" if self.withdrawn else ""
        return (
            f"{self.sent} sent, {self.failed} failed (to retry), {self.bounced} bounced, "
            f"{self.gave_up} gave up{withdrawn}, {self.skipped} skipped, {self.abandoned} abandoned attempts"
        )


class MailWorker:
    def __init__(
        self,
        app: BillingApplication,
        engine: Engine,
        sender: Sender,
        *,
        seller: Seller,
        mail_from: str | None = None,
        portal_link: PortalLink | None = None,
        clock: Clock | None = None,
        font_dir: Path | None = None,
        catch_up: Callable[[], object] | None = None,
        batch_size: int = 100,
        render_pdf: RenderPdf | None = None,
    ) -> None:
        """`catch_up` brings the read models up to date (default: a projection runner of its own
        on `engine`; in `ledger serve`, the process's in-process projections). `render_pdf`:
        render_invoice_pdf with `font_dir` unless given."""
        self.app = app
        self.engine = engine
        self.sender = sender
        self.seller = seller
        self.mail_from = mail_from
        self.portal_link = portal_link or (lambda _invoice, _email: None)
        self.clock = clock or app.clock
        self.batch_size = batch_size
        self.render_pdf = render_pdf or partial(render_invoice_pdf, font_dir=font_dir)
        self._catch_up = catch_up or projection_runner(app, engine).catch_up

    def run_once(self) -> MailCounts:
        """Deliver what is due now (at most `batch_size` emails)."""
        self._catch_up()
        counts: Counter[str] = Counter()
        for row in due_emails(self.engine, self.clock.now(), limit=self.batch_size):
            counts[self._deliver(UUID(row["email_id"]), int(row["version"]), row["status"])] += 1
        return MailCounts(**counts)

    def follow(self, stop: threading.Event, interval: float = 5.0) -> None:
        """Deliver due emails every `interval` seconds until `stop` is set; never dies of an error."""
        while not stop.is_set():
            try:
                counts = self.run_once()
                if counts.total:
                    log.info("mail: %s", counts)
            except Exception:  # the database or the store is down: try again at the next tick
                log.exception("mail: pass failed")
            stop.wait(interval)

    # ------------------------------------------------------------------------ one email

    def _deliver(self, email_id: UUID, version: int, status: str) -> str:
        if status == SENDING:  # an attempt whose worker never reported: count it failed, retry later
            email = self.app.mail.email(email_id)
            if email.version != version or not email.abandoned(self.clock.now()):
                return "skipped"
            recorded = self.app.mail.record_failed(email_id, attempt=email.attempts, reason=ABANDONED).result
            return "abandoned" if recorded else "skipped"
        email = self.app.mail.email(email_id)
        if email.version != version:  # the row lags: another worker moved it on since
            return "skipped"
        queued = self.app.invoice(UUID(email.invoice_id), version=email.invoice_version)
        reason = withdrawal_reason(email.purpose, queued, self.app.invoice(queued.id))
        if reason is not None:
            try:
                self.app.mail.withdraw(email_id, version, reason)
            except (StaleVersionError, EmailNotWithdrawableError):
                return "skipped"
            log.info("mail: email %s withdrawn: %s", email_id, reason)
            return "withdrawn"
        try:
            attempt = self.app.mail.start_attempt(email_id, version).result
        except (StaleVersionError, EmailNotDueError):
            return "skipped"
        refusal = unsendable(email.recipient)
        if refusal is not None:  # no message can be addressed to it: as final as the server's 5xx
            self.app.mail.record_bounced(email_id, attempt=attempt, code=0, reason=refusal)
            return "bounced"
        try:
            message = self._message(email, queued)
        except LedgerError as error:  # e.g. the PDF font is missing: retried once it is installed
            log.warning("mail: email %s not built: %s", email_id, error)
            return self._failed(email, attempt, f"the message could not be built: {error}")
        except Exception as error:  # a fault of ours in one message must not hold back the others
            log.exception("mail: email %s not built", email_id)
            return self._failed(email, attempt, f"the message could not be built: {type(error).__name__}: {error}")
        delivery = self.sender.send(message)
        try:
            return self._record(email, attempt, delivery, str(message["Message-ID"]))
        except LedgerError:  # the store is down after sending: the lease brings it back (at least once)
            log.exception("mail: email %s went out as %s but could not be recorded", email_id, delivery.outcome)
            return "failed"

    def _message(self, email: InvoiceEmail, invoice: Invoice) -> EmailMessage:
        portal = self._portal(invoice.id, email.id)
        pdf = self.render_pdf(invoice, seller=self.seller, portal_url=portal)
        return build_invoice_message(
            invoice,
            email_id=email.id,
            purpose=email.purpose,
            recipient=email.recipient,
            seller=self.seller,
            mail_from=self.mail_from,
            pdf=pdf,
            portal_url=portal,
            at=self.clock.now(),
        )

    def _portal(self, invoice_id: UUID, email_id: UUID) -> str | None:
        try:
            return self.portal_link(invoice_id, email_id)
        except LedgerError as error:  # the email is still worth sending without the link
            log.warning("mail: no portal link for invoice %s: %s", invoice_id, error)
            return None

    def _record(self, email: InvoiceEmail, attempt: int, delivery: Delivery, message_id: str) -> str:
        mail = self.app.mail
        if delivery.outcome == ACCEPTED:
            mail.record_sent(email.id, attempt=attempt, message_id=message_id, reply=delivery.reply)
            return "sent"
        if delivery.outcome == BOUNCED:
            mail.record_bounced(email.id, attempt=attempt, code=delivery.code or 0, reason=delivery.reply)
            return "bounced"
        return self._failed(email, attempt, delivery.reply)

    def _failed(self, email: InvoiceEmail, attempt: int, reason: str) -> str:
        self.app.mail.record_failed(email.id, attempt=attempt, reason=reason)
        return "failed" if attempt < email.max_attempts else "gave_up"


def mail_worker(
    app: BillingApplication,
    engine: Engine,
    settings: Settings,
    *,
    portal_link: PortalLink | None = None,
    catch_up: Callable[[], object] | None = None,
) -> MailWorker:
    """The worker the settings describe; ConfigurationError when LEDGER_SMTP_URL is unset or
    malformed (the emails stay queued). `portal_link` None: `portal_links(app, settings)`."""
    if not settings.smtp_url:
        raise ConfigurationError(
            "LEDGER_SMTP_URL is unset: no email can be delivered (they stay queued); "
            "set it, e.g. smtp://localhost:25 or smtps://user:password@mail.example.com"
        )
    return MailWorker(
        app,
        engine,
        SmtpSender(parse_smtp_url(settings.smtp_url)),
        seller=settings.seller,
        mail_from=settings.mail_from,
        portal_link=portal_link or portal_links(app, settings),
        font_dir=settings.pdf_font_dir,
        catch_up=catch_up,
    )


def portal_links(app: BillingApplication, settings: Settings) -> PortalLink | None:
    """The portal link of each email's message (commands/portal/links.py): a link for the
    invoice's customer opening on the invoice, issued by `mail`, keyed by the email, so a retried
    attempt carries the URL its first attempt did and a resend (another email) gets a link of its
    own. None, said once in the log, without LEDGER_SECRET_KEY (the portal is off) or without
    LEDGER_PUBLIC_URL: the server's own address (loopback) is nowhere a customer can reach."""
    secret, base_url = settings.secret_key, settings.public_url
    if not secret:
        log.info("mail: invoice emails carry no portal link: LEDGER_SECRET_KEY is unset (the portal is off)")
        return None
    if not base_url:
        log.warning(
            "mail: invoice emails carry no portal link: LEDGER_PUBLIC_URL is unset, and a customer "
            "cannot reach this server's own address; set it to where customers reach it "
            "(e.g. https://billing.example.com)"
        )
        return None

    def link(invoice_id: UUID, email_id: UUID) -> str:
        return app.portal.link_for_invoice(
            invoice_id, base_url=base_url, idempotency_key=f"mail:{email_id}", issued_by="mail", secret=secret
        ).result

    return link
