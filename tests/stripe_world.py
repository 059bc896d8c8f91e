"""A Stripe account's history for reconciliation tests: the objects Stripe would list, and the
webhook events it would have sent about them, built together so that they agree.

Each money fact (a payment, a refund, a dispute, a payout) is a `Fact` with the webhook
payloads that report it; a test delivers some of them (withheld, duplicated, reordered as it
likes) and reads Stripe's side through `FakeRecords`, an in-memory `ProviderRecords` that pages
and filters as Stripe's list endpoints do. Fees exist only in balance transactions, as on Stripe.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from uuid import UUID

from commands.reconciliation.facts import (
    BalanceTransactionFact,
    ChargeFact,
    DisputeFact,
    PaymentIntentFact,
    PayoutFact,
    Period,
    RefundFact,
)
from ledger.money import Money
from tests.stripe_payloads import event_payload

PAGE = 100
DISPUTE_FEE = 1_500


@dataclass
class Fact:
    """One thing that happened on Stripe, and the webhook payloads that report it."""

    kind: str  # payment | refund | dispute | payout
    stripe_id: str
    webhooks: list[bytes] = field(default_factory=list)


class _Created(Protocol):
    @property
    def created(self) -> int: ...


T = TypeVar("T", bound=_Created)


@dataclass
class StripeWorld:
    """Objects as Stripe holds them, newest last; `facts` in the order they happened."""

    currency: str = "usd"
    clock: int = 1_790_000_000  # Unix seconds: Stripe's `created`
    charges: list[ChargeFact] = field(default_factory=list)
    intents: list[PaymentIntentFact] = field(default_factory=list)
    refunds: list[RefundFact] = field(default_factory=list)
    disputes: list[DisputeFact] = field(default_factory=list)
    payouts: list[PayoutFact] = field(default_factory=list)
    transactions: list[BalanceTransactionFact] = field(default_factory=list)
    carried: dict[str, list[BalanceTransactionFact]] = field(default_factory=dict)
    facts: list[Fact] = field(default_factory=list)
    _serial: int = 0
    _unpaid_out: list[BalanceTransactionFact] = field(default_factory=list)

    def _next(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}_{self._serial:08d}World"

    def _tick(self) -> int:
        self.clock += 60
        return self.clock

    def _money(self, amount: int) -> Money:
        return Money(amount, self.currency)

    def _transaction(self, kind: str, amount: int, fee: int, source: str) -> BalanceTransactionFact:
        txn = BalanceTransactionFact(
            id=self._next("txn"),
            kind=kind,
            amount=self._money(amount),
            fee=self._money(fee),
            net=self._money(amount - fee),
            source=source,
            status="available",
            created=self.clock,
        )
        self.transactions.append(txn)
        if kind != "payout":
            self._unpaid_out.append(txn)
        return txn

    def _event(self, event_type: str, resource: str, **obj: Any) -> bytes:
        return event_payload(event_type, resource, event_id=self._next("evt"), created=self.clock, **obj)

    # ------------------------------------------------------------------------ what happens

    def pay(self, invoice_id: UUID | None, amount: int, fee: int) -> Fact:
        created = self._tick()
        intent, charge = self._next("pi"), self._next("ch")
        txn = self._transaction("charge", amount, fee, charge)
        metadata = {"invoice_id": str(invoice_id)} if invoice_id else {}
        self.charges.append(
            ChargeFact(
                id=charge,
                payment_id=intent,
                invoice_id=invoice_id,
                amount=self._money(amount),
                amount_captured=self._money(amount),
                amount_refunded=self._money(0),
                status="succeeded",
                captured=True,
                balance_transaction=txn.id,
                created=created,
            )
        )
        self.intents.append(
            PaymentIntentFact(
                id=intent,
                invoice_id=invoice_id,
                amount=self._money(amount),
                amount_received=self._money(amount),
                status="succeeded",
                latest_charge=charge,
                created=created,
            )
        )
        paid = {
            "id": intent,
            "amount": amount,
            "amount_received": amount,
            "currency": self.currency,
            "status": "succeeded",
            "latest_charge": charge,
            "last_payment_error": None,
            "metadata": metadata,
        }
        captured = {
            "id": charge,
            "amount": amount,
            "amount_captured": amount,
            "amount_refunded": 0,
            "captured": True,
            "paid": True,
            "refunded": False,
            "status": "succeeded",
            "currency": self.currency,
            "payment_intent": intent,
            "metadata": metadata,
        }
        fact = Fact(
            "payment",
            intent,
            [
                self._event("payment_intent.succeeded", "payment_intent", **paid),
                self._event("charge.succeeded", "charge", **captured),
            ],
        )
        self.facts.append(fact)
        return fact

    def refund(self, payment: Fact, amount: int) -> Fact:
        created = self._tick()
        charge = self._charge_of(payment.stripe_id)
        refund_id = self._next("re")
        txn = self._transaction("refund", -amount, 0, refund_id)
        self.refunds.append(
            RefundFact(
                id=refund_id,
                charge_id=charge.id,
                payment_id=payment.stripe_id,
                amount=self._money(amount),
                status="succeeded",
                balance_transaction=txn.id,
                created=created,
            )
        )
        obj = {
            "id": refund_id,
            "amount": amount,
            "currency": self.currency,
            "charge": charge.id,
            "payment_intent": payment.stripe_id,
            "status": "succeeded",
        }
        fact = Fact("refund", refund_id, [self._event("refund.created", "refund", **obj)])
        self.facts.append(fact)
        return fact

    def dispute(self, payment: Fact, amount: int, outcome: str | None) -> Fact:
        """A dispute: the amount and Stripe's dispute fee withdrawn; given back if won."""
        created = self._tick()
        charge = self._charge_of(payment.stripe_id)
        dispute_id = self._next("dp")
        self._transaction("adjustment", -amount, DISPUTE_FEE, dispute_id)
        status = outcome or "needs_response"
        if outcome == "won":
            self._transaction("adjustment", amount, 0, dispute_id)
        self.disputes.append(
            DisputeFact(
                id=dispute_id,
                charge_id=charge.id,
                payment_id=payment.stripe_id,
                amount=self._money(amount),
                status=status,
                reason="fraudulent",
                created=created,
            )
        )
        obj = {
            "id": dispute_id,
            "amount": amount,
            "currency": self.currency,
            "charge": charge.id,
            "payment_intent": payment.stripe_id,
            "reason": "fraudulent",
        }
        webhooks = [self._event("charge.dispute.created", "dispute", **obj, status="needs_response")]
        if outcome is not None:
            webhooks.append(self._event("charge.dispute.closed", "dispute", **obj, status=outcome))
        fact = Fact("dispute", dispute_id, webhooks)
        self.facts.append(fact)
        return fact

    def payout(self) -> Fact | None:
        """Pay the balance out: every movement not paid out yet, if it comes to more than zero."""
        carried = list(self._unpaid_out)
        amount = sum(txn.net.amount for txn in carried)
        if amount <= 0:
            return None
        created = self._tick()
        payout_id = self._next("po")
        own = self._transaction("payout", -amount, 0, payout_id)
        self._unpaid_out = []
        self.carried[payout_id] = [*carried, own]
        self.payouts.append(
            PayoutFact(
                id=payout_id,
                amount=self._money(amount),
                status="paid",
                arrival_date=created + 86_400,
                failure_code="",
                failure_message="",
                created=created,
            )
        )
        obj = {"id": payout_id, "amount": amount, "currency": self.currency, "status": "paid"}
        fact = Fact("payout", payout_id, [self._event("payout.paid", "payout", **obj)])
        self.facts.append(fact)
        return fact

    def _charge_of(self, intent: str) -> ChargeFact:
        return next(c for c in self.charges if c.payment_id == intent)

    def balance(self) -> int:
        """Stripe's balance: the net of every balance transaction, payouts included."""
        return sum(txn.net.amount for txn in self.transactions)


class FakeRecords:
    """`ProviderRecords` over a StripeWorld, paging and filtering as Stripe's list endpoints do
    (newest first, `created` in [start, end), at most 100 a page)."""

    provider = "stripe"

    def __init__(self, world: StripeWorld) -> None:
        self.world = world
        self.pages_read = 0

    def _pages(self, objects: Sequence[T], period: Period | None) -> Iterator[list[T]]:
        if period is not None:
            start, end = int(period.start.timestamp()), int(period.end.timestamp())
            objects = [o for o in objects if start <= o.created < end]
        newest_first = sorted(objects, key=lambda o: o.created, reverse=True)
        for first in range(0, max(len(newest_first), 1), PAGE):
            self.pages_read += 1
            yield list(newest_first[first : first + PAGE])

    def balance_transactions(self, period: Period) -> Iterator[list[BalanceTransactionFact]]:
        return self._pages(self.world.transactions, period)

    def payout_transactions(self, payout_id: str) -> Iterator[list[BalanceTransactionFact]]:
        return self._pages(self.world.carried.get(payout_id, []), None)

    def charges(self, period: Period) -> Iterator[list[ChargeFact]]:
        return self._pages(self.world.charges, period)

    def refunds(self, period: Period) -> Iterator[list[RefundFact]]:
        return self._pages(self.world.refunds, period)

    def disputes(self, period: Period) -> Iterator[list[DisputeFact]]:
        return self._pages(self.world.disputes, period)

    def payouts(self, period: Period) -> Iterator[list[PayoutFact]]:
        return self._pages(self.world.payouts, period)

    def payment_intents(self, period: Period) -> Iterator[list[PaymentIntentFact]]:
        return self._pages(self.world.intents, period)
