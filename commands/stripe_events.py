"""Stripe's webhook events turned into the ledger's commands: each money movement once.

An event is first recorded as received (`ProviderEvent`), then handled, then marked with what
was done. Handling is safe to repeat: every command it runs is keyed by Stripe's own ids (the
PaymentIntent for a payment, the refund id, the dispute id, the charge of a failed attempt), so
`payment_intent.succeeded`, `charge.succeeded` and `checkout.session.completed`, which report
the same money, apply it once, whatever their order. If the process stops after recording and
before marking, the redelivery finds the event unhandled and handles it then.

Payments are keyed by the PaymentIntent id, which every money event names (ADR 0010).
Stripe objects are read as plain JSON here; only adapters/stripe imports the SDK.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from commands.application import BillingApplication
from commands.provider_events import VerifiedEvent
from ledger.errors import CurrencyMismatchError, InvalidInputError, NotFoundError, RuleViolationError
from ledger.money import Money
from ledger.payments import payment_id_for

PROVIDER = "stripe"

APPLIED = "applied"
UNMATCHED = "unmatched"
REFUSED = "refused"
IGNORED = "ignored"


@dataclass(frozen=True)
class Ingested:
    duplicate: bool  # the event had been recorded before
    outcome: str
    detail: str


def ingest(app: BillingApplication, event: VerifiedEvent) -> Ingested:
    """Record the event once, handle it if it was never handled, say what was done."""
    new = app.record_provider_event(event, provider=PROVIDER)
    kept = app.provider_event(PROVIDER, event.event_id)
    if kept is not None and kept.outcome is not None:
        return Ingested(duplicate=not new, outcome=kept.outcome, detail=kept.detail)
    outcome, detail = handle(app, event)
    app.mark_provider_event_handled(PROVIDER, event.event_id, outcome=outcome, detail=detail)
    return Ingested(duplicate=not new, outcome=outcome, detail=detail)


def handle(app: BillingApplication, event: VerifiedEvent) -> tuple[str, str]:
    """Run the commands the event calls for; (outcome, detail). Store failures propagate."""
    handler = _HANDLERS.get(event.event_type)
    if handler is None:
        return IGNORED, f"{event.event_type}: not a type the ledger acts on"
    try:
        return handler(app, event.data_object, event)
    except (NotFoundError, _NoPaymentIntentError) as error:
        return UNMATCHED, str(error)
    except (RuleViolationError, InvalidInputError, CurrencyMismatchError) as error:
        return REFUSED, str(error)
    except (KeyError, TypeError, ValueError) as error:  # a payload without what its type promises
        return REFUSED, f"unreadable {event.event_type} payload: {error!r}"


# ------------------------------------------------------------------------------ payments


def _payment_succeeded(app: BillingApplication, intent: dict[str, Any], _: VerifiedEvent) -> tuple[str, str]:
    amount = Money(intent["amount_received"], intent["currency"])
    return _succeeded(app, intent["id"], amount, _invoice_id(intent), _id(intent.get("latest_charge")))


def _charge_succeeded(app: BillingApplication, charge: dict[str, Any], _: VerifiedEvent) -> tuple[str, str]:
    amount = Money(charge["amount_captured"], charge["currency"])
    return _succeeded(app, _intent_of(charge, "charge"), amount, _invoice_id(charge), charge["id"])


def _session_paid(app: BillingApplication, session: dict[str, Any], _: VerifiedEvent) -> tuple[str, str]:
    if session.get("payment_status") != "paid":
        return IGNORED, f"checkout session {session['id']} is {session.get('payment_status')}, not paid"
    amount = Money(session["amount_total"], session["currency"])
    invoice_id = _invoice_id(session) or _uuid(session.get("client_reference_id"))
    return _succeeded(app, _intent_of(session, "checkout session"), amount, invoice_id, None)


def _succeeded(
    app: BillingApplication, intent: str, amount: Money, invoice_id: UUID | None, charge_id: str | None
) -> tuple[str, str]:
    """The one command all three reports of a payment run: keyed by the PaymentIntent, applied once."""
    payment_id = app.record_provider_payment_succeeded(
        provider=PROVIDER,
        provider_payment_id=intent,
        amount_captured=amount,
        charge_id=charge_id,
        invoice_id=invoice_id,
    )
    return APPLIED, f"payment {payment_id} succeeded"


def _payment_failed(app: BillingApplication, intent: dict[str, Any], event: VerifiedEvent) -> tuple[str, str]:
    error = intent.get("last_payment_error") or {}
    # One attempt per failed charge; without one, the event itself is the attempt.
    attempt = _id(error.get("charge")) or event.event_id
    recorded = app.record_provider_payment_failed(
        provider=PROVIDER,
        provider_payment_id=intent["id"],
        attempt_id=attempt,
        code=str(error.get("decline_code") or error.get("code") or "payment_failed"),
        message=str(error.get("message") or ""),
        invoice_id=_invoice_id(intent),
        amount=Money(intent["amount"], intent["currency"]),
    )
    return (APPLIED, f"attempt {attempt} failed") if recorded else (IGNORED, f"attempt {attempt}: nothing new")


def _charge_failed(app: BillingApplication, charge: dict[str, Any], _: VerifiedEvent) -> tuple[str, str]:
    recorded = app.record_provider_payment_failed(
        provider=PROVIDER,
        provider_payment_id=_intent_of(charge, "charge"),
        attempt_id=charge["id"],
        code=str(charge.get("failure_code") or "charge_failed"),
        message=str(charge.get("failure_message") or ""),
        invoice_id=_invoice_id(charge),
        amount=Money(charge["amount"], charge["currency"]),
    )
    return (APPLIED, f"attempt {charge['id']} failed") if recorded else (IGNORED, "nothing new")


# ------------------------------------------------------------------------------ refunds and disputes


def _charge_refunded(app: BillingApplication, charge: dict[str, Any], _: VerifiedEvent) -> tuple[str, str]:
    intent = _intent_of(charge, "charge")
    refunds = (charge.get("refunds") or {}).get("data") or []
    app.payment(payment_id_for(PROVIDER, intent))  # PaymentNotFoundError: unmatched
    applied = [r["id"] for r in refunds if r.get("status") == "succeeded" and _refund(app, intent, r)]
    return APPLIED, f"refunds applied: {', '.join(applied) or 'none new'}"


def _refund_updated(app: BillingApplication, refund: dict[str, Any], _: VerifiedEvent) -> tuple[str, str]:
    intent = _intent_of(refund, "refund")
    if refund.get("status") != "succeeded":
        return IGNORED, f"refund {refund['id']} is {refund.get('status')}"
    new = _refund(app, intent, refund)
    return APPLIED, f"refund {refund['id']} {'applied' if new else 'already applied'}"


def _refund(app: BillingApplication, intent: str, refund: dict[str, Any]) -> bool:
    return app.record_refund(payment_id_for(PROVIDER, intent), refund_id=refund["id"], amount=refund["amount"])


def _dispute_created(app: BillingApplication, dispute: dict[str, Any], _: VerifiedEvent) -> tuple[str, str]:
    new = app.record_dispute_opened(
        payment_id_for(PROVIDER, _intent_of(dispute, "dispute")),
        dispute_id=dispute["id"],
        amount=dispute["amount"],
        reason=str(dispute.get("reason") or ""),
    )
    return APPLIED, f"dispute {dispute['id']} {'opened' if new else 'already open'}"


def _dispute_closed(app: BillingApplication, dispute: dict[str, Any], _: VerifiedEvent) -> tuple[str, str]:
    intent = _intent_of(dispute, "dispute")
    status = dispute.get("status")
    if status not in ("won", "lost"):
        return IGNORED, f"dispute {dispute['id']} closed as {status}"
    new = app.record_dispute_closed(payment_id_for(PROVIDER, intent), dispute_id=dispute["id"], won=status == "won")
    return APPLIED, f"dispute {dispute['id']} {status}" + ("" if new else " (already)")


Handler = Callable[[BillingApplication, dict[str, Any], VerifiedEvent], tuple[str, str]]

_HANDLERS: dict[str, Handler] = {
    "payment_intent.succeeded": _payment_succeeded,
    "charge.succeeded": _charge_succeeded,
    "checkout.session.completed": _session_paid,
    "checkout.session.async_payment_succeeded": _session_paid,
    "payment_intent.payment_failed": _payment_failed,
    "charge.failed": _charge_failed,
    "charge.refunded": _charge_refunded,
    "refund.updated": _refund_updated,
    "refund.created": _refund_updated,
    "charge.dispute.created": _dispute_created,
    "charge.dispute.closed": _dispute_closed,
}


# ------------------------------------------------------------------------------ reading Stripe objects


def _id(value: object) -> str | None:
    """An expandable field: the id string, or the expanded object's id."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


class _NoPaymentIntentError(Exception):
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
