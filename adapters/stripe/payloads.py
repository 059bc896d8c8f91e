"""Stripe's webhook payloads decoded into typed values: msgspec Structs that reject wrong types.

Only the fields the ledger reads are declared; Stripe's others are skipped. Two steps:

1. the envelope (`event`: id, type, created, livemode, api_version, data.object left raw);
   an envelope that does not decode is not an event: the delivery is refused (400) and nothing
   is kept;
2. `data.object`, by its own `object` field (payment_intent, charge, refund, dispute,
   checkout.session, payout), into a Struct, then into the provider-neutral report of
   commands/ingestion/provider_reports.py with every amount converted by the currency codec
   (adapters/stripe/currency.py). An object that does not decode leaves the event readable but
   its object `unreadable`, with the field named: the event is kept and recorded as refused.

msgspec was chosen over pydantic by measurement (docs/adr/0014-typed-stripe-payloads.md;
bench/stripe_payloads.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal
from uuid import UUID

import msgspec

from adapters.stripe.currency import from_stripe
from commands.ingestion.provider_events import VerifiedEvent, WebhookRejectedError
from commands.ingestion.provider_reports import (
    ChargeReport,
    CheckoutReport,
    DisputeReport,
    PaymentFailure,
    PaymentReport,
    PayoutReport,
    RefundReport,
    Report,
)
from ledger.errors import InvalidInputError


class _Ref(msgspec.Struct):
    """An expanded object in a field that may hold its id or the object itself."""

    id: str


Expandable = str | _Ref | None


def ref_id(value: Expandable) -> str | None:
    if isinstance(value, _Ref):
        return value.id
    return value or None


# ------------------------------------------------------------------------------ the envelope


class _Data(msgspec.Struct):
    object: msgspec.Raw


class Envelope(msgspec.Struct):
    id: str
    object: Literal["event"]
    type: str
    created: int
    data: _Data
    livemode: bool = False
    api_version: str | None = None


class _Kind(msgspec.Struct):
    object: str


# ------------------------------------------------------------------------------ the objects we read


class LastPaymentError(msgspec.Struct):
    charge: str | None = None
    code: str | None = None
    decline_code: str | None = None
    message: str | None = None
    payment_method: Expandable = None


class RetriedIntent(msgspec.Struct):
    """What a payment retry reads of a PaymentIntent (adapters/stripe/provider.py)."""

    id: str
    status: str
    payment_method: Expandable
    last_payment_error: LastPaymentError | None

    def failed_payment_method(self) -> str | None:
        """The PaymentIntent's payment method or, after a failure detached it, the one that failed."""
        error = self.last_payment_error
        return ref_id(self.payment_method) or (ref_id(error.payment_method) if error is not None else None)


def read_retried_intent(obj: dict[str, object]) -> RetriedIntent:
    """A PaymentIntent as the API returned it, typed; ValueError naming the field if it is not one."""
    try:
        return msgspec.convert(obj, RetriedIntent)
    except msgspec.ValidationError as error:
        raise ValueError(f"Stripe's PaymentIntent did not decode: {error}") from None


class PaymentIntent(msgspec.Struct):
    id: str
    amount: int
    amount_received: int
    currency: str
    status: str
    metadata: dict[str, str]
    latest_charge: Expandable
    last_payment_error: LastPaymentError | None
    cancellation_reason: str | None


class Refund(msgspec.Struct):
    id: str
    amount: int
    currency: str
    status: str | None
    payment_intent: Expandable


class RefundList(msgspec.Struct):
    data: list[Refund]


class Charge(msgspec.Struct):
    id: str
    amount: int
    amount_captured: int
    captured: bool
    currency: str
    payment_intent: Expandable
    metadata: dict[str, str]
    failure_code: str | None
    failure_message: str | None
    refunds: RefundList | None = None  # not expanded by default since 2022-11-15


class Dispute(msgspec.Struct):
    id: str
    amount: int
    currency: str
    status: str
    reason: str | None
    payment_intent: Expandable


class CheckoutSession(msgspec.Struct):
    id: str
    payment_status: str
    payment_intent: Expandable
    amount_total: int | None
    currency: str | None
    metadata: dict[str, str] | None
    client_reference_id: str | None


class Payout(msgspec.Struct):
    id: str
    amount: int
    currency: str
    failure_code: str | None
    failure_message: str | None


def invoice_uuid(value: str | None) -> UUID | None:
    """Our invoice id from `metadata.invoice_id`: anything else is someone else's object."""
    try:
        return UUID(value) if value else None
    except ValueError:
        return None


def _refund(refund: Refund, field: str) -> RefundReport:
    return RefundReport(
        id=refund.id,
        payment_id=ref_id(refund.payment_intent),
        amount=from_stripe(refund.amount, refund.currency, field=f"{field}.amount"),
        status=refund.status or "",
    )


def _payment(intent: PaymentIntent) -> PaymentReport:
    error = intent.last_payment_error
    return PaymentReport(
        id=intent.id,
        amount=from_stripe(intent.amount, intent.currency),
        amount_received=from_stripe(intent.amount_received, intent.currency, field="amount_received"),
        status=intent.status,
        invoice_id=invoice_uuid(intent.metadata.get("invoice_id")),
        latest_charge=ref_id(intent.latest_charge),
        last_failure=None
        if error is None
        else PaymentFailure(error.charge, error.decline_code or error.code or "", error.message or ""),
        cancellation_reason=intent.cancellation_reason or "",
    )


def _charge(charge: Charge) -> ChargeReport:
    refunds = charge.refunds.data if charge.refunds is not None else []
    return ChargeReport(
        id=charge.id,
        payment_id=ref_id(charge.payment_intent),
        amount=from_stripe(charge.amount, charge.currency),
        amount_captured=from_stripe(charge.amount_captured, charge.currency, field="amount_captured"),
        captured=charge.captured,
        invoice_id=invoice_uuid(charge.metadata.get("invoice_id")),
        failure_code=charge.failure_code or "",
        failure_message=charge.failure_message or "",
        refunds=tuple(_refund(refund, f"refunds.data[{i}]") for i, refund in enumerate(refunds)),
    )


def _dispute(dispute: Dispute) -> DisputeReport:
    return DisputeReport(
        id=dispute.id,
        payment_id=ref_id(dispute.payment_intent),
        amount=from_stripe(dispute.amount, dispute.currency),
        status=dispute.status,
        reason=dispute.reason or "",
    )


def _checkout(session: CheckoutSession) -> CheckoutReport:
    total = None
    if session.amount_total is not None and session.currency is not None:
        total = from_stripe(session.amount_total, session.currency, field="amount_total")
    metadata = session.metadata or {}
    return CheckoutReport(
        id=session.id,
        payment_status=session.payment_status,
        payment_id=ref_id(session.payment_intent),
        amount_total=total,
        invoice_id=invoice_uuid(metadata.get("invoice_id")) or invoice_uuid(session.client_reference_id),
    )


def _payout(payout: Payout) -> PayoutReport:
    return PayoutReport(
        id=payout.id,
        amount=from_stripe(payout.amount, payout.currency),
        failure_code=payout.failure_code or "",
        failure_message=payout.failure_message or "",
    )


_PAYMENT_INTENT = msgspec.json.Decoder(PaymentIntent)
_CHARGE = msgspec.json.Decoder(Charge)
_REFUND = msgspec.json.Decoder(Refund)
_DISPUTE = msgspec.json.Decoder(Dispute)
_CHECKOUT_SESSION = msgspec.json.Decoder(CheckoutSession)
_PAYOUT = msgspec.json.Decoder(Payout)

# An object's own `object` field -> its report.
_READERS: dict[str, Callable[[msgspec.Raw], Report]] = {
    "payment_intent": lambda raw: _payment(_PAYMENT_INTENT.decode(raw)),
    "charge": lambda raw: _charge(_CHARGE.decode(raw)),
    "refund": lambda raw: _refund(_REFUND.decode(raw), ""),
    "dispute": lambda raw: _dispute(_DISPUTE.decode(raw)),
    "checkout.session": lambda raw: _checkout(_CHECKOUT_SESSION.decode(raw)),
    "payout": lambda raw: _payout(_PAYOUT.decode(raw)),
}
_ENVELOPE = msgspec.json.Decoder(Envelope)
_KIND = msgspec.json.Decoder(_Kind)


def read_event(text: str) -> VerifiedEvent:
    """The event in a delivery's body (already verified): WebhookRejectedError if it is not one."""
    try:
        envelope = _ENVELOPE.decode(text)
        kind = _KIND.decode(envelope.data.object).object
    except msgspec.ValidationError as error:
        raise WebhookRejectedError(f"the body is not a Stripe event: {_named(error, '')}") from None
    except (msgspec.DecodeError, RecursionError):
        # RecursionError: JSON nested deeper than the decoder goes; it is not an event either.
        raise WebhookRejectedError("the body is not JSON that can be read") from None
    if not envelope.id.startswith("evt_") or len(envelope.id) > 255:
        raise WebhookRejectedError("the event has no valid id")
    if not envelope.type or len(envelope.type) > 100:
        raise WebhookRejectedError("the event has no type")
    subject, unreadable = _read_object(kind, envelope.data.object)
    return VerifiedEvent(
        event_id=envelope.id,
        event_type=envelope.type,
        created=envelope.created,
        livemode=envelope.livemode,
        payload=text,
        api_version=envelope.api_version,
        subject=subject,
        unreadable=unreadable,
    )


def _read_object(kind: str, raw: msgspec.Raw) -> tuple[Report | None, str | None]:
    """(report, None) for an object of a kind the ledger reads, (None, why) when it does not
    decode, (None, None) for a kind the ledger does not read."""
    reader = _READERS.get(kind)
    if reader is None:
        return None, None
    try:
        report = reader(raw)
    except msgspec.ValidationError as error:
        return None, f"{kind}: {_named(error, 'data.object')}"
    except InvalidInputError as error:  # an amount or currency the ledger cannot hold
        field = f"data.object.{error.field}" if error.field else "data.object"
        return None, f"{kind}: {field}: {error}"
    return report, None


def _named(error: msgspec.ValidationError, root: str) -> str:
    """msgspec's message with its path (`$.amount`) written from the event's root."""
    message = str(error)
    if root:
        return message.replace("`$", f"`{root}")
    return message.replace("`$.", "`").replace("`$`", "the event")
