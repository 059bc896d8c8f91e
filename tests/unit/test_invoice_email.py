"""The InvoiceEmail aggregate: one per send, attempts claimed in turn, retried on the backoff,
settled once."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from ledger.errors import InvalidInputError, InvalidTextError
from ledger.invoices import PROCESSOR_BALANCE, Invoice
from ledger.lines import Line
from ledger.mail.emails import (
    BOUNCED,
    FAILED,
    GAVE_UP,
    LEASE,
    QUEUED,
    SENDING,
    SENT,
    WITHDRAWN,
    EmailNotDueError,
    EmailNotWithdrawableError,
    InvoiceEmail,
    email_id_for,
    version_key,
    withdrawal_reason,
)
from ledger.money import Money
from tests.unit.given import CUSTOMER, T0, at, drain

INVOICE = UUID("0b5c5a3e-1d2f-4a6b-8c9d-0e1f2a3b4c5d")


def queued(max_attempts: int = 5) -> InvoiceEmail:
    return InvoiceEmail.queue(
        invoice_id=INVOICE,
        invoice_version=3,
        purpose="invoice",
        recipient="ap@example.com",
        trigger="api",
        key=version_key(3),
        max_attempts=max_attempts,
        at=T0,
    )


def test_the_same_send_is_the_same_email() -> None:
    assert queued().id == email_id_for(INVOICE, "invoice", "v3") == queued().id
    assert email_id_for(INVOICE, "reminder", "v3") != queued().id
    assert email_id_for(INVOICE, "invoice", "v4") != queued().id
    assert email_id_for(uuid4(), "invoice", "v3") != queued().id


def test_a_queued_email_is_due_at_once_and_an_attempt_is_claimed_once() -> None:
    email = queued()
    assert (email.status, email.next_attempt_at) == (QUEUED, T0)
    assert email.start_attempt(at=T0) == 1
    assert email.status == SENDING
    with pytest.raises(EmailNotDueError, match="attempt 1 is in progress"):
        email.start_attempt(at=at(1))


def test_failures_are_retried_on_the_backoff_then_given_up() -> None:
    email = queued()
    moment = T0
    waits = []
    for attempt in range(1, 6):
        assert email.start_attempt(at=moment) == attempt
        assert email.record_failed(attempt=attempt, reason="connection refused", at=moment)
        if email.retry_at is not None:
            waits.append(email.retry_at - moment)
            with pytest.raises(EmailNotDueError):
                email.start_attempt(at=email.retry_at - timedelta(seconds=1))
            moment = email.retry_at
    assert waits == [timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2)]
    assert (email.status, email.attempts, email.next_attempt_at) == (GAVE_UP, 5, None)
    with pytest.raises(EmailNotDueError, match="gave_up"):
        email.start_attempt(at=moment + timedelta(days=30))


def test_a_bounce_is_final() -> None:
    email = queued()
    email.start_attempt(at=T0)
    assert email.record_bounced(attempt=1, code=550, reason="User unknown", at=T0)
    assert (email.status, email.last_error, email.is_due(at(10_000))) == (BOUNCED, "550 User unknown", False)


def test_an_abandoned_attempt_may_be_taken_up_after_the_lease_and_its_late_reports_are_weighed() -> None:
    email = queued()
    email.start_attempt(at=T0)
    assert not email.is_due(T0 + LEASE - timedelta(seconds=1))
    assert email.is_due(T0 + LEASE)
    assert email.start_attempt(at=T0 + LEASE) == 2
    assert not email.record_failed(attempt=1, reason="late", at=T0 + LEASE)  # not the current attempt
    assert email.record_sent(attempt=1, message_id="<m@x>", reply="250 OK", at=T0 + LEASE)  # it went out
    assert email.status == SENT
    assert not email.record_sent(attempt=2, message_id="<m@x>", reply="250 OK", at=T0 + LEASE)
    assert not email.record_failed(attempt=2, reason="late", at=T0 + LEASE)
    assert [type(e).__name__ for e in drain(email)] == ["Queued", "AttemptStarted", "AttemptStarted", "Sent"]


def test_reports_of_attempts_never_started_are_refused() -> None:
    email = queued()
    with pytest.raises(EmailNotDueError, match="never started"):
        email.record_sent(attempt=1, message_id="<m@x>", reply="250", at=T0)


def test_a_failure_after_the_last_attempt_has_no_retry() -> None:
    email = queued(max_attempts=1)
    email.start_attempt(at=T0)
    email.record_failed(attempt=1, reason="timed out", at=T0)
    [*_, failed] = drain(email)
    assert failed.retry_at is None
    assert email.status == GAVE_UP


def test_a_failed_email_shows_when_it_is_retried() -> None:
    email = queued()
    email.start_attempt(at=T0)
    email.record_failed(attempt=1, reason="421 try later", at=T0)
    assert (email.status, email.next_attempt_at, email.last_error) == (FAILED, at(1), "421 try later")


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("purpose", "invoice-copy", InvalidInputError),
        ("trigger", "cron", InvalidInputError),
        ("recipient", "not an address", InvalidTextError),
        ("max_attempts", 0, InvalidInputError),
        ("max_attempts", 21, InvalidInputError),
        ("key", "", InvalidTextError),
    ],
)
def test_what_cannot_be_sent_is_refused(field: str, value: object, error: type[Exception]) -> None:
    given: dict[str, object] = {
        "invoice_id": INVOICE,
        "invoice_version": 3,
        "purpose": "invoice",
        "recipient": "ap@example.com",
        "trigger": "api",
        "key": "v3",
        "at": T0,
        field: value,
    }
    with pytest.raises(error):
        InvoiceEmail.queue(**given)  # type: ignore[arg-type]


def test_an_email_is_withdrawn_between_attempts_once_and_for_good() -> None:
    email = queued()
    email.start_attempt(at=T0)
    with pytest.raises(EmailNotWithdrawableError, match="it is sending"):  # the attempt may be on the wire
        email.withdraw(reason="paid", at=T0)
    email.record_failed(attempt=1, reason="connection refused", at=T0)

    assert email.withdraw(reason="invoice INV-1 was paid", at=at(1))
    assert (email.status, email.last_error, email.next_attempt_at) == (WITHDRAWN, "invoice INV-1 was paid", None)
    assert not email.is_due(at(10_000))
    with pytest.raises(EmailNotDueError, match="it is withdrawn"):
        email.start_attempt(at=at(10_000))
    assert not email.withdraw(reason="again", at=at(2))
    assert [type(e).__name__ for e in drain(email)][-1:] == ["Withdrawn"]

    sent = queued()
    sent.start_attempt(at=T0)
    sent.record_sent(attempt=1, message_id="<m@x>", reply="250", at=T0)
    with pytest.raises(EmailNotWithdrawableError, match="it is sent"):
        sent.withdraw(reason="late", at=T0)


def opened() -> Invoice:
    invoice = Invoice.create_draft(invoice_id=INVOICE, customer=CUSTOMER, currency="usd", at=T0)
    invoice.add_line(Line.price(line_id="l1", description="Work", quantity=1, unit_amount=1000), at=T0)
    invoice.issue(sequence=7, at=at(1))
    return invoice


def paid(amount: int = 1000) -> Invoice:
    invoice = opened()
    invoice.apply_payment(
        payment_id="pay_1", amount=Money(amount, "usd"), fee=0, cash_account=PROCESSOR_BALANCE, at=at(2)
    )
    return invoice


def voided() -> Invoice:
    invoice = opened()
    invoice.void(at=at(2))
    return invoice


def uncollectible() -> Invoice:
    invoice = opened()
    invoice.mark_uncollectible(at=at(2))
    return invoice


def test_a_reminder_is_withdrawn_once_nothing_is_due_or_the_invoice_was_written_off_since() -> None:
    number = opened().number
    assert withdrawal_reason("reminder", opened(), opened()) is None
    assert withdrawal_reason("reminder", opened(), paid(400)) is None  # part paid: the rest is due
    assert withdrawal_reason("reminder", opened(), paid()) == (
        f"invoice {number} was paid after the reminder was queued: nothing is due"
    )
    assert withdrawal_reason("reminder", opened(), voided()) == (
        f"invoice {number} was voided after the email was queued"
    )
    assert withdrawal_reason("reminder", opened(), uncollectible()) == (
        f"invoice {number} was marked uncollectible after the reminder was queued"
    )
    assert withdrawal_reason("reminder", uncollectible(), uncollectible()) is None  # asked for as it was


def test_an_invoice_email_is_withdrawn_only_when_the_invoice_was_voided_since() -> None:
    assert withdrawal_reason("invoice", opened(), paid()) is None  # it shows the invoice paid
    assert withdrawal_reason("invoice", opened(), uncollectible()) is None
    assert withdrawal_reason("invoice", voided(), voided()) is None  # a void invoice's email, sent on purpose
    assert withdrawal_reason("invoice", opened(), voided()) == (
        f"invoice {opened().number} was voided after the email was queued"
    )
