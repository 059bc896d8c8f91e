"""Dunning by hand (the dashboard's "retry now" and "send reminder"), on the real backends: the
provider is asked once per failed attempt, with a key of its own, and the request is kept as a
dunning event beside the schedule's steps, which it does not disturb."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.clock import ManualClock
from commands.application import BillingApplication
from ledger.dunning.aggregate import retry_by_hand_key
from ledger.dunning.policy import DunningPolicy
from ledger.errors import DunningStateError, InvoiceNotOpenError
from ledger.invoices import VOID
from tests.fake_payments import FakePaymentProvider
from tests.integration.test_dunning import days_after_due, dunning_topics, fail_attempt, open_invoice

POLICY = DunningPolicy.parse("reminder:1,retry:3,reminder:7,uncollectible:30", 4)


def test_a_retry_by_hand_asks_the_provider_once_per_failed_attempt(app: BillingApplication, clock: ManualClock) -> None:
    invoice_id = open_invoice(app)
    clock.set(datetime(2026, 3, 5, 9, tzinfo=UTC))  # before the due date: no dunning yet
    fail_attempt(app, invoice_id, "ch_first")
    payments = FakePaymentProvider(answers={"pi_1": ["declined"]})

    done = app.dunning.retry_by_hand(invoice_id, policy=POLICY, payments=payments).result

    assert (done.kind, done.reason) == ("retry", "pi_1: declined")
    assert payments.attempts == [("pi_1", retry_by_hand_key(invoice_id, 1))]
    assert dunning_topics(app, invoice_id) == ["dunning.started", "dunning.retried-by-hand"]
    with pytest.raises(DunningStateError, match="asked for already"):
        app.dunning.retry_by_hand(invoice_id, policy=POLICY, payments=payments)
    assert len(payments.attempts) == 1

    fail_attempt(app, invoice_id, "ch_second")  # the declined retry, as its webhook reports it
    again = app.dunning.retry_by_hand(invoice_id, policy=POLICY, payments=payments).result

    assert again.reason == "pi_1: succeeded"
    assert payments.attempts[-1] == ("pi_1", retry_by_hand_key(invoice_id, 2))


def test_hand_steps_leave_the_schedule_as_it_was(app: BillingApplication, clock: ManualClock) -> None:
    invoice_id = open_invoice(app)
    fail_attempt(app, invoice_id, "ch_first")
    days_after_due(clock, 0)
    app.dunning.remind_by_hand(invoice_id, policy=POLICY)
    app.dunning.retry_by_hand(invoice_id, policy=POLICY, payments=FakePaymentProvider(default="processing"))

    days_after_due(clock, 1)
    actions = app.dunning.advance(invoice_id, policy=POLICY).result

    assert [(a.kind, a.step) for a in actions] == [("remind", 0)]
    dunning = app.dunning.get(invoice_id)
    assert dunning is not None
    assert (dunning.settled, dunning.retries, dunning.reminders) == (1, 0, 2)


def test_nothing_is_stored_when_the_provider_cannot_retry(app: BillingApplication) -> None:
    invoice_id = open_invoice(app, due_date=None)
    with pytest.raises(DunningStateError, match="nothing to dun"):
        app.dunning.remind_by_hand(invoice_id, policy=POLICY)
    fail_attempt(app, invoice_id, "ch_first")
    with pytest.raises(DunningStateError, match="no payment provider"):
        app.dunning.retry_by_hand(invoice_id, policy=POLICY, payments=None)
    with pytest.raises(DunningStateError, match="succeeded at the provider"):
        app.dunning.retry_by_hand(invoice_id, policy=POLICY, payments=FakePaymentProvider(default="settled"))
    assert app.dunning.get(invoice_id) is None

    app.void(invoice_id)
    assert app.invoice(invoice_id).status == VOID
    with pytest.raises(InvoiceNotOpenError):
        app.dunning.remind_by_hand(invoice_id, policy=POLICY)
