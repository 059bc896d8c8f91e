"""Aggregate states folded from the log as a projection reads it, without replaying per event.

Read models need the aggregate as it stood at each event (an invoice's currency for postings,
its totals for the status row; a payment's refunds for its row). Folding each event onto the
state kept from the previous one is O(1) per event. A state that is missing or out of step
(after a restart, or a rolled-back batch) is reloaded from the event store at the version just
before the event.

Several read models need the same invoices' states (invoice status its latest, invoice versions
one every STATE_INTERVAL versions): they share one `AggregateStates`, and `fold` applies a batch
once for all of them (a rebuild spent a fifth of its time folding each invoice twice,
docs/throughput.md §Replay).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate, BaseAggregate, CanMutateAggregate

from ledger.invoices import Invoice

A = TypeVar("A", bound=Aggregate)

# Whole aggregate states kept per kind (an invoice's is about 1.6 KB, a payment's 0.55 KB, and
# more than that in a process's peak). The cap decides a rebuild's peak memory: it is flat only
# once every cache is full, and at 10,000 the invoices' was not yet full in a 100,000-event log
# (6,667 invoices: 1.10x from 100k to 1M events; docs/throughput.md §Peak memory of a rebuild).
# At 5,000 it fills in the first 75,000 events of a log of 15-event invoices (1.02x). What it
# costs: a state evicted too early is one load from the store when its next event comes (0.3 ms
# of CPU, about three events' worth of a rebuild). In log order an invoice's events are close
# together, so a rebuild loads nothing at either cap; a live follower pays only when more than
# 5,000 aggregates of a kind get events between two events of one of them.
STATES_KEPT = 5_000
# Small facts kept per aggregate (an invoice's currency, its last version and position: 100-250
# bytes each): twice as many as the states cost a few hundred KB more, and spare a follower
# whose open invoices outnumber the states kept a second load (or read) per late event.
FACTS_KEPT = 10_000

LoadInvoice = Callable[[UUID, int], Invoice]
#: Called with each state as a fold reaches it; what it returns (when not None) is kept by the
#: fold's result, under the aggregate's id and version, before later events change the state.
Take = Callable[[A], object]


def folds_plainly(event_class: type, aggregate_class: type) -> bool:
    """Whether `AggregateStates.apply` may fold an event of `event_class` onto an existing
    `aggregate_class` without the library's `mutate`, doing what that method does: the id and
    version checks, the event's `apply`, then the version and the modified time set. Only when
    the class's `mutate` is the library's own (a subclass that overrides it, such as a creation
    event, takes the slow path) and the aggregate's `id`, `version` and `modified_on` are the
    library's plain properties over `_id`, `_version` and `_modified_on`."""
    return (
        getattr(event_class, "mutate", None) is _LIBRARY_MUTATE
        and getattr(aggregate_class, "id", None) is _LIBRARY_ID
        and getattr(aggregate_class, "version", None) is _LIBRARY_VERSION
        and getattr(aggregate_class, "modified_on", None) is _LIBRARY_MODIFIED_ON
    )


_LIBRARY_MUTATE = CanMutateAggregate.mutate
_LIBRARY_ID = BaseAggregate.__dict__["id"]
_LIBRARY_VERSION = BaseAggregate.__dict__["version"]
_LIBRARY_MODIFIED_ON = BaseAggregate.__dict__["modified_on"]


class Folded(Generic[A]):
    """What folding one batch gave: each aggregate's state after its last event in the batch
    (`latest`, in the order the batch first reached them), and what the `Take`s took."""

    def __init__(self) -> None:
        self.latest: dict[UUID, A] = {}
        self.taken: dict[tuple[UUID, int], object] = {}


class AggregateStates(Generic[A]):
    """The latest state of each aggregate of one `kind`, kept up to date event by event."""

    def __init__(self, kind: type[A], load: Callable[[UUID, int], A], max_size: int = STATES_KEPT) -> None:
        self._kind = kind
        self._event_kind: type[Aggregate.Event] = kind.Event
        self._load = load
        self._states: dict[UUID, A] = {}
        self.max_size = max_size  # public, like the other models' bounds: a test sets it to 1 to evict at every event
        self._takes: list[Take[A]] = []
        # The batch folded last and what it gave: the runner hands the read models at one
        # position the same list, so the models sharing these states fold it once between them.
        self._folded: tuple[Sequence[Any], Folded[A]] | None = None
        self._prepared: Sequence[Any] | None = None
        self._plain: dict[type, bool] = {}  # event class -> folds_plainly(it, kind), found once

    def watch(self, take: Take[A]) -> None:
        """Have every `fold` call `take` with each state it reaches (see `Take`)."""
        self._takes.append(take)

    def fold(self, batch: Sequence[Any]) -> Folded[A]:
        """Apply the batch's events of `kind` (its items are `(position, event)`), once whoever
        asks: a second call with the same batch (the same list) answers what the first gave,
        whose states are the ones kept, so they are only good until the next batch is folded."""
        if self._folded is not None and self._folded[0] is batch:
            return self._folded[1]
        folded: Folded[A] = Folded()
        event_kind, takes, latest, taken = self._event_kind, self._takes, folded.latest, folded.taken
        for _, event in batch:
            if isinstance(event, event_kind):
                aggregate = latest[event.originator_id] = self.apply(event)
                for take in takes:
                    value = take(aggregate)
                    if value is not None:
                        taken[(event.originator_id, event.originator_version)] = value
        self._folded = (batch, folded)
        return folded

    def apply(self, event: Any) -> A:
        """The aggregate right after `event` (one of `kind`'s events)."""
        aggregate_id: UUID = event.originator_id
        version: int = event.originator_version
        kept = previous = self._states.get(aggregate_id)
        if version == 1:
            previous = None
        elif previous is None or previous.version != version - 1:
            previous = self._load(aggregate_id, version - 1)
        plain = self._plain.get(type(event))
        if plain is None:
            plain = self._plain[type(event)] = folds_plainly(type(event), self._kind)
        if plain and previous is not None and previous._id == aggregate_id and previous._version == version - 1:
            # The library's `mutate`, its checks passed (a failing one takes the call below, for
            # its error): a third of a fold's time went to that call and its property accessors.
            event.apply(previous)
            previous._version = version
            previous._modified_on = event.timestamp
            aggregate = previous
        else:
            aggregate = event.mutate(previous)
        if not isinstance(aggregate, self._kind):
            raise TypeError(f"{type(event).__name__} did not yield a {self._kind.__name__}")
        if aggregate is not kept:
            self._keep(aggregate_id, aggregate)
        return aggregate

    def _keep(self, aggregate_id: UUID, aggregate: A) -> None:
        self._states.pop(aggregate_id, None)
        if len(self._states) >= self.max_size:
            # The oldest first: a state evicted too early costs one load from the store.
            del self._states[next(iter(self._states))]
        self._states[aggregate_id] = aggregate

    def prepare_batch(self, batch: Sequence[Any]) -> None:
        """`prepare` for a batch of `(position, event)`, once for the models that share it."""
        if batch is not self._prepared:
            self.prepare(event for _, event in batch)
            self._prepared = batch

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
        self._folded = self._prepared = None


class InvoiceStates(AggregateStates[Invoice]):
    def __init__(self, load: LoadInvoice, max_size: int = STATES_KEPT) -> None:
        super().__init__(Invoice, load, max_size)
