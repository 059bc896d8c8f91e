"""Stripe's webhook events turned into the ledger's commands: each money movement once.

An event is recorded, handled and marked with what was done in ONE transaction
(`BillingApplication.ingest_provider_event`): a redelivery finds it and changes nothing, and a
store failure leaves nothing of it behind, so Stripe's retry starts afresh. Every step is keyed
by Stripe's own ids (the PaymentIntent for a payment, the refund id, the dispute id, the charge
of a failed attempt), so `payment_intent.succeeded`, `charge.succeeded` and
`checkout.session.completed`, which report the same money, apply it once, in any order.

Order does not matter:
- a refund or dispute reported before its payment has succeeded (not reported yet, declined,
  processing) waits for it (ledger/deferred.py) and is applied in the transaction that applies
  the payment; `charge.refunded` itself shows the capture, so it applies the payment first;
- a dispute closed before it was reported open is opened and closed from the closing report;
- a failure, `processing` or cancellation reported after the success changes nothing.

An event is handled all or nothing (`Work.attempt`): refused or unmatched, it leaves only its
own record.
Payments are keyed by the PaymentIntent id, which every money event names (ADR 0010).
Stripe's objects arrive decoded and typed (commands/ingestion/provider_reports.py, decoded by
adapters/stripe/payloads.py, amounts already converted into the ledger's units); nothing here
reads JSON, and only adapters/stripe imports the SDK or the decoder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from commands.application import BillingApplication, Delivery, Ingested, Reprocessed
from commands.ingestion import money_movements as movements
from commands.ingestion.group_commit import GroupCommit
from commands.ingestion.provider_events import APPLIED, DUPLICATE, IGNORED, WAITING, VerifiedEvent
from commands.ingestion.provider_reports import (
    ChargeReport,
    CheckoutReport,
    DisputeReport,
    PaymentReport,
    PayoutReport,
    RefundReport,
    Report,
)
from commands.work import Work
from ledger.deferred import DISPUTE_CLOSED, DISPUTE_OPENED, REFUND, deferred_id_for
from ledger.errors import InvalidInputError, NotFoundError
from ledger.money import Money
from ledger.payments import SUCCEEDED, Payment, payment_id_for
from ledger.payouts import FAILED as PAYOUT_FAILED
from ledger.payouts import PAID as PAYOUT_PAID
from ledger.payouts import Payout, payout_id_for

PROVIDER = "stripe"
# The API versions whose payloads the ledger's readers were checked against (the one the SDK
# pins: tests/unit/test_stripe_payloads.py keeps them equal). Webhook payloads are written in the
# endpoint's version, which the dashboard sets: an event in another version is handled if its
# object decodes (the typed readers refuse any field we read in another shape) and flagged in
# its outcome so an operator sees the endpoint has moved.
READ_API_VERSIONS = frozenset({"2026-10-28.endive"})

Outcome = tuple[str, str]
R = TypeVar("R", bound=Report)


def ingest(app: BillingApplication, event: VerifiedEvent) -> Ingested:
    """Record the event once, handle it if it was never handled, say what was done."""
    return app.ingest_provider_event(event, provider=PROVIDER, handle=lambda work, at: handle(work, event, at))


def reprocess(
    app: BillingApplication,
    event_id: str,
    *,
    decode: Callable[[str], VerifiedEvent],
    idempotency_key: str | None = None,
) -> Reprocessed:
    """Handle a kept Stripe event again, through the same steps as `ingest` (see
    BillingApplication.reprocess_provider_event); `decode` is the adapter's payload reader."""
    return app.reprocess_provider_event(
        PROVIDER,
        event_id,
        decode=decode,
        handle=lambda event: lambda work, at: handle(work, event, at),
        idempotency_key=idempotency_key,
    ).result


class StripeIngestion:
    """Ingests events as `ingest` does, sharing one commit among the events that arrive together
    (commands/ingestion/group_commit.py): each caller is answered once the transaction with its event has
    committed. One per process, shared by every request thread."""

    def __init__(self, app: BillingApplication, max_batch: int = 200) -> None:
        self._app = app
        self._group: GroupCommit[VerifiedEvent, Ingested] = GroupCommit(self._run, max_batch=max_batch)

    def ingest(self, event: VerifiedEvent) -> Ingested:
        return self._group.submit(event)

    async def ingest_async(self, event: VerifiedEvent) -> Ingested:
        """`ingest` from the event loop (the webhook route): awaits its batch without holding a
        thread; the batches run on the group's writer thread."""
        return await self._group.submit_async(event)

    def _run(self, events: Sequence[VerifiedEvent]) -> list[Ingested | BaseException]:
        return self._app.ingest_provider_events([_delivery(event) for event in events])


def _delivery(event: VerifiedEvent) -> Delivery:
    return Delivery(event, PROVIDER, lambda work, at: handle(work, event, at), _probable_reads(event))


def _probable_reads(event: VerifiedEvent) -> tuple[UUID, ...]:
    """The payment a money event names and its waiting movements: on the first report of a
    PaymentIntent neither is stored yet (money_movements.provider_payment, _release_deferred).
    And the invoice it names, which the payment's first report loads: asked in the same query,
    its history comes with the answer (CommandRunner.work)."""
    subject = event.subject
    if isinstance(subject, PaymentReport):
        intent: str | None = subject.id
    elif isinstance(subject, (ChargeReport, CheckoutReport, RefundReport, DisputeReport)):
        intent = subject.payment_id
    else:
        return ()
    if intent is None:
        return ()
    invoice = getattr(subject, "invoice_id", None)
    named = (invoice,) if isinstance(invoice, UUID) else ()
    return payment_id_for(PROVIDER, intent), deferred_id_for(PROVIDER, intent), *named


def handle(work: Work, event: VerifiedEvent, at: datetime) -> Outcome:
    """Run the steps the event calls for on `work`; (outcome, detail). The caller runs this in a
    `Work.attempt` and records a raised NotFoundError as unmatched and a rule's refusal (or an
    object that did not decode: UnreadableEventError) as refused
    (BillingApplication.ingest_provider_events). Anything else is a bug or a store failure: it
    propagates, nothing is recorded, and Stripe delivers again."""
    handler = _HANDLERS.get(event.event_type)
    if handler is None:
        return IGNORED, f"{event.event_type}: not a type the ledger acts on"
    reads, run = handler
    if event.unreadable is not None:
        raise UnreadableEventError(f"unreadable {event.event_type} payload: {event.unreadable}")
    if not isinstance(event.subject, reads):
        what = "no object of a kind the ledger reads" if event.subject is None else type(event.subject).__name__
        raise UnreadableEventError(f"{event.event_type} carries {what}, not a {reads.__name__}")
    outcome, detail = run(_Step(work, event, at), event.subject)
    if event.api_version is not None and event.api_version not in READ_API_VERSIONS:
        detail = f"{detail} [api_version {event.api_version} is not one the ledger was checked against]"
    return outcome, detail


class UnreadableEventError(InvalidInputError):
    """A signed event whose object lacks what its type promises: refused, kept as evidence."""


class _Step:
    """What a handler works with: the attempt's aggregates, the event, the moment."""

    def __init__(self, work: Work, event: VerifiedEvent, at: datetime) -> None:
        self.work = work
        self.event = event
        self.at = at

    def payment(self, intent: str) -> Payment | None:
        return self.work.get(payment_id_for(PROVIDER, intent), Payment)

    def captured(self, intent: str) -> bool:
        """Whether the payment's money is in: refunds and disputes before that wait for it."""
        payment = self.payment(intent)
        return payment is not None and payment.status == SUCCEEDED

    def succeeded(self, intent: str, amount: Money, invoice_id: UUID | None, charge_id: str | None) -> Outcome:
        """The one step every report of a captured payment runs: keyed by the PaymentIntent."""
        payment, changed = movements.payment_succeeded(
            self.work,
            provider=PROVIDER,
            provider_payment_id=intent,
            amount_captured=amount,
            charge_id=charge_id,
            invoice_id=invoice_id,
            at=self.at,
        )
        if not changed:
            return DUPLICATE, f"payment {payment.id} succeeded (already)"
        return APPLIED, f"payment {payment.id} succeeded"

    def failed(
        self, intent: str, attempt: str, code: str, message: str, invoice_id: UUID | None, amount: Money
    ) -> Outcome:
        known = self.payment(intent)
        if known is not None and known.has_failed_attempt(attempt):
            return DUPLICATE, f"attempt {attempt} failed already"
        recorded = movements.payment_failed(
            self.work,
            provider=PROVIDER,
            provider_payment_id=intent,
            attempt_id=attempt,
            code=code,
            message=message,
            invoice_id=invoice_id,
            amount=amount,
            at=self.at,
        )
        return (
            (APPLIED, f"attempt {attempt} failed: {code}") if recorded else (IGNORED, f"attempt {attempt}: nothing new")
        )

    def defer(self, intent: str, kind: str, movement_id: str, fields: dict[str, Any]) -> Outcome:
        new = movements.defer(
            self.work,
            provider=PROVIDER,
            provider_payment_id=intent,
            kind=kind,
            movement_id=movement_id,
            fields=fields,
            event_id=self.event.event_id,
            at=self.at,
        )
        if not new:  # reported before, and kept: that report's event is the one released with it
            return DUPLICATE, f"{kind} {movement_id} is waiting for PaymentIntent {intent} already"
        return WAITING, f"{kind} {movement_id} waits for PaymentIntent {intent}"


# ------------------------------------------------------------------------------ payments


def _payment_succeeded(step: _Step, intent: PaymentReport) -> Outcome:
    return step.succeeded(intent.id, intent.amount_received, intent.invoice_id, intent.latest_charge)


def _charge_succeeded(step: _Step, charge: ChargeReport) -> Outcome:
    if not charge.captured or not charge.amount_captured.amount:
        return IGNORED, f"charge {charge.id} is authorized, not captured"
    return step.succeeded(_intent_of(charge, "charge"), charge.amount_captured, charge.invoice_id, charge.id)


def _payment_failed(step: _Step, intent: PaymentReport) -> Outcome:
    error = intent.last_failure
    # One attempt per failed charge; without one, the event itself is the attempt.
    attempt = (error.charge_id if error else None) or step.event.event_id
    code = (error.code if error else "") or "payment_failed"
    message = error.message if error else ""
    return step.failed(intent.id, attempt, code, message, intent.invoice_id, intent.amount)


def _charge_failed(step: _Step, charge: ChargeReport) -> Outcome:
    code = charge.failure_code or "charge_failed"
    intent = _intent_of(charge, "charge")
    return step.failed(intent, charge.id, code, charge.failure_message, charge.invoice_id, charge.amount)


def _payment_processing(step: _Step, intent: PaymentReport) -> Outcome:
    changed = movements.payment_processing(
        step.work,
        provider=PROVIDER,
        provider_payment_id=intent.id,
        invoice_id=intent.invoice_id,
        amount=intent.amount,
        at=step.at,
    )
    return (APPLIED, f"payment {intent.id} processing") if changed else (IGNORED, "nothing new")


def _payment_canceled(step: _Step, intent: PaymentReport) -> Outcome:
    changed = movements.payment_canceled(
        step.work,
        provider=PROVIDER,
        provider_payment_id=intent.id,
        reason=intent.cancellation_reason,
        invoice_id=intent.invoice_id,
        amount=intent.amount,
        at=step.at,
    )
    return (APPLIED, f"payment {intent.id} canceled") if changed else (IGNORED, "nothing new")


# ------------------------------------------------------------------------------ checkout sessions


def _session_completed(step: _Step, session: CheckoutReport) -> Outcome:
    invoice_id = session.invoice_id
    if session.payment_status != "paid":
        # Paid later by a bank debit: `async_payment_succeeded` / `_failed` say how it ended.
        intent = session.payment_id
        if intent is None:
            return IGNORED, f"checkout session {session.id} is {session.payment_status}, not paid"
        movements.payment_processing(
            step.work,
            provider=PROVIDER,
            provider_payment_id=intent,
            invoice_id=invoice_id,
            amount=_total(session),
            at=step.at,
        )
        return APPLIED, f"checkout session {session.id}: payment {intent} processing"
    outcome = step.succeeded(_intent_of(session, "checkout session"), _total(session), invoice_id, None)
    if _close_checkout(step, session, invoice_id, completed=True):
        return _summary([outcome, (APPLIED, f"checkout session {session.id} completed")])
    return outcome


def _session_async_failed(step: _Step, session: CheckoutReport) -> Outcome:
    intent = _intent_of(session, "checkout session")
    message = "the delayed payment failed"
    return step.failed(
        intent, f"{session.id}:async", "async_payment_failed", message, session.invoice_id, _total(session)
    )


def _session_expired(step: _Step, session: CheckoutReport) -> Outcome:
    invoice_id = session.invoice_id
    if invoice_id is None:
        raise NotFoundError(f"checkout session {session.id} names no invoice of ours")
    closed = _close_checkout(step, session, invoice_id, completed=False)
    return (APPLIED, f"checkout session {session.id} expired") if closed else (IGNORED, "not an open checkout of ours")


def _close_checkout(step: _Step, session: CheckoutReport, invoice_id: UUID | None, *, completed: bool) -> bool:
    if invoice_id is None:
        return False
    invoice = step.work.invoice(invoice_id)
    closed = invoice.close_checkout(session_id=session.id, completed=completed, at=step.at)
    if closed:
        step.work.add(invoice)
    return closed


def _total(session: CheckoutReport) -> Money:
    if session.amount_total is None:
        raise UnreadableEventError(f"checkout session {session.id} has no amount_total or currency")
    return session.amount_total


# ------------------------------------------------------------------------------ refunds and disputes


def _charge_refunded(step: _Step, charge: ChargeReport) -> Outcome:
    intent = _intent_of(charge, "charge")
    outcomes: list[Outcome] = []
    known = step.payment(intent) is not None or charge.invoice_id is not None
    if not step.captured(intent) and charge.captured and charge.amount_captured.amount and known:
        # The refunded charge shows its capture: apply the payment before its refunds.
        outcomes.append(step.succeeded(intent, charge.amount_captured, charge.invoice_id, charge.id))
    refunds = [refund for refund in charge.refunds if refund.status == "succeeded"]
    if not refunds and not outcomes:
        if step.payment(intent) is None:
            raise NotFoundError(f"charge {charge.id} names no payment or invoice of ours")
        return IGNORED, f"charge {charge.id} lists no succeeded refund (each comes with its refund event)"
    outcomes += [_refund(step, intent, refund) for refund in refunds]
    return _summary(outcomes)


def _refund_updated(step: _Step, refund: RefundReport) -> Outcome:
    if refund.status != "succeeded":
        return IGNORED, f"refund {refund.id} is {refund.status}"
    return _refund(step, _intent_of(refund, "refund"), refund)


def _refund(step: _Step, intent: str, refund: RefundReport) -> Outcome:
    amount, currency = refund.amount.amount, refund.amount.currency
    if not step.captured(intent):
        fields = {"refund_id": refund.id, "amount": amount, "currency": currency}
        return step.defer(intent, REFUND, refund.id, fields)
    new = movements.refund(
        step.work, payment_id_for(PROVIDER, intent), refund_id=refund.id, amount=amount, at=step.at, currency=currency
    )
    return (APPLIED, f"refund {refund.id} applied") if new else (DUPLICATE, f"refund {refund.id} already applied")


def _dispute_created(step: _Step, dispute: DisputeReport) -> Outcome:
    intent = _intent_of(dispute, "dispute")
    fields = {
        "dispute_id": dispute.id,
        "amount": dispute.amount.amount,
        "currency": dispute.amount.currency,
        "reason": dispute.reason,
    }
    if not step.captured(intent):
        return step.defer(intent, DISPUTE_OPENED, dispute.id, fields)
    new = movements.open_dispute(
        step.work,
        payment_id_for(PROVIDER, intent),
        dispute_id=dispute.id,
        amount=dispute.amount.amount,
        reason=dispute.reason,
        at=step.at,
        currency=dispute.amount.currency,
    )
    return (APPLIED, f"dispute {dispute.id} opened") if new else (DUPLICATE, f"dispute {dispute.id} already open")


def _dispute_closed(step: _Step, dispute: DisputeReport) -> Outcome:
    intent = _intent_of(dispute, "dispute")
    status = dispute.status
    if status not in ("won", "lost"):
        return IGNORED, f"dispute {dispute.id} closed as {status}"
    fields = {
        "dispute_id": dispute.id,
        "won": status == "won",
        "amount": dispute.amount.amount,
        "currency": dispute.amount.currency,
        "reason": dispute.reason,
    }
    if not step.captured(intent):
        return step.defer(intent, DISPUTE_CLOSED, dispute.id, fields)
    new = movements.close_dispute(
        step.work,
        payment_id_for(PROVIDER, intent),
        dispute_id=dispute.id,
        won=status == "won",
        amount=dispute.amount.amount,
        reason=dispute.reason,
        at=step.at,
        currency=dispute.amount.currency,
    )
    return (APPLIED, f"dispute {dispute.id} {status}") if new else (DUPLICATE, f"dispute {dispute.id} closed already")


# ------------------------------------------------------------------------------ payouts


def _payout(step: _Step, payout: PayoutReport) -> Outcome:
    paid = step.event.event_type == "payout.paid"
    kept = step.work.get(payout_id_for(PROVIDER, payout.id), Payout)
    before = None if kept is None else kept.status
    changed = movements.payout(
        step.work,
        provider=PROVIDER,
        provider_payout_id=payout.id,
        amount=payout.amount,
        paid=paid,
        code=payout.failure_code or ("" if paid else "payout_failed"),
        message=payout.failure_message,
        at=step.at,
    )
    what = "paid into the bank" if paid else "failed"
    if changed:
        return APPLIED, f"payout {payout.id} {what}"
    if before == (PAYOUT_PAID if paid else PAYOUT_FAILED):
        return DUPLICATE, f"payout {payout.id} {what} already"
    return IGNORED, f"payout {payout.id} is {before}: a late report changes nothing"


def _summary(outcomes: list[Outcome]) -> Outcome:
    """One outcome for an event that reported several movements: applied if any was, then
    waiting, then duplicate (what it reports was in already)."""
    for wanted in (APPLIED, WAITING, DUPLICATE):
        if any(outcome == wanted for outcome, _ in outcomes):
            return wanted, "; ".join(detail for _, detail in outcomes)
    return IGNORED, "; ".join(detail for _, detail in outcomes)


class _NoPaymentIntentError(NotFoundError):
    """The object names no PaymentIntent: nothing of ours to match it with."""


def _intent_of(obj: ChargeReport | RefundReport | DisputeReport | CheckoutReport, kind: str) -> str:
    if obj.payment_id is None:
        raise _NoPaymentIntentError(f"{kind} {obj.id} names no PaymentIntent")
    return obj.payment_id


def _handler(
    reads: type[R], run: Callable[[_Step, R], Outcome]
) -> tuple[type[object], Callable[[_Step, Any], Outcome]]:
    """The kind of object an event type reports and what is done with it."""
    return reads, run


_HANDLERS: dict[str, tuple[type[object], Callable[[_Step, Any], Outcome]]] = {
    "payment_intent.succeeded": _handler(PaymentReport, _payment_succeeded),
    "payment_intent.payment_failed": _handler(PaymentReport, _payment_failed),
    "payment_intent.processing": _handler(PaymentReport, _payment_processing),
    "payment_intent.canceled": _handler(PaymentReport, _payment_canceled),
    "charge.succeeded": _handler(ChargeReport, _charge_succeeded),
    "charge.failed": _handler(ChargeReport, _charge_failed),
    "charge.refunded": _handler(ChargeReport, _charge_refunded),
    "refund.created": _handler(RefundReport, _refund_updated),
    "refund.updated": _handler(RefundReport, _refund_updated),
    "charge.refund.updated": _handler(RefundReport, _refund_updated),
    "charge.dispute.created": _handler(DisputeReport, _dispute_created),
    "charge.dispute.closed": _handler(DisputeReport, _dispute_closed),
    "checkout.session.completed": _handler(CheckoutReport, _session_completed),
    "checkout.session.async_payment_succeeded": _handler(CheckoutReport, _session_completed),
    "checkout.session.async_payment_failed": _handler(CheckoutReport, _session_async_failed),
    "checkout.session.expired": _handler(CheckoutReport, _session_expired),
    "payout.paid": _handler(PayoutReport, _payout),
    "payout.failed": _handler(PayoutReport, _payout),
}
