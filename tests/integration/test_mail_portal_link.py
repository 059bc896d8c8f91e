"""The portal link in every invoice email (on SQLite and PostgreSQL): the worker the settings
describe (`mail_worker`) puts a link for the invoice's customer, opening on the invoice, in the
text and the HTML; every attempt of one email carries the same URL; without LEDGER_SECRET_KEY or
LEDGER_PUBLIC_URL there is no link, the log says why once, and the mail still goes."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from email.message import EmailMessage
from html import unescape
from uuid import UUID

import pytest
from sqlalchemy import Engine

from adapters.clock import ManualClock
from adapters.mail.smtp import FAILED, Delivery
from adapters.mail.worker import MailCounts, MailWorker, Sender, mail_worker
from adapters.settings import Settings
from commands.application import BillingApplication
from commands.portal.tokens import link_id_from
from ledger.mail.emails import REMINDER
from tests.integration.test_mail_delivery import SELLER, bodies, issued_invoice, only_email
from tests.mail_server import MailServer

SECRET = "mail-test-portal-secret-0123456789abcdefghij"
PUBLIC_URL = "https://billing.example.com"
_TEXT_LINK = re.compile(r"View and pay it online: (\S+)")
_HTML_LINK = re.compile(r'<a href="([^"]+)">View and pay it online</a>')


def settings_for(database_url: str, server: MailServer, **given: str | None) -> Settings:
    values: dict[str, str | None] = {"secret_key": SECRET, "public_url": PUBLIC_URL, **given}
    return Settings(database_url=database_url, smtp_url=server.url, seller=SELLER, **values)  # type: ignore[arg-type]


def portal_url_of(message: EmailMessage) -> str:
    """The link the message carries: the same in its text and its HTML."""
    text, html = bodies(message)
    in_text = _TEXT_LINK.search(text)
    in_html = _HTML_LINK.search(html)
    assert in_text is not None, text
    assert in_html is not None, html
    assert unescape(in_html.group(1)) == in_text.group(1)
    return in_text.group(1)


class ReplyLost:
    """The server takes the message but its answer never arrives (a timeout after DATA): the
    attempt is recorded failed and retried, and the customer gets a second copy."""

    def __init__(self, sender: Sender) -> None:
        self.sender = sender
        self.calls = 0

    def send(self, message: EmailMessage) -> Delivery:
        self.calls += 1
        delivery = self.sender.send(message)
        if self.calls == 1:
            return Delivery(FAILED, "timed out waiting for the reply to DATA")
        return delivery


def test_every_attempt_of_an_email_links_to_its_invoice_for_its_customer(
    app: BillingApplication, engine: Engine, mail_server: MailServer, clock: ManualClock, database_url: str
) -> None:
    invoice_id = issued_invoice(app)
    email_id = app.mail.queue(invoice_id, trigger="api").result
    mailer = mail_worker(app, engine, settings_for(database_url, mail_server))
    mailer.sender = ReplyLost(mailer.sender)

    assert mailer.run_once() == MailCounts(failed=1)
    clock.advance(timedelta(minutes=1))
    assert mailer.run_once() == MailCounts(sent=1)

    first, second = mail_server.messages  # one copy per attempt
    url = portal_url_of(first)
    assert portal_url_of(second) == url
    base, token, rest = re.fullmatch(r"(.+)/portal/([^/]+)(/.*)", url).groups()  # type: ignore[union-attr]
    assert (base, rest) == (PUBLIC_URL, f"/invoices/{invoice_id}")
    link = app.portal.link(link_id_from(token, SECRET))
    assert link is not None
    assert (link.customer_email, link.invoice_id, link.issued_by) == ("zoe@example.com", str(invoice_id), "mail")
    assert link.id == app.portal.keyed_link_id(invoice_id, f"mail:{email_id}", secret=SECRET)
    assert only_email(app, engine, invoice_id)["attempts"] == 2

    resent = app.mail.queue(invoice_id, trigger="api", resend=True).result
    reminder = app.mail.queue(invoice_id, purpose=REMINDER, trigger="dunning", key="dunning-1").result
    assert mailer.run_once() == MailCounts(sent=2)
    others = {portal_url_of(message) for message in mail_server.messages[2:]}
    assert len(others) == 2  # a link of their own: revoking one email's leaves the others'
    assert url not in others
    assert resent != reminder != email_id


@pytest.mark.parametrize(
    ("missing", "said"),
    [
        ("public_url", "LEDGER_PUBLIC_URL is unset, and a customer cannot reach this server's own address"),
        ("secret_key", "LEDGER_SECRET_KEY is unset (the portal is off)"),
    ],
)
def test_without_a_secret_or_a_public_url_the_mail_goes_without_a_link(
    app: BillingApplication,
    engine: Engine,
    mail_server: MailServer,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
    missing: str,
    said: str,
) -> None:
    invoices = [issued_invoice(app), issued_invoice(app)]
    caplog.set_level(logging.INFO, logger="ledger.mail")
    mailer: MailWorker = mail_worker(app, engine, settings_for(database_url, mail_server, **{missing: None}))
    for invoice_id in invoices:
        app.mail.queue(invoice_id, trigger="api")
        assert mailer.run_once() == MailCounts(sent=1)

    assert len(mail_server.messages) == 2
    for message in mail_server.messages:
        text, html = bodies(message)
        assert "/portal/" not in text
        assert "/portal/" not in html
        assert "View and pay it online" not in text
    why = [record.getMessage() for record in caplog.records if "portal link" in record.getMessage()]
    assert len(why) == 1  # once, not once per email
    assert said in why[0]


def test_a_link_that_cannot_be_made_leaves_the_mail_to_go_without_it(
    app: BillingApplication, engine: Engine, mail_server: MailServer, database_url: str
) -> None:
    invoice_id = issued_invoice(app)
    app.mail.queue(invoice_id, trigger="api")
    mailer = mail_worker(app, engine, settings_for(database_url, mail_server))
    refused: list[UUID] = []

    def unavailable(invoice: UUID, email: UUID) -> str:
        refused.append(invoice)
        app.portal.link_for_invoice(invoice, base_url=PUBLIC_URL, secret=None)  # the app has no secret: refused
        raise AssertionError("the portal made a link without a secret")

    mailer.portal_link = unavailable
    assert mailer.run_once() == MailCounts(sent=1)
    assert refused == [invoice_id]
    assert "/portal/" not in bodies(mail_server.messages[0])[0]
