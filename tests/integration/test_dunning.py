"""Dunning on the real backends: the schedule followed step by step, as events, exactly once."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

import pytest
from sqlalchemy import Engine

from adapters.clock import ManualClock
from commands.application import BillingApplication
from commands.dunning import DunningAction
from commands.messages import NewLine
from ledger.dunning.aggregate import EXHAUSTED, STOPPED, Dunning, retry_key
from ledger.dunning.policy import DunningPolicy
from ledger.errors import InvalidDateError, InvoiceNotFoundError, ProviderUnavailableError
from ledger.invoices import OPEN, PAID, UNCOLLECTIBLE, Invoice
from ledger.money import Money
from projections.overdue import dunning_candidates
from projections.runner import ProjectionRunner
from tests.conftest import AppFactory
from tests.fake_payments import FakePaymentProvider

POLICY = DunningPolicy.parse("reminder:1,retry:3,reminder:7,retry:14,uncollectible:30", 4)
DUE = "2026-03-10"


def open_invoice(app: BillingApplication, *, due_date: str | None = DUE, amount: int = 12_000) -> UUID:
    invoice_id = app.create_draft(
        customer={"email": "ap@example.com", "name": "Example Ltd"},
        currency="usd",
        lines=[NewLine(description="Consulting", quantity=1, unit_amount=amount)],
        due_date=due_date,
    ).result
    app.issue(invoice_id)
    return invoice_id


def fail_attempt(app: BillingApplication, invoice_id: UUID, attempt: str, intent: str = "pi_1") -> None:
    """What the webhook records when Stripe reports a declined charge."""
    app.record_provider_payment_failed(
        provider="stripe",
        provider_payment_id=intent,
        attempt_id=attempt,
        code="insufficient_funds",
        message="Your card has insufficient funds.",
        invoice_id=invoice_id,
        amount=Money(app.invoice(invoice_id).amount_due, "usd"),
    )


def days_after_due(clock: ManualClock, days: int) -> datetime:
    moment = datetime(2026, 3, 10, 9, tzinfo=UTC) + timedelta(days=days)
    clock.set(moment)
    return moment


def kinds(actions: list[DunningAction]) -> list[tuple[str, int | None]]:
    return [(a.kind, a.step) for a in actions]


def dunning_topics(app: BillingApplication, invoice_id: UUID) -> list[str]:
    dunning = app.dunning.get(invoice_id)
    assert dunning is not None
    return [type(e).TOPIC for e in app.repository.event_store.get(dunning.id)]  # type: ignore[attr-defined]


def test_an_overdue_invoice_follows_the_schedule_to_uncollectible_once(
    app: BillingApplication, clock: ManualClock
) -> None:
    invoice_id = open_invoice(app)
    fail_attempt(app, invoice_id, "ch_first")
    payments = FakePaymentProvider(answers={"pi_1": ["declined", "declined"]})
    taken: list[tuple[str, int | None]] = []
    for day in range(0, 35):
        days_after_due(clock, day)
        actions = app.dunning.advance(invoice_id, policy=POLICY, payments=payments).result
        head = app.head()
        assert app.dunning.advance(invoice_id, policy=POLICY, payments=payments).result == []  # the same moment again
        assert app.head() == head
        taken += kinds(actions)
        if any(a.kind == "retry" for a in actions):  # Stripe reports the declined retry by webhook
            fail_attempt(app, invoice_id, f"ch_retry_{day}")

    assert taken == [("start", None), ("remind", 0), ("retry", 1), ("remind", 2), ("retry", 3), ("exhaust", 4)]
    assert payments.attempts == [("pi_1", retry_key(invoice_id, 1)), ("pi_1", retry_key(invoice_id, 3))]
    invoice = app.invoice(invoice_id)
    assert invoice.status == UNCOLLECTIBLE
    assert invoice.written_off == 12_000
    assert len(invoice.failed_attempts) == 3  # the first, then two declined retries...
    dunning = app.dunning.get(invoice_id)
    assert dunning is not None
    assert dunning.status == EXHAUSTED
    assert dunning_topics(app, invoice_id) == [
        "dunning.started",
        "dunning.reminder-requested",
        "dunning.retry-requested",
        "dunning.reminder-requested",
        "dunning.retry-requested",
        "dunning.exhausted",
    ]
    marked = [e for e in app.invoice_history(invoice_id) if isinstance(e, Invoice.MarkedUncollectible)]
    assert len(marked) == 1
    exhausted = list(app.repository.event_store.get(dunning.id))[-1]
    assert isinstance(exhausted, Dunning.Exhausted)
    assert exhausted.timestamp == marked[0].timestamp  # one transaction
    # ...and the fourth failure would have exhausted it anyway: the schedule ran out first, on day 30.
    assert (exhausted.reason, exhausted.step, exhausted.failed_attempts) == ("schedule", 4, 3)


def test_a_retry_records_what_the_provider_answered(app: BillingApplication, clock: ManualClock) -> None:
    invoice_id = open_invoice(app)
    fail_attempt(app, invoice_id, "ch_first")
    payments = FakePaymentProvider(answers={"pi_1": ["declined"]})
    days_after_due(clock, 3)
    assert kinds(app.dunning.advance(invoice_id, policy=POLICY, payments=payments).result) == [
        ("start", None),
        ("skip", 0),
        ("retry", 1),
    ]
    dunning = app.dunning.get(invoice_id)
    assert dunning is not None
    [retry] = [e for e in app.repository.event_store.get(dunning.id) if isinstance(e, Dunning.RetryRequested)]
    assert retry.provider_payment_id == "pi_1"
    assert retry.payment_id == str(app.provider_payment("stripe", "pi_1").id)
    assert retry.outcome == "declined"
    assert "insufficient funds" in retry.detail
    assert retry.idempotency_key == retry_key(invoice_id, 1)
    assert retry.as_of == clock.now().isoformat()


def test_more_failed_attempts_than_allowed_mark_the_invoice_uncollectible(
    app: BillingApplication, clock: ManualClock
) -> None:
    invoice_id = open_invoice(app)
    policy = DunningPolicy.parse("reminder:1,retry:3,uncollectible:30", 2)
    fail_attempt(app, invoice_id, "ch_1")
    days_after_due(clock, 1)
    assert kinds(app.dunning.advance(invoice_id, policy=policy).result) == [("start", None), ("remind", 0)]
    fail_attempt(app, invoice_id, "ch_2")  # the customer tried again themselves
    days_after_due(clock, 2)
    assert kinds(app.dunning.advance(invoice_id, policy=policy).result) == [("exhaust", None)]
    assert app.invoice(invoice_id).status == UNCOLLECTIBLE
    days_after_due(clock, 40)
    assert app.dunning.advance(invoice_id, policy=policy).result == []


def test_a_paid_invoice_stops_its_dunning(app: BillingApplication, clock: ManualClock) -> None:
    invoice_id = open_invoice(app)
    fail_attempt(app, invoice_id, "ch_1")
    payments = FakePaymentProvider()
    days_after_due(clock, 1)
    app.dunning.advance(invoice_id, policy=POLICY, payments=payments)
    app.record_offline_payment(invoice_id, Money(12_000, "usd"), reference="wire 42")
    assert app.invoice(invoice_id).status == PAID
    days_after_due(clock, 3)
    assert kinds(app.dunning.advance(invoice_id, policy=POLICY, payments=payments).result) == [("stop", None)]
    for day in (4, 14, 40):
        days_after_due(clock, day)
        assert app.dunning.advance(invoice_id, policy=POLICY, payments=payments).result == []
    assert payments.attempts == []
    dunning = app.dunning.get(invoice_id)
    assert dunning is not None
    assert dunning.status == STOPPED
    assert dunning_topics(app, invoice_id)[-1] == "dunning.stopped"


def test_a_void_invoice_stops_its_dunning(app: BillingApplication, clock: ManualClock) -> None:
    invoice_id = open_invoice(app)
    days_after_due(clock, 1)
    app.dunning.advance(invoice_id, policy=POLICY)
    app.void(invoice_id)
    days_after_due(clock, 7)
    [stop] = app.dunning.advance(invoice_id, policy=POLICY).result
    assert (stop.kind, stop.reason) == ("stop", "invoice void")


def test_a_retry_with_nothing_to_retry_becomes_a_reminder(app: BillingApplication, clock: ManualClock) -> None:
    invoice_id = open_invoice(app)  # sent for payment by transfer: no PaymentIntent ever failed
    payments = FakePaymentProvider()
    days_after_due(clock, 1)
    app.dunning.advance(invoice_id, policy=POLICY, payments=payments)
    days_after_due(clock, 3)
    [reminder] = app.dunning.advance(invoice_id, policy=POLICY, payments=payments).result
    assert (reminder.kind, reminder.step, reminder.reason) == ("remind", 1, "nothing to retry")
    assert payments.attempts == []


def test_a_retry_the_provider_cannot_make_becomes_a_reminder(app: BillingApplication, clock: ManualClock) -> None:
    invoice_id = open_invoice(app)
    fail_attempt(app, invoice_id, "ch_1")
    days_after_due(clock, 3)
    no_provider = app.dunning.advance(invoice_id, policy=POLICY, payments=None).result
    assert no_provider[-1] == DunningAction("remind", 1, "no payment provider configured")
    days_after_due(clock, 14)
    canceled = FakePaymentProvider(answers={"pi_1": ["not_retryable"]})
    [skipped, reminder] = app.dunning.advance(invoice_id, policy=POLICY, payments=canceled).result
    assert skipped.kind == "skip"
    assert (reminder.kind, reminder.step, reminder.reason) == ("remind", 3, "nothing to retry: canceled")


def test_an_unreachable_provider_stores_nothing_and_the_next_pass_asks_again_with_the_same_key(
    app: BillingApplication, clock: ManualClock
) -> None:
    invoice_id = open_invoice(app)
    fail_attempt(app, invoice_id, "ch_1")
    payments = FakePaymentProvider(unavailable=1)
    days_after_due(clock, 3)
    head = app.head()
    with pytest.raises(ProviderUnavailableError):
        app.dunning.advance(invoice_id, policy=POLICY, payments=payments)
    assert app.head() == head
    assert app.dunning.get(invoice_id) is None
    actions = app.dunning.advance(invoice_id, policy=POLICY, payments=payments).result
    assert kinds(actions)[-1] == ("retry", 1)
    assert payments.attempts == [("pi_1", retry_key(invoice_id, 1))]


def test_an_invoice_not_yet_due_has_no_dunning(app: BillingApplication, clock: ManualClock) -> None:
    invoice_id = open_invoice(app)
    days_after_due(clock, 0)
    assert app.dunning.advance(invoice_id, policy=POLICY).result == []
    assert app.dunning.get(invoice_id) is None
    assert app.invoice(invoice_id).status == OPEN


def test_the_moment_can_be_past_but_never_future(app: BillingApplication, clock: ManualClock) -> None:
    invoice_id = open_invoice(app)
    days_after_due(clock, 20)
    with pytest.raises(InvalidDateError, match="cannot run dunning for"):
        app.dunning.advance(invoice_id, policy=POLICY, as_of=clock.now() + timedelta(seconds=1))
    with pytest.raises(InvalidDateError, match="timezone"):
        app.dunning.advance(invoice_id, policy=POLICY, as_of=datetime(2026, 3, 12))
    assert app.dunning.get(invoice_id) is None
    past = datetime(2026, 3, 11, 12, tzinfo=UTC)
    assert kinds(app.dunning.advance(invoice_id, policy=POLICY, as_of=past).result) == [("start", None), ("remind", 0)]
    assert app.dunning.advance(invoice_id, policy=POLICY, as_of=past).result == []
    with pytest.raises(InvoiceNotFoundError):
        app.dunning.advance(UUID(int=0), policy=POLICY)


def test_concurrent_passes_take_each_step_once(make_app: AppFactory, clock: ManualClock) -> None:
    first = make_app()
    invoice_id = open_invoice(first)
    days_after_due(clock, 1)
    apps = [first, make_app(), make_app()]
    barrier = threading.Barrier(len(apps))
    done: list[list[DunningAction]] = []
    errors: list[BaseException] = []

    def run(app: BillingApplication) -> None:
        barrier.wait()
        try:
            done.append(app.dunning.advance(invoice_id, policy=POLICY).result)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(app,)) for app in apps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(kinds([action for actions in done for action in actions])) == [("remind", 0), ("start", None)]
    assert dunning_topics(first, invoice_id) == ["dunning.started", "dunning.reminder-requested"]


def test_the_candidates_are_overdue_open_invoices_and_recently_closed_ones(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    overdue = open_invoice(app, due_date="2026-03-01")
    not_yet_due = open_invoice(app, due_date="2026-03-20")
    due_today = open_invoice(app, due_date="2026-03-10")
    no_due_date_failed = open_invoice(app, due_date=None)
    fail_attempt(app, no_due_date_failed, "ch_9", intent="pi_9")
    open_invoice(app, due_date=None)  # never attempted: nothing to dun
    recently_paid = open_invoice(app, due_date="2026-03-05")
    app.record_offline_payment(recently_paid, Money(12_000, "usd"), reference="wire 1")
    long_paid = open_invoice(app, due_date="2025-12-01")
    app.record_offline_payment(long_paid, Money(12_000, "usd"), reference="wire 2")
    app.create_draft(customer={"email": "d@example.com"}, currency="usd", due_date="2026-01-01")
    runner.catch_up()

    found = dunning_candidates(engine, today=date(2026, 3, 10), lookback_days=30)
    assert set(found) == {str(overdue), str(no_due_date_failed), str(recently_paid)}
    assert found[0] == str(overdue)  # oldest due first
    assert str(not_yet_due) not in found
    assert str(due_today) not in found
