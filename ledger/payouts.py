"""The Payout aggregate: money the processor sends from its balance to our bank account.

A payout moves no customer's money, only ours, from one account to another: `payout.paid`
posts Dr bank / Cr processor_balance (ledger/accounting.py). A payout can fail after it was
reported paid (the bank returns it): the failure then reverses that posting. Each payout is
keyed by the provider's id (uuid5), so a second report of it collides instead of posting twice.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from ledger.currencies import require_currency
from ledger.errors import InvalidAmountError
from ledger.events import CopiedCheaply, MovesMoney, SharedWhenCopied
from ledger.money import Money
from ledger.validation import require_text

IN_TRANSIT = "in_transit"
PAID = "paid"
FAILED = "failed"

_NAMESPACE = UUID("3c9a7e21-5f0d-4b6e-8a14-d2e7c0b9f562")


def payout_id_for(provider: str, provider_payout_id: str) -> UUID:
    return uuid5(_NAMESPACE, f"{provider}:{provider_payout_id}")


class Payout(CopiedCheaply, Aggregate):
    TOPIC = "payout"

    class Event(SharedWhenCopied, Aggregate.Event):
        pass

    class Reported(Event, Aggregate.Created):
        TOPIC = "payout.reported"
        provider: str
        provider_payout_id: str
        amount: int
        currency: str

    Created = Reported

    class Paid(MovesMoney, Event):
        """The money reached the bank: Dr bank, Cr processor_balance."""

        TOPIC = "payout.paid"
        amount: int
        currency: str

        def apply(self, aggregate: Payout) -> None:
            aggregate.status = PAID

    class Failed(MovesMoney, Event):
        """The payout failed; `reversed` is what comes back to the processor balance (the amount,
        when it had been reported paid; 0 otherwise)."""

        TOPIC = "payout.failed"
        code: str
        message: str
        reversed: int
        currency: str

        def apply(self, aggregate: Payout) -> None:
            aggregate.status = FAILED
            aggregate.failure = {"code": self.code, "message": self.message}

    def __init__(self, provider: str, provider_payout_id: str, amount: int, currency: str) -> None:
        self.provider = provider
        self.provider_payout_id = provider_payout_id
        self.amount = amount
        self.currency = currency
        self.status = IN_TRANSIT
        self.failure: dict[str, str] | None = None

    @classmethod
    def report(cls, *, provider: str, provider_payout_id: str, amount: Money, at: datetime) -> Payout:
        if amount.amount <= 0:
            raise InvalidAmountError(f"payout amount must be positive, got {amount.amount}", field="amount")
        return cls._create(
            cls.Reported,
            id=payout_id_for(provider, provider_payout_id),
            timestamp=at,
            provider=require_text(provider, field="provider", limit=40),
            provider_payout_id=require_text(provider_payout_id, field="provider_payout_id", limit=255),
            amount=amount.amount,
            currency=require_currency(amount.currency),
        )

    def pay(self, *, at: datetime) -> bool:
        """Record that it reached the bank; False if already paid or failed (a late report)."""
        if self.status != IN_TRANSIT:
            return False
        self.trigger_event(self.Paid, timestamp=at, amount=self.amount, currency=self.currency)
        return True

    def fail(self, *, code: str, message: str, at: datetime) -> bool:
        """Record the failure once, reversing the payout if it had been paid."""
        if self.status == FAILED:
            return False
        self.trigger_event(
            self.Failed,
            timestamp=at,
            code=require_text(code, field="code", limit=200, required=False),
            message=require_text(message, field="message", limit=5000, required=False),
            reversed=self.amount if self.status == PAID else 0,
            currency=self.currency,
        )
        return True
