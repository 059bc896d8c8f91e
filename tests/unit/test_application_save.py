"""`BillingApplication.save` collects an aggregate's events without the library's runtime
Protocol checks (docs/throughput.md §Webhook path); what it stores, returns and snapshots is the
library's."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from uuid import uuid4

import pytest
from eventsourcing.application import Application, ProcessingEvent

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


def _steps(function: Callable[..., object], first: str) -> list[str]:
    """The function's source lines from `first` on, stripped, blank lines left out."""
    lines = [line.strip() for line in inspect.getsource(function).splitlines()]
    return [line for line in lines[lines.index(first) :] if line]


def test_the_library_s_save_is_still_the_one_the_override_repeats() -> None:
    """The override repeats the library's save after collecting the events (eventsourcing is
    pinned): an upgrade that changes what the library's save or its collecting does (a check, a
    step) fails here, to be read and carried into `BillingApplication.save` before it is taken."""
    assert _steps(Application.save, "processing_event: ProcessingEvent[TAggregateID] = ProcessingEvent()") == [
        "processing_event: ProcessingEvent[TAggregateID] = ProcessingEvent()",
        "processing_event.collect_events(*objs, **kwargs)",
        "recordings = self._record(processing_event)",
        "self._take_snapshots(processing_event)",
        "self._notify(recordings)",
        "self.notify(processing_event.events)  # Deprecated.",
        "return recordings",
    ]
    assert _steps(ProcessingEvent.collect_events, "for obj in objs:") == [
        "for obj in objs:",
        "if obj is None:",
        "continue",
        "if isinstance(obj, DomainEventProtocol):",
        "self.events.append(obj)",
        "else:",
        "if isinstance(obj, CollectEventsProtocol):",
        "for event in obj.collect_events():",
        "self.events.append(event)",
        "self.aggregates[obj.id] = obj",
        "self.saved_kwargs.update(kwargs)",
    ]
