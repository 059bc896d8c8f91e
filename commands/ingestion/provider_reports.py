"""What a payment provider's event reports, as typed, provider-neutral values.

The Stripe adapter decodes each object the ledger reads (adapters/stripe/payloads.py) and hands
these over, with every amount already converted into the ledger's Money by the currency codec;
nothing here reads JSON. A payload that does not decode never becomes one of these: the event
carries the reason instead (`VerifiedEvent.unreadable`), and is recorded as refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from ledger.money import Money


@dataclass(frozen=True)
class PaymentFailure:
    """Why the last attempt failed (Stripe: `last_payment_error`)."""

    charge_id: str | None
    code: str
    message: str


@dataclass(frozen=True)
class PaymentReport:
    """A payment (Stripe: a PaymentIntent)."""

    id: str
    amount: Money
    amount_received: Money
    status: str
    invoice_id: UUID | None
    latest_charge: str | None
    last_failure: PaymentFailure | None
    cancellation_reason: str


@dataclass(frozen=True)
class RefundReport:
    id: str
    payment_id: str | None  # the provider's payment (PaymentIntent) id
    amount: Money
    status: str


@dataclass(frozen=True)
class ChargeReport:
    """One attempt to collect a payment (Stripe: a Charge)."""

    id: str
    payment_id: str | None
    amount: Money
    amount_captured: Money
    captured: bool
    invoice_id: UUID | None
    failure_code: str
    failure_message: str
    refunds: tuple[RefundReport, ...]


@dataclass(frozen=True)
class DisputeReport:
    id: str
    payment_id: str | None
    amount: Money
    status: str
    reason: str


@dataclass(frozen=True)
class CheckoutReport:
    """A hosted payment page (Stripe: a Checkout Session)."""

    id: str
    payment_status: str
    payment_id: str | None
    amount_total: Money | None
    invoice_id: UUID | None


@dataclass(frozen=True)
class PayoutReport:
    id: str
    amount: Money
    failure_code: str
    failure_message: str


Report = PaymentReport | ChargeReport | RefundReport | DisputeReport | CheckoutReport | PayoutReport
