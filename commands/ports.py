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


ATTEMPTED = "attempted"
SETTLED = "settled"
NOT_RETRYABLE = "not_retryable"


@dataclass(frozen=True)
class PaymentRetry:
    """What the provider did when asked to charge a failed payment again.

    `outcome` is `attempted` (a new attempt was made and not declined: `status` says whether it
    succeeded or is still processing), `settled` (no attempt: the payment succeeded or is in
    flight already) or `not_retryable` (no attempt: nothing to charge, e.g. no payment method
    left on it). A declined attempt raises `PaymentDeclinedError` instead.
    """

    provider_payment_id: str
    outcome: str
    status: str  # the provider's own status for the payment afterwards (Stripe: the PaymentIntent's)
    detail: str = ""


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

    def retry_payment(self, *, provider_payment_id: str, idempotency_key: str) -> PaymentRetry:
        """Charge a failed payment again, off-session, with the payment method it failed with.

        The same `idempotency_key` makes a repeated request the same attempt, not a second one.
        """
        ...

    def refund_charge(self, *, charge_id: str, amount: int, currency: str, idempotency_key: str) -> str:
        """Ask the provider to refund `amount` (ledger minor units) of a charge; the refund's id.

        The refund itself reaches the ledger as a webhook, like any other. The same
        `idempotency_key` with the same arguments is the same refund, not a second one.
        """
        ...


class PasswordHasher(Protocol):
    """Makes and checks password hashes for the dashboard's users (argon2 in production:
    adapters/admin/passwords.py). The ledger stores only what `hash` returns, never a password."""

    def hash(self, password: str) -> str:
        """A new salted hash of `password`, encoding its own parameters."""
        ...

    def verify(self, password_hash: str, password: str) -> bool:
        """Whether `password` matches; False (never an exception) for a wrong password or a
        hash this hasher cannot read."""
        ...

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether the hash was made with weaker parameters than the hasher's current ones."""
        ...
