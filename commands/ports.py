"""Ports: what the application needs from the outside world, as Protocols.

Adapters implement them (adapters/), tests pass fakes that implement them too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    """Tells the time. The domain never reads a clock: every command is stamped by this."""

    def now(self) -> datetime:
        """The current moment, timezone-aware."""
        ...


@dataclass(frozen=True)
class CheckoutSession:
    """A hosted payment page the provider opened for one invoice.

    `payment_intent_id` is usually None: Stripe creates the PaymentIntent only when the
    customer pays, so the session id is what a payment is known by until then.
    """

    id: str
    url: str
    payment_intent_id: str | None
    expires_at: datetime


class PaymentProvider(Protocol):
    """Collects money for invoices (Stripe in production, its test double in tests).

    Every method may raise the `ProviderError` branch of ledger.errors and nothing else:
    `PaymentDeclinedError`, `ProviderUnavailableError` (retry later) or
    `ProviderConfigurationError` (our setup is wrong). The same `idempotency_key` with the same
    arguments returns the same session instead of opening a second one.
    """

    def create_checkout_session(
        self,
        *,
        invoice_id: str,
        amount: int,
        currency: str,
        customer_email: str,
        description: str,
        success_url: str,
        cancel_url: str,
        idempotency_key: str,
    ) -> CheckoutSession:
        """Open a hosted page collecting `amount` minor units of `currency` for the invoice."""
        ...

    def report_meter_event(
        self, *, event_name: str, customer_id: str, value: int, identifier: str, at: datetime
    ) -> None:
        """Report usage to the provider's meter; `identifier` makes a repeat count once."""
        ...
