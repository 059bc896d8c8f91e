"""The Dunning aggregate: the collection of one unpaid invoice, step by step, as events.

One per invoice, with a deterministic id (`dunning_id_for`, uuid5 of the invoice id): two
passes that start the dunning of the same invoice at once collide, and one of them decides
again from what the other stored. It is started when the invoice is first overdue, keeps the
policy in force at that moment (a changed configuration applies to dunnings started later),
and records every step taken: reminders requested (for the mailer to send), payment retries
requested (with the provider's answer), steps skipped, then either `exhausted` (the invoice
was marked uncollectible in the same transaction) or `stopped` (the invoice was paid, voided
or marked uncollectible by hand). What to do next is decided by ledger.dunning.plan.

Events carry plain JSON values only; `as_of` is the moment the pass planned for (it may be
earlier than the event's timestamp when a pass is re-run for a past moment).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from ledger.dunning.plan import Progress
from ledger.dunning.policy import DunningPolicy
from ledger.errors import DunningStateError

ACTIVE = "active"
EXHAUSTED = "exhausted"
STOPPED = "stopped"

_DUNNING_NAMESPACE = UUID("2f6b3c1e-7d4a-4c8b-9e15-5a0d3b7c9e21")


def dunning_id_for(invoice_id: UUID) -> UUID:
    """An invoice has one dunning: its id is derived from the invoice's."""
    return uuid5(_DUNNING_NAMESPACE, str(invoice_id))


def retry_key(invoice_id: UUID, step: int) -> str:
    """The provider idempotency key of one retry step: a repeat of the step is the same request."""
    return f"dunning-{invoice_id}-step-{step}"


def retry_by_hand_key(invoice_id: UUID, failed_attempts: int) -> str:
    """The provider idempotency key of a retry asked for by hand: one per failed attempt, so a
    second click before the provider's answer has reached the ledger is the same request."""
    return f"dunning-{invoice_id}-by-hand-after-{failed_attempts}"


class Dunning(Aggregate):
    TOPIC = "dunning"

    class Event(Aggregate.Event):
        pass

    class Started(Event, Aggregate.Created):
        TOPIC = "dunning.started"
        invoice_id: str
        anchor: str  # YYYY-MM-DD: the schedule's days count from here
        schedule: list[dict[str, Any]]  # [{"action": "reminder", "days": 1}, ...]
        max_attempts: int
        as_of: str

    Created = Started

    class ReminderRequested(Event):
        """Ask the customer to pay: the mail triggers (commands/mail/triggers.py) email each one."""

        TOPIC = "dunning.reminder-requested"
        step: int
        days: int
        reason: str  # "scheduled", "nothing to retry", "retries used up", or the provider's reason
        amount_due: int
        currency: str
        as_of: str

        def apply(self, aggregate: Dunning) -> None:
            aggregate.settled = self.step + 1
            aggregate.reminders += 1

    class RetryRequested(Event):
        TOPIC = "dunning.retry-requested"
        step: int
        days: int
        payment_id: str
        provider_payment_id: str
        idempotency_key: str
        outcome: str  # the provider's answer: "declined", or its status after the attempt
        detail: str
        as_of: str

        def apply(self, aggregate: Dunning) -> None:
            aggregate.settled = self.step + 1
            aggregate.retries += 1

    class RetriedByHand(Event):
        """A person asked the provider to charge the failed payment again, outside the schedule.

        It settles no schedule step and counts in no scheduled retry: the failed attempts it
        may add are bounded by `max_attempts` like any other. One per failed attempt
        (`failed_attempts`: how many the invoice had when it was asked)."""

        TOPIC = "dunning.retried-by-hand"
        payment_id: str
        provider_payment_id: str
        idempotency_key: str
        failed_attempts: int
        outcome: str  # the provider's answer: "declined", or its status after the attempt
        detail: str
        as_of: str

        def apply(self, aggregate: Dunning) -> None:
            aggregate.retried_by_hand_after = self.failed_attempts

    class RemindedByHand(Event):
        """A person asked for a reminder now, outside the schedule (for the mailer, like the rest)."""

        TOPIC = "dunning.reminded-by-hand"
        amount_due: int
        currency: str
        as_of: str

        def apply(self, aggregate: Dunning) -> None:
            aggregate.reminders += 1

    class StepSkipped(Event):
        TOPIC = "dunning.step-skipped"
        step: int
        action: str
        days: int
        reason: str
        as_of: str

        def apply(self, aggregate: Dunning) -> None:
            aggregate.settled = self.step + 1

    class Exhausted(Event):
        """Collection gave up: the invoice was marked uncollectible in the same transaction."""

        TOPIC = "dunning.exhausted"
        reason: str  # "schedule" or "max-attempts"
        step: int | None
        failed_attempts: int
        as_of: str

        def apply(self, aggregate: Dunning) -> None:
            aggregate.status = EXHAUSTED
            if self.step is not None:
                aggregate.settled = self.step + 1

    class Stopped(Event):
        TOPIC = "dunning.stopped"
        reason: str  # e.g. "invoice paid"
        as_of: str

        def apply(self, aggregate: Dunning) -> None:
            aggregate.status = STOPPED

    def __init__(
        self, invoice_id: str, anchor: str, schedule: list[dict[str, Any]], max_attempts: int, as_of: str
    ) -> None:
        self.invoice_id = invoice_id
        self.anchor = anchor
        self.schedule = [dict(step) for step in schedule]
        self.max_attempts = max_attempts
        self.status = ACTIVE
        self.settled = 0
        self.retries = 0
        self.reminders = 0
        self.retried_by_hand_after: int | None = None  # failed attempts when last retried by hand

    # ----------------------------------------------------------------------------- commands

    @classmethod
    def start(cls, *, invoice_id: UUID, anchor: date, policy: DunningPolicy, as_of: datetime, at: datetime) -> Dunning:
        return cls._create(
            cls.Started,
            id=dunning_id_for(invoice_id),
            timestamp=at,
            invoice_id=str(invoice_id),
            anchor=anchor.isoformat(),
            schedule=policy.schedule_state(),
            max_attempts=policy.max_attempts,
            as_of=as_of.isoformat(),
        )

    def request_reminder(
        self, *, step: int, reason: str, amount_due: int, currency: str, as_of: datetime, at: datetime
    ) -> None:
        self._require_next(step)
        self.trigger_event(
            self.ReminderRequested,
            timestamp=at,
            step=step,
            days=self.policy.steps[step].days,
            reason=reason,
            amount_due=amount_due,
            currency=currency,
            as_of=as_of.isoformat(),
        )

    def request_retry(
        self,
        *,
        step: int,
        payment_id: str,
        provider_payment_id: str,
        outcome: str,
        detail: str,
        as_of: datetime,
        at: datetime,
    ) -> None:
        self._require_next(step)
        if self.retries >= self.policy.max_retries:
            raise DunningStateError(self.id, f"all {self.policy.max_retries} retries were requested already")
        self.trigger_event(
            self.RetryRequested,
            timestamp=at,
            step=step,
            days=self.policy.steps[step].days,
            payment_id=payment_id,
            provider_payment_id=provider_payment_id,
            idempotency_key=retry_key(UUID(self.invoice_id), step),
            outcome=outcome,
            detail=detail[:1000],
            as_of=as_of.isoformat(),
        )

    def retry_by_hand(
        self,
        *,
        payment_id: str,
        provider_payment_id: str,
        failed_attempts: int,
        outcome: str,
        detail: str,
        as_of: datetime,
        at: datetime,
    ) -> None:
        self.require_retry_by_hand(failed_attempts)
        self.trigger_event(
            self.RetriedByHand,
            timestamp=at,
            payment_id=payment_id,
            provider_payment_id=provider_payment_id,
            idempotency_key=retry_by_hand_key(UUID(self.invoice_id), failed_attempts),
            failed_attempts=failed_attempts,
            outcome=outcome,
            detail=detail[:1000],
            as_of=as_of.isoformat(),
        )

    def require_retry_by_hand(self, failed_attempts: int) -> None:
        """Refuse before the provider is asked: a finished dunning, or a failed attempt retried already."""
        self._require_active()
        if self.retried_by_hand_after == failed_attempts:
            raise DunningStateError(
                self.id,
                f"a retry after failed attempt {failed_attempts} was asked for already: "
                "its outcome reaches the invoice when the provider reports it",
            )

    def remind_by_hand(self, *, amount_due: int, currency: str, as_of: datetime, at: datetime) -> None:
        self._require_active()
        self.trigger_event(
            self.RemindedByHand, timestamp=at, amount_due=amount_due, currency=currency, as_of=as_of.isoformat()
        )

    def skip(self, *, step: int, reason: str, as_of: datetime, at: datetime) -> None:
        self._require_next(step)
        scheduled = self.policy.steps[step]
        self.trigger_event(
            self.StepSkipped,
            timestamp=at,
            step=step,
            action=scheduled.action,
            days=scheduled.days,
            reason=reason,
            as_of=as_of.isoformat(),
        )

    def exhaust(self, *, reason: str, step: int | None, failed_attempts: int, as_of: datetime, at: datetime) -> None:
        self._require_active()
        if step is not None:
            self._require_next(step)
        self.trigger_event(
            self.Exhausted,
            timestamp=at,
            reason=reason,
            step=step,
            failed_attempts=failed_attempts,
            as_of=as_of.isoformat(),
        )

    def stop(self, *, reason: str, as_of: datetime, at: datetime) -> None:
        self._require_active()
        self.trigger_event(self.Stopped, timestamp=at, reason=reason, as_of=as_of.isoformat())

    # ----------------------------------------------------------------------------- queries

    @property
    def policy(self) -> DunningPolicy:
        return DunningPolicy.from_state(self.schedule, self.max_attempts)

    @property
    def progress(self) -> Progress:
        return Progress(
            anchor=date.fromisoformat(self.anchor),
            policy=self.policy,
            settled=self.settled,
            retries=self.retries,
            finished=self.status != ACTIVE,
        )

    def _require_active(self) -> None:
        if self.status != ACTIVE:
            raise DunningStateError(self.id, f"the dunning is {self.status}")

    def _require_next(self, step: int) -> None:
        """Steps are settled once each, in the schedule's order."""
        self._require_active()
        if step != self.settled or step >= len(self.schedule):
            raise DunningStateError(self.id, f"step {step} is not the next one (next: {self.settled})")
