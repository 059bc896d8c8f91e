"""NumberSeries: gap-free sequential numbers per series, with a deterministic aggregate id."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID, uuid4

from ledger.numbering import NumberSeries, series_id
from tests.unit.given import T0, drain


def started(series: str = "INV") -> NumberSeries:
    numbers = NumberSeries.start(series, at=T0)
    drain(numbers)
    return numbers


def test_a_series_starts_with_no_number_allocated() -> None:
    numbers = NumberSeries.start("INV", at=T0)
    [event] = drain(numbers)
    assert isinstance(event, NumberSeries.Started)
    assert (event.series, event.timestamp, event.originator_id) == ("INV", T0, series_id("INV"))
    assert (numbers.series, numbers.last) == ("INV", 0)


def test_allocate_gives_one_then_two_then_three() -> None:
    numbers = started()
    invoices = [uuid4(), uuid4(), uuid4()]
    allocated = [numbers.allocate(invoice_id, at=T0 + timedelta(minutes=i)) for i, invoice_id in enumerate(invoices)]
    assert allocated == [1, 2, 3]
    events = drain(numbers)
    assert [type(event) for event in events] == [NumberSeries.NumberAllocated] * 3
    assert [(event.sequence, event.invoice_id) for event in events] == [
        (n, str(i)) for n, i in zip(allocated, invoices, strict=True)
    ]
    assert numbers.last == 3


def test_each_allocation_is_a_new_version_of_the_series() -> None:
    numbers = started()
    numbers.allocate(uuid4(), at=T0)
    numbers.allocate(uuid4(), at=T0)
    assert numbers.version == 3


def test_series_are_numbered_independently() -> None:
    invoices, credits = started("INV"), started("CRD")
    assert [invoices.allocate(uuid4(), at=T0) for _ in range(3)] == [1, 2, 3]
    assert credits.allocate(uuid4(), at=T0) == 1


def test_a_series_id_is_deterministic_and_distinct_per_series() -> None:
    assert series_id("INV") == series_id("INV")
    assert series_id("INV") != series_id("CRD")
    assert series_id("INV").version == 5
    assert series_id("INV") == UUID("a8d141ee-5aa8-56be-9ca7-060a30123ad3")
    assert started("INV").id == series_id("INV")
