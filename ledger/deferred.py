"""Money movements reported before the payment they belong to, kept until it arrives.

A provider reports refunds and disputes by its own payment id; the report may come before the
report of the payment itself (Stripe delivers in any order). Such a movement is not an error
and must not be lost: it is deferred here, under the provider payment's id, and released, in
the same transaction, when the payment succeeds. Each movement has a key (`refund:re_1`,
`dispute-opened:dp_1`, `dispute-closed:dp_1`), so a second report of it defers nothing more.

The payment's success is recorded here too (`PaymentArrived`), in the transaction that applies
it. That is what makes a deferral and the success conflict when they are decided at the same
moment by two writers: both write this aggregate, so one of them is retried and sees the other
(without it, each could miss the other and leave a refund waiting for good).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger.events import CopiedCheaply, SharedWhenCopied
from ledger.named_ids import named_id
from ledger.validation import require_text

REFUND = "refund"
DISPUTE_OPENED = "dispute-opened"
DISPUTE_CLOSED = "dispute-closed"
KINDS = (REFUND, DISPUTE_OPENED, DISPUTE_CLOSED)

WAITING = "waiting"
RELEASED = "released"

_NAMESPACE = UUID("0b7e5c9a-2d41-4f38-b6e0-91c2a7d4e853")


def deferred_id_for(provider: str, provider_payment_id: str) -> UUID:
    return named_id(_NAMESPACE, f"{provider}:{provider_payment_id}")


class DeferredMovements(CopiedCheaply, Aggregate):
    TOPIC = "deferred-movements"

    class Event(SharedWhenCopied, Aggregate.Event):
        pass

    class Started(Event, Aggregate.Created):
        TOPIC = "deferred-movements.started"
        provider: str
        provider_payment_id: str

    Created = Started

    class MovementDeferred(Event):
        TOPIC = "deferred-movements.movement-deferred"
        key: str
        kind: str
        fields: dict[str, Any]  # what the movement needs: ids and integer amounts, as reported
        event_id: str  # the provider event that reported it

        def apply(self, aggregate: DeferredMovements) -> None:
            aggregate.movements[self.key] = {
                "kind": self.kind,
                "fields": dict(self.fields),
                "event_id": self.event_id,
                "status": WAITING,
            }

    class PaymentArrived(Event):
        TOPIC = "deferred-movements.payment-arrived"

        def apply(self, aggregate: DeferredMovements) -> None:
            aggregate.payment_arrived = True

    class MovementReleased(Event):
        TOPIC = "deferred-movements.movement-released"
        key: str
        outcome: str  # what applying it did: "applied" or "refused"
        detail: str

        def apply(self, aggregate: DeferredMovements) -> None:
            aggregate.movements[self.key]["status"] = RELEASED
            aggregate.movements[self.key]["outcome"] = self.outcome

    def __init__(self, provider: str, provider_payment_id: str) -> None:
        self.provider = provider
        self.provider_payment_id = provider_payment_id
        self.movements: dict[str, dict[str, Any]] = {}
        self.payment_arrived = False

    @classmethod
    def start(cls, *, provider: str, provider_payment_id: str, at: datetime) -> DeferredMovements:
        return cls._create(
            cls.Started,
            id=deferred_id_for(provider, provider_payment_id),
            timestamp=at,
            provider=provider,
            provider_payment_id=provider_payment_id,
        )

    def defer(self, *, kind: str, movement_id: str, fields: dict[str, Any], event_id: str, at: datetime) -> bool:
        """Keep a movement until the payment arrives; False if this movement is kept already."""
        if kind not in KINDS:
            raise ValueError(f"unknown movement kind {kind!r}")
        key = f"{kind}:{require_text(movement_id, field='movement_id', limit=255)}"
        if key in self.movements:
            return False
        self.trigger_event(self.MovementDeferred, timestamp=at, key=key, kind=kind, fields=fields, event_id=event_id)
        return True

    def arrive(self, *, at: datetime) -> None:
        """The payment succeeded: from now on its movements are applied, not deferred."""
        if not self.payment_arrived:
            self.trigger_event(self.PaymentArrived, timestamp=at)

    def waiting(self) -> list[tuple[str, dict[str, Any]]]:
        """Movements still waiting, in the order they can be applied: refunds and dispute
        openings as reported, then dispute closings (a dispute closes after it opens)."""
        found = [(k, m) for k, m in self.movements.items() if m["status"] == WAITING]
        return sorted(found, key=lambda item: item[1]["kind"] == DISPUTE_CLOSED)

    def release(self, key: str, *, outcome: str, detail: str, at: datetime) -> None:
        self.trigger_event(self.MovementReleased, timestamp=at, key=key, outcome=outcome, detail=detail[:1000])
