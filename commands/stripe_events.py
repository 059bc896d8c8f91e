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
Stripe objects are read as plain JSON here; only adapters/stripe imports the SDK.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from commands import money_movements as movements
from commands.application import BillingApplication, Delivery, Ingested
from commands.group_commit import GroupCommit
from commands.provider_events import APPLIED, IGNORED, WAITING, VerifiedEvent
from commands.work import Work
from ledger.deferred import DISPUTE_CLOSED, DISPUTE_OPENED, REFUND
from ledger.errors import InvalidInputError, NotFoundError
from ledger.money import Money
from ledger.payments import SUCCEEDED, Payment, payment_id_for

PROVIDER = "stripe"

Outcome = tuple[str, str]


def ingest(app: BillingApplication, event: VerifiedEvent) -> Ingested:
    """Record the event once, handle it if it was never handled, say what was done."""
    return app.ingest_provider_event(event, provider=PROVIDER, handle=lambda work, at: handle(work, event, at))


class StripeIngestion:
    """Ingests events as `ingest` does, sharing one commit among the events that arrive together
    (commands/group_commit.py): each caller is answered once the transaction with its event has
    committed. One per process, shared by every request thread."""

    def __init__(self, app: BillingApplication, max_batch: int = 200) -> None:
        self._app = app
        self._group: GroupCommit[VerifiedEvent, Ingested] = GroupCommit(self._run, max_batch=max_batch)

    def ingest(self, event: VerifiedEvent) -> Ingested:
        return self._group.submit(event)

    def _run(self, events: Sequence[VerifiedEvent]) -> list[Ingested | BaseException]:
        return self._app.ingest_provider_events([_delivery(event) for event in events])


def _delivery(event: VerifiedEvent) -> Delivery:
    return Delivery(event, PROVIDER, lambda work, at: handle(work, event, at))


def handle(work: Work, event: VerifiedEvent, at: datetime) -> Outcome:
    """Run the steps the event calls for on `work`; (outcome, detail). The caller runs this in a
    `Work.attempt` and records a raised NotFoundError as unmatched and a rule's refusal as
    refused (BillingApplication.ingest_provider_events). Store failures propagate: nothing is
    recorded and Stripe retries."""
    handler = _HANDLERS.get(event.event_type)
    if handler is None:
        return IGNORED, f"{event.event_type}: not a type the ledger acts on"
    try:
        return handler(_Step(work, event, at), event.data_object)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        if not _raised_reading_the_payload(error):
            raise  # a bug below this module: the delivery fails (500) and nothing of it is kept
        raise UnreadableEventError(f"unreadable {event.event_type} payload: {error!r}") from error


def _raised_reading_the_payload(error: BaseException) -> bool:
    """Whether the error was raised in this module's own code (a missing key, `int(None)`): a
    payload without what its type promises. Raised deeper (the domain, the store), it is a bug,
    and recording the event as refused would settle it for good."""
    traceback = error.__traceback__
    innermost = None
    while traceback is not None:
        innermost = traceback.tb_frame
        traceback = traceback.tb_next
    return innermost is not None and innermost.f_code.co_filename == __file__


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
        return (APPLIED if changed else IGNORED), f"payment {payment.id} succeeded" + ("" if changed else " (already)")

    def failed(
        self, intent: str, attempt: str, code: str, message: str, invoice_id: UUID | None, amount: Money
    ) -> Outcome:
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
            return IGNORED, f"{kind} {movement_id} is waiting for PaymentIntent {intent} already"
        return WAITING, f"{kind} {movement_id} waits for PaymentIntent {intent}"


# ------------------------------------------------------------------------------ payments


def _payment_succeeded(step: _Step, intent: dict[str, Any]) -> Outcome:
    amount = Money(intent["amount_received"], intent["currency"])
    return step.succeeded(intent["id"], amount, _invoice_id(intent), _id(intent.get("latest_charge")))


def _charge_succeeded(step: _Step, charge: dict[str, Any]) -> Outcome:
    if not charge.get("captured") or not charge.get("amount_captured"):
        return IGNORED, f"charge {charge['id']} is authorized, not captured"
    amount = Money(charge["amount_captured"], charge["currency"])
    return step.succeeded(_intent_of(charge, "charge"), amount, _invoice_id(charge), charge["id"])


def _payment_failed(step: _Step, intent: dict[str, Any]) -> Outcome:
    error = intent.get("last_payment_error") or {}
    # One attempt per failed charge; without one, the event itself is the attempt.
    attempt = _id(error.get("charge")) or step.event.event_id
    code = str(error.get("decline_code") or error.get("code") or "payment_failed")
    message = str(error.get("message") or "")
    return step.failed(intent["id"], attempt, code, message, _invoice_id(intent), _amount(intent))


def _charge_failed(step: _Step, charge: dict[str, Any]) -> Outcome:
    code = str(charge.get("failure_code") or "charge_failed")
    message = str(charge.get("failure_message") or "")
    return step.failed(_intent_of(charge, "charge"), charge["id"], code, message, _invoice_id(charge), _amount(charge))


def _payment_processing(step: _Step, intent: dict[str, Any]) -> Outcome:
    changed = movements.payment_processing(
        step.work,
        provider=PROVIDER,
        provider_payment_id=intent["id"],
        invoice_id=_invoice_id(intent),
        amount=_amount(intent),
        at=step.at,
    )
    return (APPLIED, f"payment {intent['id']} processing") if changed else (IGNORED, "nothing new")


def _payment_canceled(step: _Step, intent: dict[str, Any]) -> Outcome:
    changed = movements.payment_canceled(
        step.work,
        provider=PROVIDER,
        provider_payment_id=intent["id"],
        reason=str(intent.get("cancellation_reason") or ""),
        invoice_id=_invoice_id(intent),
        amount=_amount(intent),
        at=step.at,
    )
    return (APPLIED, f"payment {intent['id']} canceled") if changed else (IGNORED, "nothing new")


# ------------------------------------------------------------------------------ checkout sessions


def _session_completed(step: _Step, session: dict[str, Any]) -> Outcome:
    invoice_id = _session_invoice(session)
    if session.get("payment_status") != "paid":
        # Paid later by a bank debit: `async_payment_succeeded` / `_failed` say how it ended.
        intent = _id(session.get("payment_intent"))
        if intent is None:
            return IGNORED, f"checkout session {session['id']} is {session.get('payment_status')}, not paid"
        amount = Money(session["amount_total"], session["currency"])
        movements.payment_processing(
            step.work, provider=PROVIDER, provider_payment_id=intent, invoice_id=invoice_id, amount=amount, at=step.at
        )
        return APPLIED, f"checkout session {session['id']}: payment {intent} processing"
    amount = Money(session["amount_total"], session["currency"])
    outcome = step.succeeded(_intent_of(session, "checkout session"), amount, invoice_id, None)
    if _close_checkout(step, session, invoice_id, completed=True):
        return _summary([outcome, (APPLIED, f"checkout session {session['id']} completed")])
    return outcome


def _session_async_failed(step: _Step, session: dict[str, Any]) -> Outcome:
    intent = _intent_of(session, "checkout session")
    amount = Money(session["amount_total"], session["currency"])
    message = "the delayed payment failed"
    return step.failed(
        intent, f"{session['id']}:async", "async_payment_failed", message, _session_invoice(session), amount
    )


def _session_expired(step: _Step, session: dict[str, Any]) -> Outcome:
    invoice_id = _session_invoice(session)
    if invoice_id is None:
        raise NotFoundError(f"checkout session {session['id']} names no invoice of ours")
    closed = _close_checkout(step, session, invoice_id, completed=False)
    return (
        (APPLIED, f"checkout session {session['id']} expired") if closed else (IGNORED, "not an open checkout of ours")
    )


def _close_checkout(step: _Step, session: dict[str, Any], invoice_id: UUID | None, *, completed: bool) -> bool:
    if invoice_id is None:
        return False
    invoice = step.work.invoice(invoice_id)
    closed = invoice.close_checkout(session_id=session["id"], completed=completed, at=step.at)
    if closed:
        step.work.add(invoice)
    return closed


# ------------------------------------------------------------------------------ refunds and disputes


def _charge_refunded(step: _Step, charge: dict[str, Any]) -> Outcome:
    intent = _intent_of(charge, "charge")
    outcomes: list[Outcome] = []
    known = step.payment(intent) is not None or _invoice_id(charge) is not None
    if not step.captured(intent) and charge.get("captured") and charge.get("amount_captured") and known:
        # The refunded charge shows its capture: apply the payment before its refunds.
        amount = Money(charge["amount_captured"], charge["currency"])
        outcomes.append(step.succeeded(intent, amount, _invoice_id(charge), charge["id"]))
    refunds = [r for r in (charge.get("refunds") or {}).get("data") or [] if r.get("status") == "succeeded"]
    if not refunds and not outcomes:
        if step.payment(intent) is None:
            raise NotFoundError(f"charge {charge['id']} names no payment or invoice of ours")
        return IGNORED, f"charge {charge['id']} lists no succeeded refund (each comes with its refund event)"
    outcomes += [_refund(step, intent, refund) for refund in refunds]
    return _summary(outcomes)


def _refund_updated(step: _Step, refund: dict[str, Any]) -> Outcome:
    if refund.get("status") != "succeeded":
        return IGNORED, f"refund {refund['id']} is {refund.get('status')}"
    return _refund(step, _intent_of(refund, "refund"), refund)


def _refund(step: _Step, intent: str, refund: dict[str, Any]) -> Outcome:
    amount = int(refund["amount"])
    if not step.captured(intent):
        return step.defer(intent, REFUND, refund["id"], {"refund_id": refund["id"], "amount": amount})
    new = movements.refund(
        step.work, payment_id_for(PROVIDER, intent), refund_id=refund["id"], amount=amount, at=step.at
    )
    return (APPLIED, f"refund {refund['id']} applied") if new else (IGNORED, f"refund {refund['id']} already applied")


def _dispute_created(step: _Step, dispute: dict[str, Any]) -> Outcome:
    intent = _intent_of(dispute, "dispute")
    fields = {"dispute_id": dispute["id"], "amount": int(dispute["amount"]), "reason": str(dispute.get("reason") or "")}
    if not step.captured(intent):
        return step.defer(intent, DISPUTE_OPENED, dispute["id"], fields)
    new = movements.open_dispute(step.work, payment_id_for(PROVIDER, intent), **fields, at=step.at)
    return (APPLIED, f"dispute {dispute['id']} opened") if new else (IGNORED, f"dispute {dispute['id']} already open")


def _dispute_closed(step: _Step, dispute: dict[str, Any]) -> Outcome:
    intent = _intent_of(dispute, "dispute")
    status = dispute.get("status")
    if status not in ("won", "lost"):
        return IGNORED, f"dispute {dispute['id']} closed as {status}"
    fields = {
        "dispute_id": dispute["id"],
        "won": status == "won",
        "amount": int(dispute["amount"]),
        "reason": str(dispute.get("reason") or ""),
    }
    if not step.captured(intent):
        return step.defer(intent, DISPUTE_CLOSED, dispute["id"], fields)
    new = movements.close_dispute(step.work, payment_id_for(PROVIDER, intent), **fields, at=step.at)
    return (
        (APPLIED, f"dispute {dispute['id']} {status}") if new else (IGNORED, f"dispute {dispute['id']} closed already")
    )


# ------------------------------------------------------------------------------ payouts


def _payout(step: _Step, payout: dict[str, Any]) -> Outcome:
    paid = step.event.event_type == "payout.paid"
    changed = movements.payout(
        step.work,
        provider=PROVIDER,
        provider_payout_id=payout["id"],
        amount=_amount(payout),
        paid=paid,
        code=str(payout.get("failure_code") or ("" if paid else "payout_failed")),
        message=str(payout.get("failure_message") or ""),
        at=step.at,
    )
    what = "paid into the bank" if paid else "failed"
    return (APPLIED, f"payout {payout['id']} {what}") if changed else (IGNORED, f"payout {payout['id']}: nothing new")


def _summary(outcomes: list[Outcome]) -> Outcome:
    """One outcome for an event that reported several movements: applied if any was."""
    for wanted in (APPLIED, WAITING):
        if any(outcome == wanted for outcome, _ in outcomes):
            return wanted, "; ".join(detail for _, detail in outcomes)
    return IGNORED, "; ".join(detail for _, detail in outcomes)


Handler = Callable[[_Step, dict[str, Any]], Outcome]

_HANDLERS: dict[str, Handler] = {
    "payment_intent.succeeded": _payment_succeeded,
    "payment_intent.payment_failed": _payment_failed,
    "payment_intent.processing": _payment_processing,
    "payment_intent.canceled": _payment_canceled,
    "charge.succeeded": _charge_succeeded,
    "charge.failed": _charge_failed,
    "charge.refunded": _charge_refunded,
    "refund.created": _refund_updated,
    "refund.updated": _refund_updated,
    "charge.refund.updated": _refund_updated,
    "charge.dispute.created": _dispute_created,
    "charge.dispute.closed": _dispute_closed,
    "checkout.session.completed": _session_completed,
    "checkout.session.async_payment_succeeded": _session_completed,
    "checkout.session.async_payment_failed": _session_async_failed,
    "checkout.session.expired": _session_expired,
    "payout.paid": _payout,
    "payout.failed": _payout,
}


# ------------------------------------------------------------------------------ reading Stripe objects


def _id(value: object) -> str | None:
    """An expandable field: the id string, or the expanded object's id."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


class _NoPaymentIntentError(NotFoundError):
    """The object names no PaymentIntent: nothing of ours to match it with."""


def _intent_of(obj: dict[str, Any], kind: str) -> str:
    intent = _id(obj.get("payment_intent"))
    if intent is None:
        raise _NoPaymentIntentError(f"{kind} {obj['id']} names no PaymentIntent")
    return intent


def _uuid(value: object) -> UUID | None:
    try:
        return UUID(str(value)) if value else None
    except ValueError:
        return None


def _invoice_id(obj: dict[str, Any]) -> UUID | None:
    metadata = obj.get("metadata") or {}
    return _uuid(metadata.get("invoice_id")) if isinstance(metadata, dict) else None


def _session_invoice(session: dict[str, Any]) -> UUID | None:
    return _invoice_id(session) or _uuid(session.get("client_reference_id"))


def _amount(obj: dict[str, Any]) -> Money:
    return Money(obj["amount"], obj["currency"])
