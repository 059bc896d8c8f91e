"""A payment provider for tests: implements the PaymentProvider port in memory.

Retries answer what the test set for the payment (`answers`), `attempted`/`succeeded` by
default; a repeated idempotency key gets the first answer again without a new attempt, as
Stripe does. `unavailable` makes the next retries and refunds raise ProviderUnavailableError.
Refunds are kept in `refunds`, one per idempotency key; the same key with other arguments is
refused, as Stripe refuses it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from commands.ports import ATTEMPTED, CheckoutSession, PaymentRetry
from ledger.errors import (
    PaymentDeclinedError,
    ProviderConfigurationError,
    ProviderError,
    ProviderUnavailableError,
)

DECLINED = "declined"


@dataclass(frozen=True)
class FakeRefund:
    refund_id: str
    charge_id: str
    amount: int
    currency: str


@dataclass
class FakePaymentProvider:
    answers: dict[str, list[str]] = field(default_factory=dict)  # per payment: "succeeded", "declined", ...
    attempts: list[tuple[str, str]] = field(default_factory=list)  # (provider payment id, key) per new attempt
    unavailable: int = 0
    default: str = "succeeded"  # the answer once a payment's queued answers are used up
    _by_key: dict[str, PaymentRetry | ProviderError] = field(default_factory=dict)
    refunds: dict[str, FakeRefund] = field(default_factory=dict)  # by idempotency key

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
        raise NotImplementedError("the dunning tests open no checkout")

    def report_meter_event(
        self, *, event_name: str, customer_id: str, value: int, identifier: str, at: datetime
    ) -> None:
        raise NotImplementedError("the dunning tests report no usage")

    def retry_payment(self, *, provider_payment_id: str, idempotency_key: str) -> PaymentRetry:
        if self.unavailable:
            self.unavailable -= 1
            raise ProviderUnavailableError("fake provider: down")
        if idempotency_key not in self._by_key:
            self.attempts.append((provider_payment_id, idempotency_key))
            self._by_key[idempotency_key] = self._answer(provider_payment_id)
        answer = self._by_key[idempotency_key]
        if isinstance(answer, ProviderError):
            raise answer
        return answer

    def refund_charge(self, *, charge_id: str, amount: int, currency: str, idempotency_key: str) -> str:
        if self.unavailable:
            self.unavailable -= 1
            raise ProviderUnavailableError("fake provider: down")
        asked = FakeRefund(f"re_fake{len(self.refunds) + 1}", charge_id, amount, currency)
        kept = self.refunds.setdefault(idempotency_key, asked)
        if (kept.charge_id, kept.amount, kept.currency) != (charge_id, amount, currency):
            raise ProviderConfigurationError(f"fake provider: key {idempotency_key!r} reused with other arguments")
        return kept.refund_id

    def _answer(self, provider_payment_id: str) -> PaymentRetry | ProviderError:
        queued = self.answers.get(provider_payment_id) or []
        status = queued.pop(0) if queued else self.default
        if status == DECLINED:
            return PaymentDeclinedError("fake provider: Your card has insufficient funds.")
        if status in ("not_retryable", "settled"):
            return PaymentRetry(provider_payment_id, status, "canceled" if status == "not_retryable" else "succeeded")
        return PaymentRetry(provider_payment_id, ATTEMPTED, status)
