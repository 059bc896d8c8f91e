"""What a payment provider's own records say, read for reconciliation, as provider-neutral values.

Webhooks tell the ledger what happened as it happens (commands/ingestion/); reconciliation asks
the provider afterwards what it holds for a period, through list endpoints only, and compares.
The Stripe adapter (adapters/stripe/listing.py) implements `ProviderRecords`; every amount is
already converted into the ledger's units by the currency codec, and every object is decoded
into one of these (a field of the wrong type is a `ProviderRecordsError`, naming it).

Each list is read page by page (`Iterator[list[...]]`, one list per page): the engine stages a
page and looks its ledger side up in one query, so memory does not grow with the period.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from ledger.money import Money


@dataclass(frozen=True, slots=True)
class Period:
    """[start, end): objects the provider created at or after `start` and before `end`."""

    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class BalanceTransactionFact:
    """One movement of the provider balance (Stripe: a balance transaction).

    `kind` is the provider's type (`charge`, `payment`, `refund`, `payment_refund`,
    `adjustment`, `payout`, `stripe_fee`, ...); `amount` is gross (negative when money leaves
    the balance), `fee` what the provider kept, `net` = amount - fee. `source` is the id of the
    object that caused it (a charge, refund, dispute or payout), `payout` the payout that
    carried it to the bank when listed by payout."""

    id: str
    kind: str
    amount: Money
    fee: Money
    net: Money
    source: str | None
    status: str  # available | pending
    created: int  # Unix seconds, the provider's clock


@dataclass(frozen=True, slots=True)
class ChargeFact:
    id: str
    payment_id: str | None  # the PaymentIntent
    invoice_id: UUID | None  # metadata.invoice_id, when it names one of our invoices
    amount: Money
    amount_captured: Money
    amount_refunded: Money
    status: str  # succeeded | pending | failed
    captured: bool
    balance_transaction: str | None
    created: int


@dataclass(frozen=True, slots=True)
class RefundFact:
    id: str
    charge_id: str | None
    payment_id: str | None  # the PaymentIntent
    amount: Money
    status: str  # succeeded | pending | failed | canceled | requires_action
    balance_transaction: str | None
    created: int


@dataclass(frozen=True, slots=True)
class DisputeFact:
    id: str
    charge_id: str | None
    payment_id: str | None
    amount: Money
    status: str  # warning_* | needs_response | under_review | won | lost
    reason: str
    created: int


@dataclass(frozen=True, slots=True)
class PayoutFact:
    id: str
    amount: Money
    status: str  # paid | pending | in_transit | canceled | failed
    arrival_date: int
    failure_code: str
    failure_message: str
    created: int


@dataclass(frozen=True, slots=True)
class PaymentIntentFact:
    id: str
    invoice_id: UUID | None  # metadata.invoice_id
    amount: Money
    amount_received: Money
    status: str
    latest_charge: str | None
    created: int


class ProviderRecords(Protocol):
    """A provider's records, read through list endpoints, a page at a time.

    Each method yields the objects created within `period`, page by page (at most `page_size`
    per page, newest first as Stripe lists them). Errors: `ProviderUnavailableError` after the
    adapter's own retries (rate limits, 5xx, network), `ProviderConfigurationError` for a key
    or address that is wrong (naming which), never an SDK exception.
    """

    provider: str

    def balance_transactions(self, period: Period) -> Iterator[list[BalanceTransactionFact]]: ...

    def payout_transactions(self, payout_id: str) -> Iterator[list[BalanceTransactionFact]]:
        """Every balance transaction a payout carried (Stripe: `payout=`), whatever its date."""
        ...

    def charges(self, period: Period) -> Iterator[list[ChargeFact]]: ...

    def refunds(self, period: Period) -> Iterator[list[RefundFact]]: ...

    def disputes(self, period: Period) -> Iterator[list[DisputeFact]]: ...

    def payouts(self, period: Period) -> Iterator[list[PayoutFact]]: ...

    def payment_intents(self, period: Period) -> Iterator[list[PaymentIntentFact]]: ...
