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
    except NotFoundError as error:
        return UNMATCHED, str(error)
    except (RuleViolationError, InvalidInputError, CurrencyMismatchError) as error:
        return REFUSED, str(error)
    except (KeyError, TypeError, ValueError) as error:  # a payload without what its type promises
        return REFUSED, f"unreadable {event.event_type} payload: {error!r}"


# ------------------------------------------------------------------------------ payments


def _payment_succeeded(app: BillingApplication, intent: dict[str, Any], _: VerifiedEvent) -> tuple[str, str]:
    payment_id = app.record_provider_payment_succeeded(
        provider=PROVIDER,
        provider_payment_id=intent["id"],
        amount_captured=Money(intent["amount_received"], intent["currency"]),
        charge_id=_id(intent.get("latest_charge")),
        invoice_id=_invoice_id(intent),
    )
    return APPLIED, f"payment {payment_id} succeeded"


def _charge_succeeded(app: BillingApplication, charge: dict[str, Any], _: VerifiedEvent) -> tuple[str, str]:
    intent = _id(charge.get("payment_intent"))
    if intent is None:
        return UNMATCHED, f"charge {charge['id']} belongs to no PaymentIntent"
    payment_id = app.record_provider_payment_succeeded(
        provider=PROVIDER,
        provider_payment_id=intent,
        amount_captured=Money(charge["amount_captured"], charge["currency"]),
        charge_id=charge["id"],
        invoice_id=_invoice_id(charge),
    )
    return APPLIED, f"payment {payment_id} succeeded"


def _session_paid(app: BillingApplication, session: dict[str, Any], _: VerifiedEvent) -> tuple[str, str]:
    if session.get("payment_status") != "paid":
        return IGNORED, f"checkout session {session['id']} is {session.get('payment_status')}, not paid"
    intent = _id(session.get("payment_intent"))
    if intent is None:
        return UNMATCHED, f"checkout session {session['id']} names no PaymentIntent"
    payment_id = app.record_provider_payment_succeeded(
        provider=PROVIDER,
        provider_payment_id=intent,
        amount_captured=Money(session["amount_total"], session["currency"]),
        invoice_id=_invoice_id(session) or _uuid(session.get("client_reference_id")),
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
    intent = _id(charge.get("payment_intent"))
    if intent is None:
        return UNMATCHED, f"charge {charge['id']} belongs to no PaymentIntent"
    recorded = app.record_provider_payment_failed(
        provider=PROVIDER,
        provider_payment_id=intent,
        attempt_id=charge["id"],
        code=str(charge.get("failure_code") or "charge_failed"),
        message=str(charge.get("failure_message") or ""),
        invoice_id=_invoice_id(charge),
        amount=Money(charge["amount"], charge["currency"]),
    )
    return (APPLIED, f"attempt {charge['id']} failed") if recorded else (IGNORED, "nothing new")


# ------------------------------------------------------------------------------ refunds and disputes


def _charge_refunded(app: BillingApplication, charge: dict[str, Any], _: VerifiedEvent) -> tuple[str, str]:
    intent = _id(charge.get("payment_intent"))
    refunds = (charge.get("refunds") or {}).get("data") or []
    if intent is None:
        return UNMATCHED, f"charge {charge['id']} belongs to no PaymentIntent"
    app.payment(payment_id_for(PROVIDER, intent))  # PaymentNotFoundError: unmatched
    applied = [r["id"] for r in refunds if r.get("status") == "succeeded" and _refund(app, intent, r)]
    return APPLIED, f"refunds applied: {', '.join(applied) or 'none new'}"


def _refund_updated(app: BillingApplication, refund: dict[str, Any], _: VerifiedEvent) -> tuple[str, str]:
    intent = _id(refund.get("payment_intent"))
    if intent is None:
        return UNMATCHED, f"refund {refund['id']} belongs to no PaymentIntent"
    if refund.get("status") != "succeeded":
        return IGNORED, f"refund {refund['id']} is {refund.get('status')}"
    new = _refund(app, intent, refund)
    return APPLIED, f"refund {refund['id']} {'applied' if new else 'already applied'}"


def _refund(app: BillingApplication, intent: str, refund: dict[str, Any]) -> bool:
    return app.record_refund(payment_id_for(PROVIDER, intent), refund_id=refund["id"], amount=refund["amount"])


def _dispute_created(app: BillingApplication, dispute: dict[str, Any], _: VerifiedEvent) -> tuple[str, str]:
    intent = _id(dispute.get("payment_intent"))
    if intent is None:
        return UNMATCHED, f"dispute {dispute['id']} names no PaymentIntent"
    new = app.record_dispute_opened(
        payment_id_for(PROVIDER, intent),
        dispute_id=dispute["id"],
        amount=dispute["amount"],
        reason=str(dispute.get("reason") or ""),
    )
    return APPLIED, f"dispute {dispute['id']} {'opened' if new else 'already open'}"


def _dispute_closed(app: BillingApplication, dispute: dict[str, Any], _: VerifiedEvent) -> tuple[str, str]:
    intent = _id(dispute.get("payment_intent"))
    status = dispute.get("status")
    if intent is None:
        return UNMATCHED, f"dispute {dispute['id']} names no PaymentIntent"
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


def _uuid(value: object) -> UUID | None:
    try:
        return UUID(str(value)) if value else None
    except ValueError:
        return None


def _invoice_id(obj: dict[str, Any]) -> UUID | None:
    metadata = obj.get("metadata") or {}
    return _uuid(metadata.get("invoice_id")) if isinstance(metadata, dict) else None
