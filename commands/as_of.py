"""Invoices as of a moment (docs/throughput.md, As of).

`InvoicesAsOf` (used once the application is given a VersionIndex, as `ledger serve` does):
a read model of invoice versions (projections/invoice_versions.py) says which version
the moment falls on and gives the state kept nearest below it; at most a state interval of
events is then folded, handed over by the index with its answer (`Located.events`: `ledger
serve`'s index reads them in the same statement) or else read from the store. The same cost
for a first call in a process as for any other, in every process. Events the read model has
not seen yet are folded too, so a lagging (or empty) read model gives the same answer, later.

`InvoiceTimelines` (an application without a version index: the CLI, scripts), an in-process
cache of invoice histories, measured against the read model in docs/throughput.md:

Replaying an invoice's whole history for each `invoice_as_of` costs its length: reading and
decoding a 1,000-event invoice is ~10-25 ms, every call, even for a moment near its creation.
`InvoiceTimelines` keeps, per recently asked invoice, its events decoded, oldest first, the
running maximum of their timestamps, and a copy of the folded state every CHECKPOINT versions.
A call reads only the events stored since the cached ones (one indexed query, so another
process's writes are seen), finds the moment's version by bisection, and folds at most
CHECKPOINT - 1 events onto a copy of the nearest checkpoint below it.

Everything kept is derived from stored events, which never change: nothing is written, nothing
is on the write path, and a cache lost with the process is rebuilt by the next call (the first
call for an invoice costs a full replay, as before). Memory is bounded by a weight (MAX_WEIGHT
over every cached invoice, least recently asked evicted first) that counts each kept event and
each kept state by its version, since a state grows with the history it folds; an invoice that
alone would weigh more is replayed on each call, as before, and not kept.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from uuid import UUID

from ledger.errors import InvoiceNotFoundError
from ledger.invoices import Invoice

CHECKPOINT = 64  # versions between kept states: a call folds at most 63 events onto a copy
# What the cache may hold over every invoice, in events' worth (measured: a 1,000-event invoice
# of payments, its events and 15 kept states, takes ~1.2 MB, a weight of ~1,800): ~65 MB.
MAX_WEIGHT = 100_000
# A kept state weighs an event per VERSIONS_PER_EVENT_WEIGHT versions it folds: an invoice's
# state grows with its payments' ids, refunds and failed attempts, each far smaller than an event.
VERSIONS_PER_EVENT_WEIGHT = 10

# The invoice's stored events after a version (None: all), oldest first, decoded.
ReadEvents = Callable[[UUID, int | None], Sequence[object]]
# The invoice's stored events after a version (None: all) up to another (None: the last), decoded.
ReadEventsBetween = Callable[[UUID, int | None, int | None], Sequence[object]]


@dataclass(frozen=True)
class Located:
    """Where a moment falls in an invoice's indexed versions.

    `past`: the first indexed version whose stamp, or an earlier one's, is after the moment
    (the replay folds the versions before it); None when no indexed version is past the moment
    (or none is indexed): the versions after the indexed ones decide. `base`: the kept state at
    the highest kept version below `past` (any, when `past` is None), or None. `events`: when
    the index read them with the rest (one statement), the stored events after the base's
    version (all when no base) up to `past - 1` (no bound when `past` is None), decoded, oldest
    first; None: InvoicesAsOf reads them from the store."""

    past: int | None
    base: Invoice | None
    events: Iterable[object] | None = None


class VersionIndex(Protocol):
    def locate(self, invoice_id: UUID, moment: datetime) -> Located: ...


class InvoicesAsOf:
    """`as_of(invoice_id, moment)` from a VersionIndex and the store: what a full replay gives."""

    def __init__(self, index: VersionIndex, read: ReadEventsBetween) -> None:
        self._index = index
        self._read = read

    def as_of(self, invoice_id: UUID, moment: datetime) -> Invoice:
        located = self._index.locate(invoice_id, moment)
        invoice = located.base
        after = None if invoice is None else invoice.version
        events: Iterable[object]
        if located.past is None:
            # Every indexed version is at or before the moment (their running maximum is), so
            # the base's is too: fold on until the first event stamped after the moment.
            events = self._read(invoice_id, after, None) if located.events is None else located.events
            for event in events:
                if not isinstance(event, Invoice.Event) or event.timestamp > moment:
                    break
                invoice = event.mutate(invoice)
        elif located.past > (after or 0) + 1:
            upto = located.past - 1  # exactly the versions to fold
            events = self._read(invoice_id, after, upto) if located.events is None else located.events
            for event in events:
                if not isinstance(event, Invoice.Event):
                    break
                invoice = event.mutate(invoice)
        if invoice is None:
            raise InvoiceNotFoundError(invoice_id)
        return invoice


@dataclass
class _Timeline:
    events: list[Invoice.Event] = field(default_factory=list)
    # reached[i]: the latest timestamp among events[0..i]. invoice_as_of folds the events up
    # to the first one stamped after the moment, and that is where this running maximum first
    # passes the moment, so bisection finds it even if stamps are out of order.
    reached: list[datetime] = field(default_factory=list)
    checkpoints: list[Invoice] = field(default_factory=list)  # [k]: the state at version (k + 1) * CHECKPOINT
    latest: Invoice | None = None  # the state after every kept event (never handed out)
    ended: bool = False  # an event of another kind came under the invoice's id: nothing after it counts

    def extend(self, events: Sequence[object]) -> None:
        for event in events:
            if not isinstance(event, Invoice.Event):
                self.ended = True
                return
            self.latest = event.mutate(self.latest)
            self.events.append(event)
            self.reached.append(max(event.timestamp, self.reached[-1]) if self.reached else event.timestamp)
            if len(self.events) % CHECKPOINT == 0 and self.latest is not None:
                self.checkpoints.append(deepcopy(self.latest))

    @property
    def weight(self) -> int:
        """Its events, and its kept states by the versions they fold (CHECKPOINT, 2 CHECKPOINT, ...)."""
        kept = len(self.checkpoints)
        return len(self.events) + CHECKPOINT * kept * (kept + 1) // (2 * VERSIONS_PER_EVENT_WEIGHT)

    def as_of(self, moment: datetime) -> Invoice | None:
        count = bisect_right(self.reached, moment)  # the events folded: those before the first one after `moment`
        if count == 0:
            return None
        if count == len(self.events):
            return deepcopy(self.latest)
        kept = count // CHECKPOINT
        invoice = deepcopy(self.checkpoints[kept - 1]) if kept else None
        for event in self.events[kept * CHECKPOINT : count]:
            invoice = event.mutate(invoice)
        return invoice


class InvoiceTimelines:
    """`as_of(invoice_id, moment)`: the invoice as it stood at `moment`, as a full replay gives it."""

    def __init__(self, read: ReadEvents, max_weight: int = MAX_WEIGHT) -> None:
        self._read = read
        self._max_weight = max_weight
        self._timelines: OrderedDict[UUID, _Timeline] = OrderedDict()
        self._kept = 0  # the weight of every timeline
        # One call at a time: a call is short once its invoice is cached, and the cache's
        # bookkeeping (extend, evict) must not interleave.
        self._lock = threading.Lock()

    def as_of(self, invoice_id: UUID, moment: datetime) -> Invoice:
        with self._lock:
            timeline = self._timelines.pop(invoice_id, None)
            if timeline is None:
                timeline = _Timeline()
            else:
                self._kept -= timeline.weight
            if not timeline.ended:
                timeline.extend(self._read(invoice_id, len(timeline.events) or None))
            if timeline.events and timeline.weight <= self._max_weight:
                self._keep(invoice_id, timeline)
            invoice = timeline.as_of(moment)
        if invoice is None:
            raise InvoiceNotFoundError(invoice_id)
        return invoice

    def _keep(self, invoice_id: UUID, timeline: _Timeline) -> None:
        self._timelines[invoice_id] = timeline
        self._kept += timeline.weight
        while self._kept > self._max_weight:  # never the one just kept: it weighs at most the maximum
            _, evicted = self._timelines.popitem(last=False)
            self._kept -= evicted.weight
