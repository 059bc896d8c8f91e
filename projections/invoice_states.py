"""Aggregate states folded from the log as a projection reads it, without replaying per event.

Read models need the aggregate as it stood at each event (an invoice's currency for postings,
its totals for the status row; a payment's refunds for its row). Folding each event onto the
state kept from the previous one is O(1) per event. A state that is missing or out of step
(after a restart, or a rolled-back batch) is reloaded from the event store at the version just
before the event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger.invoices import Invoice

A = TypeVar("A", bound=Aggregate)

# States kept per model and kind: enough for the aggregates active at one time in a log, few
# enough that a rebuild's memory stays flat as the log grows. One evicted too early costs one
# load from the store when its next event comes.
STATES_KEPT = 10_000

LoadInvoice = Callable[[UUID, int], Invoice]


class AggregateStates(Generic[A]):
    """The latest state of each aggregate of one `kind`, kept up to date event by event."""

    def __init__(self, kind: type[A], load: Callable[[UUID, int], A], max_size: int = STATES_KEPT) -> None:
        self._kind = kind
        self._event_kind: type[Aggregate.Event] = kind.Event
        self._load = load
        self._states: dict[UUID, A] = {}
        self._max_size = max_size

    def apply(self, event: Any) -> A:
        """The aggregate right after `event` (one of `kind`'s events)."""
        aggregate_id: UUID = event.originator_id
        kept = previous = self._states.get(aggregate_id)
        if event.originator_version == 1:
            previous = None
        elif previous is None or previous.version != event.originator_version - 1:
            previous = self._load(aggregate_id, event.originator_version - 1)
        aggregate = event.mutate(previous)
        if not isinstance(aggregate, self._kind):
            raise TypeError(f"{type(event).__name__} did not yield a {self._kind.__name__}")
        if aggregate is not kept:
            self._keep(aggregate_id, aggregate)
        return aggregate

    def _keep(self, aggregate_id: UUID, aggregate: A) -> None:
        self._states.pop(aggregate_id, None)
        if len(self._states) >= self._max_size:
            # The oldest first: a state evicted too early costs one load from the store.
            del self._states[next(iter(self._states))]
        self._states[aggregate_id] = aggregate

    def prepare(self, events: Iterable[Any]) -> None:
        """Load now every state `apply` would otherwise load for these events (in log order)."""
        seen: set[UUID] = set()
        for event in events:
            if not isinstance(event, self._event_kind) or event.originator_id in seen:
                continue
            aggregate_id: UUID = event.originator_id
            seen.add(aggregate_id)
            version = event.originator_version
            kept = self._states.get(aggregate_id)
            if version > 1 and (kept is None or kept.version != version - 1):
                self._keep(aggregate_id, self._load(aggregate_id, version - 1))

    def forget(self) -> None:
        """Drop every state: after a failed batch, they may be ahead of what was committed."""
        self._states.clear()


class InvoiceStates(AggregateStates[Invoice]):
    def __init__(self, load: LoadInvoice, max_size: int = STATES_KEPT) -> None:
        super().__init__(Invoice, load, max_size)
