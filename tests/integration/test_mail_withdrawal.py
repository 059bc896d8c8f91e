"""An email that is no longer due is withdrawn, not sent (on SQLite and PostgreSQL): a reminder
queued while the invoice was due and delivered only after it was paid, voided or marked
uncollectible (the mail server was down meanwhile), and the email of an invoice voided before
delivery. What was asked for knowingly still goes: a paid invoice's invoice email (it shows it
paid), a reminder queued while the invoice was uncollectible already."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest
from sqlalchemy import Engine

from adapters.clock import ManualClock
from adapters.mail.worker import MailCounts
from commands.application import BillingApplication
from ledger.mail.emails import (
    REMINDER,
    SENT,
    WITHDRAWN,
    EmailNotWithdrawableError,
    InvoiceEmail,
)
from ledger.money import Money
from tests.integration.test_mail_delivery import issued_invoice, only_email, worker
from tests.mail_server import MailServer


def pay_in_full(app: BillingApplication, invoice_id: UUID) -> None:
    invoice = app.invoice(invoice_id)
    app.record_offline_payment(invoice_id, Money(invoice.amount_due, invoice.currency), reference="wire 1")
    assert app.invoice(invoice_id).status == "paid"


def last_event(app: BillingApplication, email_id: UUID) -> InvoiceEmail.Event:
    [*_, last] = list(app.repository.event_store.get(email_id))
    assert isinstance(last, InvoiceEmail.Event)
    return last


def test_a_reminder_queued_during_an_outage_is_withdrawn_once_the_invoice_is_paid(
    app: BillingApplication, engine: Engine, mail_server: MailServer, clock: ManualClock
) -> None:
    invoice_id = issued_invoice(app)
    email_id = app.mail.queue(invoice_id, purpose=REMINDER, trigger="dunning", key="dunning-1").result
    mailer = worker(app, engine, mail_server, clock)
    mail_server.stop()
    assert mailer.run_once() == MailCounts(failed=1)

    pay_in_full(app, invoice_id)
    mail_server.start()
    clock.advance(timedelta(minutes=1))

    assert mailer.run_once() == MailCounts(withdrawn=1)
    assert mail_server.messages == []
    withdrawn = last_event(app, email_id)
    assert isinstance(withdrawn, InvoiceEmail.Withdrawn)
    number = app.invoice(invoice_id).number
    assert withdrawn.reason == f"invoice {number} was paid after the reminder was queued: nothing is due"
    row = only_email(app, engine, invoice_id)
    assert (row["status"], row["attempts"], row["next_attempt_at"]) == (WITHDRAWN, 1, None)
    assert row["last_error"] == withdrawn.reason
    assert app.mail.email(email_id).status == WITHDRAWN

    clock.advance(timedelta(days=1))
    assert mailer.run_once() == MailCounts()  # final: never tried again
    assert mail_server.messages == []


def test_a_queued_reminder_of_an_invoice_voided_or_marked_uncollectible_since_is_withdrawn(
    app: BillingApplication, engine: Engine, mail_server: MailServer, clock: ManualClock
) -> None:
    voided, written_off = issued_invoice(app), issued_invoice(app)
    app.mail.queue(voided, purpose=REMINDER, trigger="dunning", key="dunning-1")
    app.mail.queue(written_off, purpose=REMINDER, trigger="dunning", key="dunning-1")
    app.void(voided)
    app.mark_uncollectible(written_off)

    assert worker(app, engine, mail_server, clock).run_once() == MailCounts(withdrawn=2)

    assert mail_server.messages == []
    assert "was voided after the email was queued" in str(only_email(app, engine, voided)["last_error"])
    assert "marked uncollectible after the reminder was queued" in str(
        only_email(app, engine, written_off)["last_error"]
    )


def test_the_email_of_an_invoice_voided_before_delivery_is_withdrawn(
    app: BillingApplication, engine: Engine, mail_server: MailServer, clock: ManualClock
) -> None:
    invoice_id = issued_invoice(app)
    app.mail.queue(invoice_id, trigger="on-issue")
    app.void(invoice_id)

    assert worker(app, engine, mail_server, clock).run_once() == MailCounts(withdrawn=1)

    assert mail_server.messages == []
    row = only_email(app, engine, invoice_id)
    assert row["status"] == WITHDRAWN
    assert f"invoice {app.invoice(invoice_id).number} was voided" in str(row["last_error"])


def test_what_was_asked_for_knowingly_still_goes(
    app: BillingApplication, engine: Engine, mail_server: MailServer, clock: ManualClock
) -> None:
    paid, void, uncollectible = issued_invoice(app), issued_invoice(app), issued_invoice(app)
    app.mail.queue(paid, trigger="api")  # while it was open
    pay_in_full(app, paid)  # the invoice email still goes: its PDF shows it paid
    app.void(void)
    app.mail.queue(void, trigger="api")  # the voided invoice, sent on purpose
    app.mark_uncollectible(uncollectible)
    app.mail.queue(uncollectible, purpose=REMINDER, trigger="dashboard", key="by-hand")

    assert worker(app, engine, mail_server, clock).run_once() == MailCounts(sent=3)

    assert len(mail_server.messages) == 3
    assert {only_email(app, engine, i)["status"] for i in (paid, void, uncollectible)} == {SENT}


def test_a_withdrawn_email_stays_withdrawn_and_one_being_sent_is_not_withdrawn(app: BillingApplication) -> None:
    invoice_id = issued_invoice(app)
    email_id = app.mail.queue(invoice_id, trigger="api").result
    assert app.mail.withdraw(email_id, 1, "not wanted").result is True
    assert app.mail.withdraw(email_id, None, "not wanted").result is False  # recorded once
    assert app.mail.email(email_id).version == 2

    other = app.mail.queue(invoice_id, trigger="api", resend=True).result
    app.mail.start_attempt(other, 1)
    with pytest.raises(EmailNotWithdrawableError, match="it is sending"):
        app.mail.withdraw(other, 2, "not wanted")
