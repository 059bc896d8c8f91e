"""commands/as_of.py without a database: a fake store of decoded events. The moment's version
is found as the replay finds it (up to the first event stamped after the moment) even when
stamps go backwards, and an invoice evicted from the cache is read again in full. From a fake
version index (the read model's answers, in memory), as of is the replay with the index empty,
lagging or current, and a current index leaves less than a state interval to read."""

from __future__ import annotations

from collections.abc import Sequence
from copy import deepcopy
from datetime import UTC, datetime, timedelta
from itertools import takewhile
from typing import Any
from uuid import UUID, uuid4

import pytest

from commands.application import _price
from commands.as_of import InvoicesAsOf, InvoiceTimelines, Located
from commands.messages import NewLine
from ledger.errors import InvoiceNotFoundError
from ledger.invoices import BANK, Invoice
from ledger.money import Money

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class FakeStore:
    """Decoded events per invoice, and the reads asked of it (invoice, after version)."""

    def __init__(self) -> None:
        self.events: dict[UUID, list[Any]] = {}
        self.reads: list[tuple[UUID, int | None]] = []

    def read(self, invoice_id: UUID, version: int | None) -> Sequence[object]:
        self.reads.append((invoice_id, version))
        return [e for e in self.events.get(invoice_id, []) if version is None or e.originator_version > version]

    def invoice(self, seconds: Sequence[int]) -> UUID:
        """An invoice created at T0, then one payment per entry, stamped T0 + that many seconds."""
        invoice = Invoice.create_draft(invoice_id=uuid4(), customer={"email": "a@example.com"}, currency="usd", at=T0)
        invoice.add_line(_price(NewLine("Work", 1, 1_000_000), "line-1"), at=T0)
        invoice.issue(sequence=1, at=T0)
        for s in seconds:
            at = T0 + timedelta(seconds=s)
            invoice.apply_payment(payment_id=str(uuid4()), amount=Money(100, "usd"), fee=0, cash_account=BANK, at=at)
        self.events[invoice.id] = list(invoice.collect_events())
        return invoice.id


def _replayed(store: FakeStore, invoice_id: UUID, moment: datetime) -> dict[str, Any] | None:
    invoice = None
    for event in takewhile(lambda e: e.timestamp <= moment, store.events[invoice_id]):
        invoice = event.mutate(invoice)
    return None if invoice is None else dict(vars(invoice))


def test_stamps_that_go_backwards_give_what_the_replay_gives() -> None:
    store = FakeStore()
    stamps = [5, 1, 9, 3, 9, 12, 2, 20, *range(21, 200)]  # another process's clock behind, now and then
    invoice_id = store.invoice(stamps)
    timelines = InvoiceTimelines(store.read)
    with pytest.raises(InvoiceNotFoundError):
        timelines.as_of(invoice_id, T0 - timedelta(microseconds=1))  # before it was created
    for s in range(202):
        moment = T0 + timedelta(seconds=s)
        assert dict(vars(timelines.as_of(invoice_id, moment))) == _replayed(store, invoice_id, moment), s


def test_an_evicted_invoice_is_read_again_in_full_and_a_kept_one_only_from_its_last_version() -> None:
    store = FakeStore()
    first, second = store.invoice(range(100)), store.invoice(range(100))
    timelines = InvoiceTimelines(store.read, max_weight=150)  # room for one of them (103 events, a kept state)
    end = T0 + timedelta(seconds=100)
    timelines.as_of(first, end)
    timelines.as_of(first, end)
    timelines.as_of(second, end)  # evicts the first
    assert dict(vars(timelines.as_of(first, end))) == _replayed(store, first, end)
    assert store.reads == [(first, None), (first, 103), (second, None), (first, None)]
    with pytest.raises(InvoiceNotFoundError):
        timelines.as_of(uuid4(), end)


def test_an_invoice_heavier_than_the_whole_cache_is_replayed_on_each_call_and_not_kept() -> None:
    store = FakeStore()
    invoice_id = store.invoice(range(100))
    timelines = InvoiceTimelines(store.read, max_weight=50)
    end = T0 + timedelta(seconds=100)
    for _ in range(2):
        assert dict(vars(timelines.as_of(invoice_id, end))) == _replayed(store, invoice_id, end)
    assert store.reads == [(invoice_id, None), (invoice_id, None)]


class FakeVersionIndex:
    """The invoice_versions read model as projections/invoice_versions.py keeps it, in memory:
    the running maximum of stamps per version and a state every `interval` versions, for the
    first `applied` events of each invoice (the rest not projected yet: a lagging read model).
    With `with_events`, it also hands over the stored events to fold (as the index does that
    reads them in its locating statement): after the base's version, before `past`."""

    def __init__(self, store: FakeStore, applied: int, interval: int = 8, *, with_events: bool = False) -> None:
        self.store = store
        self.with_events = with_events
        self.reached: dict[UUID, list[datetime]] = {}
        self.kept: dict[UUID, dict[int, Invoice]] = {}
        for invoice_id, events in store.events.items():
            state: Invoice | None = None
            reached: list[datetime] = []
            kept: dict[int, Invoice] = {}
            for event in events[:applied]:
                state = event.mutate(state)
                reached.append(max(event.timestamp, reached[-1]) if reached else event.timestamp)
                if event.originator_version % interval == 0 and state is not None:
                    kept[event.originator_version] = deepcopy(state)
            self.reached[invoice_id], self.kept[invoice_id] = reached, kept

    def locate(self, invoice_id: UUID, moment: datetime) -> Located:
        reached = self.reached.get(invoice_id, [])
        past = next((version for version, at in enumerate(reached, start=1) if at > moment), None)
        below = [v for v in self.kept.get(invoice_id, {}) if past is None or v < past]
        base = deepcopy(self.kept[invoice_id][max(below)]) if below else None  # decoded afresh, as from a row
        if not self.with_events:
            return Located(past=past, base=base)
        after = 0 if base is None else base.version
        events = [
            e
            for e in self.store.events.get(invoice_id, [])
            if after < e.originator_version and (past is None or e.originator_version < past)
        ]
        return Located(past=past, base=base, events=iter(events))  # an iterator: read once, as the index's rows


@pytest.mark.parametrize("with_events", [False, True])
@pytest.mark.parametrize("applied", [0, 5, 17, 10_000])  # empty, lagging (before and past kept states), current
def test_as_of_from_a_version_index_is_the_replay_however_far_the_index_got(applied: int, with_events: bool) -> None:
    store = FakeStore()
    invoice_id = store.invoice([5, 1, 9, 3, 9, 12, 2, 20, *range(21, 60)])  # stamps that go backwards
    reads: list[tuple[int | None, int | None]] = []

    def between(read_id: UUID, after: int | None, upto: int | None) -> Sequence[object]:
        reads.append((after, upto))
        events = store.read(read_id, after)
        return [e for e in events if upto is None or e.originator_version <= upto]

    as_of = InvoicesAsOf(FakeVersionIndex(store, applied, with_events=with_events), between)
    stamps = [e.timestamp for e in store.events[invoice_id]]
    for moment in sorted({*stamps, *(s - timedelta(microseconds=1) for s in stamps)}):
        expected = _replayed(store, invoice_id, moment)
        if expected is None:
            with pytest.raises(InvoiceNotFoundError):
                as_of.as_of(invoice_id, moment)
        else:
            assert dict(vars(as_of.as_of(invoice_id, moment))) == expected, moment
    if with_events:  # the index handed over every event to fold: the store was never asked
        assert reads == []
    if applied >= len(stamps):  # current: never more than a state interval of events read
        assert all((upto if upto is not None else len(stamps)) - (after or 0) < 8 for after, upto in reads)
    with pytest.raises(InvoiceNotFoundError):
        as_of.as_of(uuid4(), T0 + timedelta(days=1))
