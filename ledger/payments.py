"""The Payment aggregate: one attempt to collect money for an invoice, as the provider sees it.

pending -> processing -> succeeded | failed | canceled; a failed attempt on the same provider
payment may still succeed (Stripe retries a PaymentIntent), but a success is never undone by a
late failure, a late `processing` or a late cancellation. Captured money is recorded whatever
state the payment was in before: the provider's report of a capture is the fact. A succeeded
payment can be refunded (partially, several times, never beyond what was captured) and
disputed (won or lost). Refunds and disputes are keyed by the provider's ids, so a second
report of the same refund is recognised (`has_refund`) rather than applied twice.

Postings come from the Invoice's events, not from these: each money movement is posted once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from ledger.currencies import require_currency
from ledger.errors import (
    DisputeExceedsCapturedError,
    DuplicateDisputeError,
    DuplicateRefundError,
    InvalidAmountError,
    PaymentAlreadySucceededError,
    PaymentStateError,
    RefundExceedsCapturedError,
    UnknownDisputeError,
)
from ledger.events import CopiedCheaply, SharedWhenCopied
from ledger.money import Money, require_minor_units
from ledger.named_ids import named_id
from ledger.validation import require_text

PENDING = "pending"
PROCESSING = "processing"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELED = "canceled"

OFFLINE = "offline"

_PAYMENT_NAMESPACE = UUID("6f0f7f4e-1c2b-4a6e-9a55-0d1c3b8a2e11")
PROVIDER_ID_LIMIT = 255
REFERENCE_LIMIT = 255


def payment_id_for(provider: str, provider_payment_id: str) -> UUID:
    """A provider's payment gets a deterministic id: a second creation collides, never duplicates."""
    return named_id(_PAYMENT_NAMESPACE, f"{provider}:{provider_payment_id}")


def require_payment_reference(value: object) -> str:
    """An offline payment's reference (cheque number, bank transfer id): non-empty text, without
    the spaces around it, so that a retry typed with a stray space is the same payment."""
    return require_text(value, field="reference", limit=REFERENCE_LIMIT).strip()


def offline_payment_id(invoice_id: UUID, reference: str) -> UUID:
    """The same reference on the same invoice is the same payment: a client's retry finds the
    payment it recorded instead of recording the money twice. A reference may pay several
    invoices (one transfer for two invoices), so the invoice is part of the id."""
    return uuid5(_PAYMENT_NAMESPACE, f"{OFFLINE}:{invoice_id}:{require_payment_reference(reference)}")


class Payment(CopiedCheaply, Aggregate):
    TOPIC = "payment"

    class Event(SharedWhenCopied, Aggregate.Event):
        pass

    class Initiated(Event, Aggregate.Created):
        TOPIC = "payment.initiated"
        invoice_id: str
        provider: str
        provider_payment_id: str
        amount: int
        currency: str

    Created = Initiated  # the library looks for a "Created" event; ours has a domain name

    class Succeeded(Event):
        TOPIC = "payment.succeeded"
        amount_captured: int
        fee: int
        charge_id: str | None

        def apply(self, aggregate: Payment) -> None:
            aggregate.status = SUCCEEDED
            aggregate.amount_captured = self.amount_captured
            aggregate.fee = self.fee
            aggregate.charge_id = self.charge_id

    class Failed(Event):
        TOPIC = "payment.failed"
        attempt_id: str
        code: str
        message: str

        def apply(self, aggregate: Payment) -> None:
            aggregate.status = FAILED
            aggregate.failure = {"code": self.code, "message": self.message}
            aggregate.failed_attempt_ids.append(self.attempt_id)

    class Processing(Event):
        """The provider is collecting the money (a bank debit takes days)."""

        TOPIC = "payment.processing"

        def apply(self, aggregate: Payment) -> None:
            aggregate.status = PROCESSING

    class Canceled(Event):
        """The provider will not collect this payment any more (Stripe: PaymentIntent canceled)."""

        TOPIC = "payment.canceled"
        reason: str

        def apply(self, aggregate: Payment) -> None:
            aggregate.status = CANCELED
            aggregate.cancellation_reason = self.reason

    class Refunded(Event):
        TOPIC = "payment.refunded"
        refund_id: str
        amount: int

        def apply(self, aggregate: Payment) -> None:
            aggregate.refunds[self.refund_id] = self.amount

    class Disputed(Event):
        TOPIC = "payment.disputed"
        dispute_id: str
        amount: int
        reason: str

        def apply(self, aggregate: Payment) -> None:
            aggregate.disputes[self.dispute_id] = {"amount": self.amount, "reason": self.reason, "status": "open"}

    class DisputeWon(Event):
        TOPIC = "payment.dispute-won"
        dispute_id: str

        def apply(self, aggregate: Payment) -> None:
            aggregate.disputes[self.dispute_id]["status"] = "won"

    class DisputeLost(Event):
        TOPIC = "payment.dispute-lost"
        dispute_id: str

        def apply(self, aggregate: Payment) -> None:
            aggregate.disputes[self.dispute_id]["status"] = "lost"

    def __init__(self, invoice_id: str, provider: str, provider_payment_id: str, amount: int, currency: str) -> None:
        self.invoice_id = invoice_id
        self.provider = provider
        self.provider_payment_id = provider_payment_id
        self.amount = amount
        self.currency = currency
        self.status = PENDING
        self.amount_captured = 0
        self.fee = 0
        self.charge_id: str | None = None
        self.failure: dict[str, str] | None = None
        self.cancellation_reason = ""
        self.failed_attempt_ids: list[str] = []
        self.refunds: dict[str, int] = {}
        self.disputes: dict[str, dict[str, Any]] = {}

    @classmethod
    def initiate(
        cls,
        *,
        payment_id: UUID,
        invoice_id: UUID,
        provider: object,
        provider_payment_id: object,
        amount: Money,
        at: datetime,
    ) -> Payment:
        if amount.amount <= 0:
            raise InvalidAmountError(f"payment amount must be positive, got {amount.amount}", field="amount")
        return cls._create(
            cls.Initiated,
            id=payment_id,
            timestamp=at,
            invoice_id=str(invoice_id),
            provider=require_text(provider, field="provider", limit=40),
            provider_payment_id=require_text(provider_payment_id, field="provider_payment_id", limit=PROVIDER_ID_LIMIT),
            amount=amount.amount,
            currency=require_currency(amount.currency),
        )

    def succeed(self, *, amount_captured: int, fee: int, charge_id: str | None, at: datetime) -> None:
        if self.status == SUCCEEDED:
            raise PaymentStateError(self.id, self.status, "succeed")
        require_minor_units(amount_captured, field="amount_captured")
        require_minor_units(fee, field="fee")
        if amount_captured <= 0:
            raise InvalidAmountError("amount_captured must be positive", field="amount_captured")
        if fee > amount_captured:
            raise InvalidAmountError(f"fee {fee} exceeds the {amount_captured} captured", field="fee")
        if charge_id is not None:
            require_text(charge_id, field="charge_id", limit=PROVIDER_ID_LIMIT)
        self.trigger_event(self.Succeeded, timestamp=at, amount_captured=amount_captured, fee=fee, charge_id=charge_id)

    def fail(self, *, attempt_id: str, code: str, message: str, at: datetime) -> None:
        """Record a failed attempt; `attempt_id` is the provider's id for it (Stripe: the charge)."""
        if self.status == SUCCEEDED:
            raise PaymentAlreadySucceededError(self.id)
        self.trigger_event(
            self.Failed,
            timestamp=at,
            attempt_id=require_text(attempt_id, field="attempt_id", limit=PROVIDER_ID_LIMIT),
            code=require_text(code, field="code", limit=200, required=False),
            message=require_text(message, field="message", limit=5000, required=False),
        )

    def start_processing(self, *, at: datetime) -> bool:
        """The provider reports the money on its way; False (nothing recorded) once the payment
        is processing already or has reached an end: a late report changes nothing."""
        if self.status not in (PENDING, FAILED):
            return False
        self.trigger_event(self.Processing, timestamp=at)
        return True

    def cancel(self, *, reason: str, at: datetime) -> bool:
        """The provider gave up collecting; False when it is canceled already or has succeeded."""
        if self.status in (SUCCEEDED, CANCELED):
            return False
        self.trigger_event(
            self.Canceled, timestamp=at, reason=require_text(reason, field="reason", limit=200, required=False)
        )
        return True

    def refund(self, *, refund_id: str, amount: int, at: datetime) -> None:
        if self.status != SUCCEEDED:
            raise PaymentStateError(self.id, self.status, "refund")
        require_text(refund_id, field="refund_id", limit=PROVIDER_ID_LIMIT)
        if refund_id in self.refunds:
            raise DuplicateRefundError(self.id, refund_id)
        require_minor_units(amount, field="amount")
        if amount <= 0:
            raise InvalidAmountError("refund amount must be positive", field="amount")
        if amount > self.refundable:
            raise RefundExceedsCapturedError(self.id, amount, self.refundable)
        self.trigger_event(self.Refunded, timestamp=at, refund_id=refund_id, amount=amount)

    def dispute(self, *, dispute_id: str, amount: int, reason: str, at: datetime) -> None:
        if self.status != SUCCEEDED:
            raise PaymentStateError(self.id, self.status, "dispute")
        if self.provider == OFFLINE:  # a bank transfer or cheque has no chargeback
            raise PaymentStateError(self.id, "offline", "dispute")
        require_text(dispute_id, field="dispute_id", limit=PROVIDER_ID_LIMIT)
        require_minor_units(amount, field="amount")
        if amount <= 0:
            raise InvalidAmountError("dispute amount must be positive", field="amount")
        if dispute_id in self.disputes:
            raise DuplicateDisputeError(self.id, dispute_id)
        if amount > self.refundable:
            raise DisputeExceedsCapturedError(self.id, amount, self.refundable)
        self.trigger_event(
            self.Disputed,
            timestamp=at,
            dispute_id=dispute_id,
            amount=amount,
            reason=require_text(reason, field="reason", limit=200, required=False),
        )

    def close_dispute(self, *, dispute_id: str, won: bool, at: datetime) -> None:
        dispute = self.disputes.get(dispute_id)
        if dispute is None or dispute["status"] != "open":
            raise UnknownDisputeError(self.id, dispute_id)
        self.trigger_event(self.DisputeWon if won else self.DisputeLost, timestamp=at, dispute_id=dispute_id)

    def has_failed_attempt(self, attempt_id: str) -> bool:
        return attempt_id in self.failed_attempt_ids

    def has_refund(self, refund_id: str) -> bool:
        return refund_id in self.refunds

    def has_dispute(self, dispute_id: str) -> bool:
        return dispute_id in self.disputes

    @property
    def amount_refunded(self) -> int:
        return sum(self.refunds.values())

    @property
    def amount_disputed(self) -> int:
        """Open disputes: held back by the processor until they close."""
        return sum(int(d["amount"]) for d in self.disputes.values() if d["status"] == "open")

    @property
    def amount_dispute_lost(self) -> int:
        return sum(int(d["amount"]) for d in self.disputes.values() if d["status"] == "lost")

    @property
    def refundable(self) -> int:
        return self.amount_captured - self.amount_refunded - self.amount_disputed - self.amount_dispute_lost

    @property
    def cash_account(self) -> str:
        return "bank" if self.provider == OFFLINE else "processor_balance"
