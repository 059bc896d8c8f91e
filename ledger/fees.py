"""The ProcessorFee aggregate: what the payment processor kept from one movement of our balance.

Webhooks never carry Stripe's fees; balance transactions do (reconciliation reads them). Each
fee is recorded once, keyed by the provider's balance transaction id (uuid5), so a second run
that reads the same transaction collides instead of posting twice. `processor-fee.recorded`
posts Dr processor_fees / Cr processor_balance (ledger/accounting.py): the processor took it
from the balance it holds for us. A negative fee (the processor returned a fee) posts the other
way round.
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

_NAMESPACE = UUID("9e2f4b6a-7c13-4d58-a0e9-5b1c8d3f7a26")


def fee_id_for(provider: str, balance_transaction_id: str) -> UUID:
    return uuid5(_NAMESPACE, f"{provider}:{balance_transaction_id}")


class ProcessorFee(CopiedCheaply, Aggregate):
    TOPIC = "processor-fee"

    class Event(SharedWhenCopied, Aggregate.Event):
        pass

    class Recorded(MovesMoney, Event, Aggregate.Created):
        """Dr processor_fees, Cr processor_balance: the processor kept `amount` of our money."""

        TOPIC = "processor-fee.recorded"
        provider: str
        balance_transaction_id: str
        source_id: str | None  # the charge, refund or dispute the fee was taken on
        invoice_id: str | None  # the invoice that movement belongs to, when it is ours
        amount: int
        currency: str

    Created = Recorded

    def __init__(
        self,
        provider: str,
        balance_transaction_id: str,
        source_id: str | None,
        invoice_id: str | None,
        amount: int,
        currency: str,
    ) -> None:
        self.provider = provider
        self.balance_transaction_id = balance_transaction_id
        self.source_id = source_id
        self.invoice_id = invoice_id
        self.amount = amount
        self.currency = currency

    @classmethod
    def record(
        cls,
        *,
        provider: str,
        balance_transaction_id: str,
        amount: Money,
        source_id: str | None,
        invoice_id: UUID | None,
        at: datetime,
    ) -> ProcessorFee:
        if amount.amount == 0:
            raise InvalidAmountError("a processor fee of 0 records nothing", field="fee")
        return cls._create(
            cls.Recorded,
            id=fee_id_for(provider, balance_transaction_id),
            timestamp=at,
            provider=require_text(provider, field="provider", limit=40),
            balance_transaction_id=require_text(balance_transaction_id, field="balance_transaction", limit=255),
            source_id=source_id,
            invoice_id=str(invoice_id) if invoice_id is not None else None,
            amount=amount.amount,
            currency=require_currency(amount.currency),
        )
