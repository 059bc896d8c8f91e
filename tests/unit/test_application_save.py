"""`BillingApplication.save` collects an aggregate's events without the library's runtime
Protocol checks (docs/throughput.md §Webhook path); what it stores, returns and snapshots is the
library's."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import uuid4

import pytest

from adapters.clock import ManualClock
from commands.application import BillingApplication
from ledger.numbering import NumberSeries, series_id
from tests.unit.given import T0, at


@pytest.fixture
def app() -> Iterator[BillingApplication]:
    app = BillingApplication(clock=ManualClock(T0), env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    yield app
    app.close()


def test_saving_aggregates_and_an_event_stores_every_pending_event_in_order(app: BillingApplication) -> None:
    first = NumberSeries.start("A", at=at(0))
    first.allocate(uuid4(), at=at(1))
    second = NumberSeries.start("B", at=at(2))
    loose = NumberSeries.start("C", at=at(3))
    (started_c,) = loose.collect_events()  # saved as a bare event, not through its aggregate

    recordings = app.save(first, None, second, started_c)

    stored = [(event.originator_id, event.originator_version) for _, event in app.events_after(0, 100)]
    expected = [(series_id("A"), 1), (series_id("A"), 2), (series_id("B"), 1), (series_id("C"), 1)]
    assert stored == expected
    assert [(r.domain_event.originator_id, r.domain_event.originator_version) for r in recordings] == expected
    assert list(first.collect_events()) == []  # collected: a second save stores nothing twice
    assert app.save(first) == []


def test_a_number_series_saved_to_a_multiple_of_the_interval_is_snapshotted(app: BillingApplication) -> None:
    series = NumberSeries.start("INV", at=at(0))
    for _ in range(98):
        series.allocate(uuid4(), at=at(1))
    app.save(series)  # version 99
    assert app.snapshots is not None
    assert list(app.snapshots.get(series_id("INV"))) == []
    series.allocate(uuid4(), at=at(2))
    app.save(series)  # version 100

    (snapshot,) = app.snapshots.get(series_id("INV"))
    assert snapshot.originator_version == 100
    assert snapshot.state["last"] == 99
