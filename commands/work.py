"""One attempt of one command: the aggregates it loaded and the ones it changed.

A command made of several steps (a webhook event that records itself, applies a payment and
releases the refunds that were waiting for it) loads each aggregate once through its `Work`,
so every step sees what the earlier ones did, and the command saves `changed` in one
transaction. `attempt` runs one step all or nothing: if the step raises, every aggregate is put
back as it was before the step, pending events included, so a refused step leaves no half.
"""

from __future__ import annotations

from collections.abc import Callable
from copy import deepcopy
from typing import TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger.errors import InvoiceNotFoundError, PaymentNotFoundError
from ledger.invoices import DELETED, Invoice
from ledger.payments import Payment

T = TypeVar("T", bound=Aggregate)
R = TypeVar("R")

Load = Callable[[UUID], Aggregate | None]


class Work:
    def __init__(self, load: Load) -> None:
        self._load = load
        self._seen: dict[UUID, Aggregate | None] = {}
        self._changed: dict[UUID, None] = {}  # insertion-ordered set of changed ids

    def get(self, aggregate_id: UUID, kind: type[T]) -> T | None:
        """The aggregate as this attempt has it (loaded once), or None if there is none of that kind."""
        if aggregate_id not in self._seen:
            self._seen[aggregate_id] = self._load(aggregate_id)
        found = self._seen[aggregate_id]
        return found if isinstance(found, kind) else None

    def invoice(self, invoice_id: UUID) -> Invoice:
        invoice = self.get(invoice_id, Invoice)
        if invoice is None or invoice.status == DELETED:
            raise InvoiceNotFoundError(invoice_id)
        return invoice

    def payment(self, payment_id: UUID) -> Payment:
        payment = self.get(payment_id, Payment)
        if payment is None:
            raise PaymentNotFoundError(payment_id)
        return payment

    def add(self, aggregate: Aggregate) -> None:
        """Mark an aggregate (new or loaded through `get`) as changed: it is saved with the rest."""
        self._seen[aggregate.id] = aggregate
        self._changed[aggregate.id] = None

    def touch(self, *aggregates: Aggregate) -> None:
        for aggregate in aggregates:
            self.add(aggregate)

    @property
    def changed(self) -> list[Aggregate]:
        """Changed aggregates with events to save, in the order they were first changed."""
        found = [self._seen[i] for i in self._changed]
        return [a for a in found if a is not None and a.pending_events]

    def attempt(self, step: Callable[[], R]) -> R:
        """Run `step`; if it raises, undo everything it did to this work, then re-raise."""
        seen = deepcopy(self._seen)
        changed = dict(self._changed)
        try:
            return step()
        except BaseException:
            self._seen, self._changed = seen, changed
            raise
