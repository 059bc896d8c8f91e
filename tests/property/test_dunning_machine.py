"""Dunning as a hypothesis state machine: any policy, any order of days, failures, payments and
passes, through BillingApplication on the in-memory store with a fake payment provider.

After every step:
- never more retries requested than `max_attempts - 1`;
- no reminder, retry, skip or exhaustion after the invoice was paid, voided or marked
  uncollectible by hand (in log order), and the dunning starts once and finishes at most once,
  last;
- steps are settled once each, in the schedule's order;
- the invoice is marked uncollectible at most once, and by an exhausted dunning exactly once;
- a pass run twice at one moment: the second stores nothing;
- a pass on or after the schedule's last day, or with `max_attempts` failures, leaves no open
  invoice behind (the schedule always ends).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from adapters.clock import ManualClock
from commands.application import BillingApplication
from commands.messages import NewLine
from ledger.dunning.aggregate import Dunning
from ledger.dunning.policy import REMINDER, RETRY, UNCOLLECTIBLE, DunningPolicy, Step
from ledger.invoices import OPEN, Invoice
from ledger.money import Money
from tests.fake_payments import FakePaymentProvider

DUE = date(2026, 3, 10)
START = datetime(2026, 3, 10, 9, tzinfo=UTC)  # the due date: not overdue yet
AMOUNT = 25_000
INTENT = "pi_machine"
ANSWERS = ("succeeded", "declined", "processing", "not_retryable", "settled")


@st.composite
def policies(draw: st.DrawFn) -> DunningPolicy:
    days = sorted(draw(st.lists(st.integers(1, 12), min_size=1, max_size=6)))
    steps = [Step(draw(st.sampled_from([REMINDER, RETRY, RETRY])), d) for d in days]
    if draw(st.booleans()):
        steps.append(Step(UNCOLLECTIBLE, days[-1] + draw(st.integers(0, 10))))
    return DunningPolicy(tuple(steps), draw(st.integers(1, 5)))


class DunningMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock(START)
        self.app = BillingApplication(clock=self.clock, env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
        self.payments = FakePaymentProvider()
        self.attempts = 0
        self.meddling = False
        self.unreported: list[str] = []  # outcomes of retries the provider made, not yet reported by webhook

    def teardown(self) -> None:
        self.app.close()

    @initialize(policy=policies(), failed_first=st.booleans(), default=st.sampled_from(ANSWERS), meddling=st.booleans())
    def an_issued_invoice(self, policy: DunningPolicy, failed_first: bool, default: str, meddling: bool) -> None:
        """`meddling`: the customer and the finance team act too (their own attempts, payments, voids)."""
        self.policy = policy
        self.payments.default = default
        self.meddling = meddling
        self.invoice_id = self.app.create_draft(
            customer={"email": "ap@example.com", "name": "Example"},
            currency="usd",
            lines=[NewLine(description="Plan", quantity=1, unit_amount=AMOUNT)],
            due_date=DUE.isoformat(),
        ).result
        self.app.issue(self.invoice_id)
        if failed_first:
            self.customer_attempt_fails()

    # ------------------------------------------------------------------------------ the world

    @rule(days=st.integers(1, 4), hours=st.integers(0, 23))
    def time_passes(self, days: int, hours: int) -> None:
        self.clock.advance(timedelta(days=days, hours=hours))

    @precondition(lambda self: self.meddling and self.status == OPEN)
    @rule()
    def customer_attempt_fails(self) -> None:
        self.attempts += 1
        self._fail(f"ch_customer_{self.attempts}")

    @rule(answer=st.sampled_from(ANSWERS))
    def provider_will_answer(self, answer: str) -> None:
        self.payments.answers.setdefault(INTENT, []).append(answer)

    @precondition(lambda self: bool(self.unreported))
    @rule()
    def webhook_reports_a_retry(self) -> None:
        outcome = self.unreported.pop(0)
        self.attempts += 1
        if outcome == "declined":
            self._fail(f"ch_retry_{self.attempts}")
        elif outcome == "succeeded" and self.status == OPEN:
            self.app.record_provider_payment_succeeded(
                provider="stripe", provider_payment_id=INTENT, amount_captured=Money(AMOUNT, "usd")
            )

    @precondition(lambda self: self.meddling and self.status == OPEN)
    @rule(how=st.sampled_from(["paid by transfer", "voided", "written off by hand"]))
    def closed_outside_dunning(self, how: str) -> None:
        if how == "paid by transfer":
            self.app.record_offline_payment(self.invoice_id, Money(AMOUNT, "usd"), reference="wire")
        elif how == "voided":
            self.app.void(self.invoice_id)
        else:
            self.app.mark_uncollectible(self.invoice_id)

    # ------------------------------------------------------------------------------ the pass

    @rule(days_later=st.integers(0, 4))
    def a_dunning_pass(self, days_later: int) -> None:
        self.clock.advance(timedelta(days=days_later))
        today = self.clock.now().date()
        before = self.app.invoice(self.invoice_id)
        attempts_before = len(self.payments.attempts)
        actions = self.app.dunning.advance(self.invoice_id, policy=self.policy, payments=self.payments).result
        head = self.app.head()
        assert self.app.dunning.advance(self.invoice_id, policy=self.policy, payments=self.payments).result == []
        assert self.app.head() == head
        asked = [
            a
            for a in actions
            if a.kind == "retry"
            or (a.kind == "remind" and a.reason.startswith("nothing to retry: "))
            or (a.kind == "skip" and a.reason.startswith("payment "))
        ]
        assert len(self.payments.attempts) - attempts_before == len(asked)
        self.unreported += [self._outcome(a.reason) for a in actions if a.kind == "retry"]
        if before.status == OPEN and today > DUE:
            policy = self._dunning_policy()
            if today >= DUE + timedelta(days=policy.span_days) or len(before.failed_attempts) >= policy.max_attempts:
                assert self.status != OPEN, f"the schedule ended but the invoice is open: {actions}"

    # ------------------------------------------------------------------------------ invariants

    @invariant()
    def the_dunning_keeps_its_rules(self) -> None:
        if not hasattr(self, "invoice_id"):
            return
        dunning = self.app.dunning.get(self.invoice_id)
        log = [event for _, event in self.app.events_after(0, 100_000)]
        ours = [e for e in log if isinstance(e, Dunning.Event)]
        if dunning is None:
            assert ours == []
            return
        policy = dunning.policy
        assert sum(isinstance(e, Dunning.RetryRequested) for e in ours) <= policy.max_attempts - 1
        assert isinstance(ours[0], Dunning.Started)
        assert sum(isinstance(e, Dunning.Started) for e in ours) == 1
        finals = [i for i, e in enumerate(ours) if isinstance(e, Dunning.Exhausted | Dunning.Stopped)]
        assert finals in ([], [len(ours) - 1])
        steps = [e.step for e in ours if _is_step(e) and getattr(e, "step", None) is not None]
        assert steps == sorted(set(steps))
        assert all(0 <= s < len(policy.steps) for s in steps)

        marked = [e for e in log if isinstance(e, Invoice.MarkedUncollectible)]
        exhausted = [e for e in ours if isinstance(e, Dunning.Exhausted)]
        assert len(marked) <= 1
        assert len(exhausted) <= 1
        if exhausted:
            assert len(marked) == 1
            assert exhausted[0].timestamp == marked[0].timestamp

        left_open = _first(log, lambda e: _closes(e, exhausted))
        if left_open is not None:
            assert not any(_is_step(e) for e in log[left_open:]), "a dunning step after the invoice was closed"

    @property
    def status(self) -> str:
        return self.app.invoice(self.invoice_id).status

    def _dunning_policy(self) -> DunningPolicy:
        dunning = self.app.dunning.get(self.invoice_id)
        return self.policy if dunning is None else dunning.policy

    def _fail(self, attempt: str) -> None:
        self.app.record_provider_payment_failed(
            provider="stripe",
            provider_payment_id=INTENT,
            attempt_id=attempt,
            code="card_declined",
            message="Declined",
            invoice_id=self.invoice_id,
            amount=Money(AMOUNT, "usd"),
        )

    @staticmethod
    def _outcome(reason: str) -> str:
        return reason.rsplit(": ", 1)[-1]


def _is_step(event: Any) -> bool:
    return isinstance(
        event, Dunning.ReminderRequested | Dunning.RetryRequested | Dunning.StepSkipped | Dunning.Exhausted
    )


def _closes(event: Any, exhausted: list[Dunning.Exhausted]) -> bool:
    """An invoice event that ends its collection other than by the dunning's own exhaustion."""
    if isinstance(event, Invoice.Paid | Invoice.Voided):
        return True
    if isinstance(event, Invoice.MarkedUncollectible):
        return not exhausted or event.timestamp != exhausted[0].timestamp
    return False


def _first(events: list[Any], test: Any) -> int | None:
    return next((i for i, e in enumerate(events) if test(e)), None)


def test_dunning_keeps_its_rules_whatever_happens() -> None:
    run_state_machine_as_test(DunningMachine, settings=settings(max_examples=200, stateful_step_count=40))


def test_the_machine_can_catch_a_dunning_step_after_payment() -> None:
    """The step-after-close check is not vacuous: a reminder after the invoice was paid is caught."""
    paid = Invoice.Paid(originator_id=UUID(int=1), originator_version=5, timestamp=START, amount_paid=1)
    reminder = Dunning.ReminderRequested(
        originator_id=UUID(int=2),
        originator_version=2,
        timestamp=START,
        step=0,
        days=1,
        reason="scheduled",
        amount_due=1,
        currency="usd",
        as_of=START.isoformat(),
    )
    log = [paid, reminder]
    left_open = _first(log, lambda e: _closes(e, []))
    assert left_open == 0
    assert any(_is_step(e) for e in log[left_open:])
