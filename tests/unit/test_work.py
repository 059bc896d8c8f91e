"""Work.attempt: a step that raises leaves every aggregate as it was before the step."""

from __future__ import annotations

from copy import deepcopy
from uuid import UUID, uuid4

import pytest
from eventsourcing.domain import Aggregate

from commands.work import Work
from ledger.invoices import Invoice
from ledger.lines import Line
from tests.unit.given import T0, at


def _draft() -> Invoice:
    invoice = Invoice.create_draft(invoice_id=uuid4(), customer={"email": "a@example.com"}, currency="usd", at=T0)
    invoice.collect_events()
    return invoice


def _work(*aggregates: Aggregate) -> Work:
    """A work over a store that, like the repository, hands out a fresh copy at every load."""
    stored: dict[UUID, Aggregate] = {a.id: a for a in aggregates}
    return Work(lambda aggregate_id: deepcopy(stored.get(aggregate_id)))


def _line(n: int) -> Line:
    return Line.price(line_id=f"l{n}", description="x", quantity=1, unit_amount=100 * n)


def test_a_failed_step_puts_back_an_aggregate_an_earlier_step_changed() -> None:
    invoice = _draft()
    work = _work(invoice)
    work.invoice(invoice.id).add_line(_line(1), at=at(1))
    work.add(work.invoice(invoice.id))

    def fails() -> None:
        work.invoice(invoice.id).add_line(_line(2), at=at(2))
        raise RuntimeError("refused")

    with pytest.raises(RuntimeError):
        work.attempt(fails)
    kept = work.invoice(invoice.id)
    assert list(kept.lines) == ["l1"]
    assert [type(e).__name__ for e in kept.pending_events] == ["LineAdded"]
    assert [a.id for a in work.changed] == [invoice.id]


def test_a_failed_step_forgets_what_it_loaded_and_created() -> None:
    invoice = _draft()
    work = _work(invoice)

    def fails() -> None:
        work.invoice(invoice.id).add_line(_line(1), at=at(1))
        work.add(work.invoice(invoice.id))
        work.add(_draft())
        raise RuntimeError("refused")

    with pytest.raises(RuntimeError):
        work.attempt(fails)
    assert work.changed == []
    assert work.invoice(invoice.id).lines == {}


def test_a_step_that_succeeds_keeps_its_changes_inside_a_failed_outer_step() -> None:
    invoice = _draft()
    work = _work(invoice)

    def inner() -> None:
        work.invoice(invoice.id).add_line(_line(1), at=at(1))
        work.add(work.invoice(invoice.id))

    def outer() -> None:
        work.attempt(inner)
        assert list(work.invoice(invoice.id).lines) == ["l1"]
        raise RuntimeError("refused")

    with pytest.raises(RuntimeError):
        work.attempt(outer)
    assert work.changed == []
    assert work.invoice(invoice.id).lines == {}


def test_a_reference_held_across_a_failed_step_sees_the_state_put_back() -> None:
    invoice = _draft()
    work = _work(invoice)
    held = work.invoice(invoice.id)
    held.add_line(_line(1), at=at(1))
    work.add(held)

    def fails() -> None:
        work.invoice(invoice.id).add_line(_line(2), at=at(2))
        raise RuntimeError("refused")

    with pytest.raises(RuntimeError):
        work.attempt(fails)
    assert list(held.lines) == ["l1"]
    assert len(held.pending_events) == 1


def test_an_id_known_absent_is_not_loaded_and_a_failed_step_that_created_it_leaves_it_absent() -> None:
    loaded: list[UUID] = []
    created = _draft()
    present = _draft()

    def load(aggregate_id: UUID) -> Aggregate | None:
        loaded.append(aggregate_id)
        return deepcopy(present) if aggregate_id == present.id else None

    work = Work(load)
    work.known_absent([created.id])
    assert work.get(created.id, Invoice) is None
    assert work.get(present.id, Invoice) is not None
    assert loaded == [present.id]  # only the one not known absent was read
    assert work.loads == [(created.id, None), (present.id, present.version)]  # both checkable as stale

    def fails() -> None:
        work.add(created)
        raise RuntimeError("refused")

    with pytest.raises(RuntimeError):
        work.attempt(fails)
    assert work.get(created.id, Invoice) is None
    work.add(created)  # a later step creates it: it is seen from then on, and saved
    assert work.get(created.id, Invoice) is created
    assert loaded == [present.id]
