"""commands/as_of.py without a database: a fake store of decoded events. The moment's version
is found as the replay finds it (up to the first event stamped after the moment) even when
stamps go backwards, and an invoice evicted from the cache is read again in full."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import takewhile
from typing import Any
from uuid import UUID, uuid4

import pytest

from commands.application import _price
from commands.as_of import InvoiceTimelines
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
