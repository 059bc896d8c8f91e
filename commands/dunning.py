"""Dunning commands: advance the collection of one unpaid invoice, in one transaction.

`app.dunning.advance` loads the invoice and its Dunning aggregate, asks ledger.dunning.plan
what is due at the pass's moment, carries it out and saves every event (the dunning's steps, and the
invoice's `marked-uncollectible` when collection gives up) atomically. Run twice for the same
moment, the second run finds nothing due and stores nothing.

A retry step asks the payment provider to charge the invoice's failed payment again, with an
idempotency key derived from the invoice and the step (`ledger.dunning.aggregate.retry_key`):
if the save fails after the provider was asked, or two passes race, the next attempt of the step
makes the same request and gets the same answer, never a second charge. The provider being
unreachable stores nothing; the step stays due for the next pass. The failed attempt a
declined retry makes is recorded on the invoice when the provider reports it (the webhook),
like any other failed attempt.

A person may also act outside the schedule (the dashboard's "retry now" and "send reminder"):
`retry_by_hand` asks the provider at once, with a key of its own per failed attempt
(`retry_by_hand_key`), and records `dunning.retried-by-hand`; `remind_by_hand` records
`dunning.reminded-by-hand`. Neither settles a schedule step. An invoice whose dunning has not
started yet (not overdue) gets it started first, with the policy in force, so that these
requests are kept with the rest of its collection.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from commands.ports import NOT_RETRYABLE, SETTLED, PaymentProvider
from commands.runner import CommandRunner, Decision, Outcome
from ledger.dunning.aggregate import Dunning, dunning_id_for, retry_by_hand_key, retry_key
from ledger.dunning.plan import (
    EXHAUST,
    NOTHING_TO_RETRY,
    REMIND,
    RETRY_PAYMENT,
    SKIP,
    START,
    STOP,
    InvoiceFacts,
    Planned,
    anchor_of,
    plan,
)
from ledger.dunning.policy import DunningPolicy
from ledger.errors import (
    DunningStateError,
    InvalidDateError,
    InvoiceNotOpenError,
    PaymentDeclinedError,
    StaleVersionError,
)
from ledger.invoices import OPEN, Invoice
from ledger.payments import FAILED, OFFLINE, Payment

T = TypeVar("T", bound=Aggregate)

NO_PROVIDER = "no payment provider configured"
DECLINED = "declined"


@dataclass(frozen=True)
class DunningAction:
    """One thing a dunning pass did for an invoice."""

    kind: str  # "start", "skip", "remind", "retry", "exhaust" or "stop"
    step: int | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "step": self.step, "reason": self.reason}


class DunningCommands:
    """The dunning commands and reads, run on the application's command runner."""

    def __init__(self, runner: CommandRunner) -> None:
        self._runner = runner

    def advance(
        self,
        invoice_id: UUID,
        *,
        policy: DunningPolicy,
        payments: PaymentProvider | None = None,
        as_of: datetime | None = None,
    ) -> Outcome[list[DunningAction]]:
        """Take the dunning steps due for the invoice at `as_of` (default: now), in one transaction.

        `as_of` may be in the past (a pass re-run for a moment it missed), never in the future.
        Without `payments`, retries become reminders.
        """
        if as_of is not None and as_of.tzinfo is None:
            raise InvalidDateError("the dunning moment needs a timezone, e.g. 2026-04-01T09:00:00Z", field="at")

        def decide(at: datetime) -> Decision:
            moment = at if as_of is None else as_of
            if moment > at:
                raise InvalidDateError(
                    f"cannot run dunning for {moment.isoformat()}: it is only {at.isoformat()}", field="at"
                )
            invoice = self._runner.invoice(invoice_id)
            dunning = self._runner.get(dunning_id_for(invoice_id), Dunning)
            target = self._retry_target(invoice)
            facts = InvoiceFacts(
                status=invoice.status,
                anchor=anchor_of(invoice.due_date, [attempt["at"] for attempt in invoice.failed_attempts]),
                failed_attempts=len(invoice.failed_attempts),
                can_retry=target is not None,
                has_due_date=invoice.due_date is not None,
                issued_on=None if invoice.issued_at is None else invoice.issued_at.astimezone(UTC).date(),
            )
            progress = None if dunning is None else dunning.progress
            planned = plan(invoice=facts, progress=progress, policy=policy, now=moment)
            done: list[DunningAction] = []
            for step in planned:
                if step.kind == RETRY_PAYMENT:
                    step = self._ask_for_retry(step, invoice, target, payments)
                dunning = _carry_out(step, dunning, invoice, facts, policy, moment, at)
                done.append(DunningAction(step.kind, step.step, step.reason))
            gave_up = any(action.kind == EXHAUST for action in done)
            changed: list[Aggregate] = [] if dunning is None or not done else [dunning]
            return {"done": [action.as_dict() for action in done]}, changed + ([invoice] if gave_up else [])

        outcome = self._runner.execute("advance_dunning", {"invoice_id": invoice_id}, None, decide)
        return outcome.map(lambda result: [DunningAction(d["kind"], d["step"], d["reason"]) for d in result["done"]])

    def retry_by_hand(
        self, invoice_id: UUID, *, policy: DunningPolicy, payments: PaymentProvider | None
    ) -> Outcome[DunningAction]:
        """Ask the provider now to charge the invoice's failed payment again, and record it.

        409 (`DunningStateError`) when there is no provider, nothing to retry, the provider
        says there is nothing to charge or that the payment went through, or this failed
        attempt was retried by hand already; nothing is stored then. A declined retry is
        recorded (the webhook adds its failed attempt to the invoice)."""

        def decide(at: datetime) -> Decision:
            invoice = self._runner.invoice(invoice_id)
            dunning = self._started(invoice, policy, at, "retry the payment of")
            failed = len(invoice.failed_attempts)
            dunning.require_retry_by_hand(failed)
            target = self._retry_target(invoice)
            if target is None:
                raise DunningStateError(dunning.id, f"{NOTHING_TO_RETRY}: no failed payment at the provider")
            if payments is None:
                raise DunningStateError(dunning.id, NO_PROVIDER)
            try:
                answer = payments.retry_payment(
                    provider_payment_id=target.provider_payment_id,
                    idempotency_key=retry_by_hand_key(invoice.id, failed),
                )
                outcome, detail = answer.status, answer.detail
            except PaymentDeclinedError as error:
                answer, outcome, detail = None, DECLINED, str(error)
            if answer is not None and answer.outcome == NOT_RETRYABLE:
                raise DunningStateError(dunning.id, f"{NOTHING_TO_RETRY}: {answer.detail or answer.status}")
            if answer is not None and answer.outcome == SETTLED:
                raise DunningStateError(
                    dunning.id, f"payment {target.provider_payment_id} is {answer.status} at the provider"
                )
            dunning.retry_by_hand(
                payment_id=str(target.id),
                provider_payment_id=target.provider_payment_id,
                failed_attempts=failed,
                outcome=outcome,
                detail=detail,
                as_of=at,
                at=at,
            )
            return {"reason": f"{target.provider_payment_id}: {outcome}"}, [dunning]

        outcome = self._runner.execute("retry_dunning_by_hand", {"invoice_id": invoice_id}, None, decide)
        return outcome.map(lambda result: DunningAction(RETRY_PAYMENT, None, result["reason"]))

    def remind_by_hand(
        self,
        invoice_id: UUID,
        *,
        policy: DunningPolicy,
        expected_version: int | None = None,
        expected_dunning_version: int | None = None,
    ) -> Outcome[DunningAction]:
        """Request a reminder to the customer now, outside the schedule; 409 unless the invoice is open.

        `expected_version` is the invoice's version the caller saw, `expected_dunning_version`
        its dunning's (0: not started): either moved on is a StaleVersionError and nothing is
        recorded. A reminder changes the dunning, not the invoice, so only the dunning's version
        refuses the same form posted twice. Both are checked inside the command, where a
        concurrent reminder's conflict makes the retried decision see the newer version."""

        def decide(at: datetime) -> Decision:
            invoice = self._runner.invoice(invoice_id)
            if expected_version is not None and expected_version != invoice.version:
                raise StaleVersionError(invoice.id, expected_version, invoice.version)
            if expected_dunning_version is not None:
                current = self.get(invoice_id)
                actual = 0 if current is None else current.version
                if expected_dunning_version != actual:
                    raise StaleVersionError(dunning_id_for(invoice_id), expected_dunning_version, actual)
            dunning = self._started(invoice, policy, at, "send a reminder for")
            dunning.remind_by_hand(amount_due=invoice.amount_due, currency=invoice.currency, as_of=at, at=at)
            return {}, [dunning]

        arguments = {
            "invoice_id": invoice_id,
            "expected_version": expected_version,
            "expected_dunning_version": expected_dunning_version,
        }
        outcome = self._runner.execute("remind_by_hand", arguments, None, decide)
        return outcome.map(lambda _: DunningAction(REMIND, None, "by hand"))

    def get(self, invoice_id: UUID) -> Dunning | None:
        """The invoice's dunning, or None if it never started."""
        return self._runner.get(dunning_id_for(invoice_id), Dunning)

    # ------------------------------------------------------------------------ helpers

    def _started(self, invoice: Invoice, policy: DunningPolicy, at: datetime, action: str) -> Dunning:
        """The open invoice's dunning, started now if it was not (the anchor is the one the
        schedule would have used, so later passes plan exactly as they would have)."""
        if invoice.status != OPEN:
            raise InvoiceNotOpenError(invoice.id, invoice.status, action)
        dunning = self._runner.get(dunning_id_for(invoice.id), Dunning)
        if dunning is not None:
            return dunning
        anchor = anchor_of(invoice.due_date, [attempt["at"] for attempt in invoice.failed_attempts])
        if anchor is None:
            raise DunningStateError(dunning_id_for(invoice.id), "nothing to dun: no due date and no failed attempt")
        return Dunning.start(invoice_id=invoice.id, anchor=anchor, policy=policy, as_of=at, at=at)

    def _retry_target(self, invoice: Invoice) -> Payment | None:
        """The provider payment of the latest failed attempt, if it is still failed."""
        for attempt in reversed(invoice.failed_attempts):
            payment = self._runner.get(UUID(attempt["payment_id"]), Payment)
            if payment is not None and payment.status == FAILED and payment.provider != OFFLINE:
                return payment
        return None

    def _ask_for_retry(
        self, step: Planned, invoice: Invoice, target: Payment | None, payments: PaymentProvider | None
    ) -> Planned:
        """Ask the provider; the step becomes a reminder (or a skip) when it cannot retry."""
        if target is None:
            return step.instead_remind(NOTHING_TO_RETRY)
        if payments is None:
            return step.instead_remind(NO_PROVIDER)
        assert step.step is not None
        try:
            answer = payments.retry_payment(
                provider_payment_id=target.provider_payment_id,
                idempotency_key=retry_key(invoice.id, step.step),
            )
        except PaymentDeclinedError as error:
            return _Retry.of(step, target, DECLINED, str(error))
        if answer.outcome == NOT_RETRYABLE:
            return step.instead_remind(f"{NOTHING_TO_RETRY}: {answer.detail or answer.status}")
        if answer.outcome == SETTLED:
            return step.instead_skip(f"payment {target.provider_payment_id} is {answer.status} at the provider")
        return _Retry.of(step, target, answer.status, answer.detail)


@dataclass(frozen=True)
class _Retry(Planned):
    """A retry the provider was asked for, with its answer."""

    payment_id: str = ""
    provider_payment_id: str = ""
    outcome: str = ""
    detail: str = ""

    @classmethod
    def of(cls, step: Planned, payment: Payment, outcome: str, detail: str) -> _Retry:
        reason = f"{payment.provider_payment_id}: {outcome}"
        return cls(RETRY_PAYMENT, step.step, reason, str(payment.id), payment.provider_payment_id, outcome, detail)


def _carry_out(
    step: Planned,
    dunning: Dunning | None,
    invoice: Invoice,
    facts: InvoiceFacts,
    policy: DunningPolicy,
    moment: datetime,
    at: datetime,
) -> Dunning | None:
    """Record one planned step on the dunning (and the invoice, when it gives up)."""
    if step.kind == START:
        assert facts.anchor is not None
        return Dunning.start(invoice_id=invoice.id, anchor=facts.anchor, policy=policy, as_of=moment, at=at)
    if dunning is None:
        raise AssertionError(f"{step.kind} planned for a dunning that never started")
    if step.kind == SKIP and step.step is not None:
        dunning.skip(step=step.step, reason=step.reason, as_of=moment, at=at)
    elif step.kind == REMIND and step.step is not None:
        dunning.request_reminder(
            step=step.step,
            reason=step.reason,
            amount_due=invoice.amount_due,
            currency=invoice.currency,
            as_of=moment,
            at=at,
        )
    elif isinstance(step, _Retry) and step.step is not None:
        dunning.request_retry(
            step=step.step,
            payment_id=step.payment_id,
            provider_payment_id=step.provider_payment_id,
            outcome=step.outcome,
            detail=step.detail,
            as_of=moment,
            at=at,
        )
    elif step.kind == EXHAUST:
        invoice.mark_uncollectible(at=at)
        dunning.exhaust(reason=step.reason, step=step.step, failed_attempts=facts.failed_attempts, as_of=moment, at=at)
    elif step.kind == STOP:
        dunning.stop(reason=step.reason, as_of=moment, at=at)
    else:
        raise AssertionError(f"cannot carry out {step}")
    return dunning
