"""The read models' fold (projections/invoice_states.py `AggregateStates`): an ordinary event is
applied without the library's `mutate` (`folds_plainly`), and the state it gives must be the one
`mutate` gives; an event class that overrides `mutate`, a creation event, or an aggregate with
its own `version` take the library's path; a state out of step still raises the library's error."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.domain import BaseAggregate, OriginatorIDError, OriginatorVersionError

from ledger.invoices import BANK, Invoice
from ledger.lines import Line
from ledger.money import Money
from ledger.payments import OFFLINE, Payment
from projections.invoice_states import AggregateStates, folds_plainly
from tests.unit.given import CUSTOMER, T0, at, drain


class _Noted(Invoice.Event):
    """An invoice event whose class overrides `mutate`: the fold must call it."""

    note: str

    def mutate(self, aggregate: Any) -> Any:
        invoice = super().mutate(aggregate)
        invoice.memo = f"mutated: {self.note}"
        return invoice


# The library's own properties of an aggregate, which the fold does the work of.
_LIBRARY_PROPERTIES = {name: BaseAggregate.__dict__[name] for name in ("id", "version", "modified_on")}


class _OwnVersion:
    @property
    def version(self) -> int:
        return 0

    @property
    def modified_on(self) -> None:
        return None


def _refused(aggregate_id: UUID, version: int) -> Any:
    raise AssertionError(f"nothing to load in a fold from version 1 ({aggregate_id} {version})")


def _story() -> tuple[list[Any], list[Any]]:
    """An invoice's and a payment's events: lines, issue, payments, a refund, a failed attempt."""
    invoice = Invoice.create_draft(invoice_id=uuid4(), customer=CUSTOMER, currency="usd", at=T0)
    invoice.add_line(Line.price(line_id="l1", description="Work", quantity="2", unit_amount=5_000), at=at(1))
    invoice.add_line(Line.price(line_id="l2", description="More", quantity="1", unit_amount=700), at=at(2))
    invoice.remove_line("l2", at=at(3))
    invoice.issue(sequence=1, at=at(4))
    payment = Payment.initiate(
        payment_id=uuid4(),
        invoice_id=invoice.id,
        provider=OFFLINE,
        provider_payment_id="cheque 1",
        amount=Money(10_000, "usd"),
        at=at(5),
    )
    payment.succeed(amount_captured=10_000, fee=0, charge_id=None, at=at(5))
    invoice.apply_payment(payment_id=str(payment.id), amount=Money(10_000, "usd"), fee=0, cash_account=BANK, at=at(5))
    payment.refund(refund_id="re_1", amount=2_500, at=at(6))
    invoice.apply_refund(
        payment_id=str(payment.id), refund_id="re_1", amount=Money(2_500, "usd"), cash_account=BANK, at=at(6)
    )
    return drain(invoice), drain(payment)


def _replayed(events: list[Any]) -> Any:
    aggregate = None
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


@pytest.mark.parametrize("which", ["invoice", "payment"])
def test_a_fold_gives_the_state_the_library_mutate_gives(which: str) -> None:
    invoice_events, payment_events = _story()
    kind, events = (Invoice, invoice_events) if which == "invoice" else (Payment, payment_events)
    states: AggregateStates[Any] = AggregateStates(kind, _refused)
    folded = [vars(states.apply(event)).copy() for event in events]
    expected = []
    aggregate = None
    for event in events:
        aggregate = event.mutate(aggregate)
        expected.append(vars(aggregate).copy())
    assert folded == expected
    assert any(folds_plainly(type(event), kind) for event in events)  # the fast path was taken


def test_ordinary_events_fold_plainly_and_creations_do_not() -> None:
    assert folds_plainly(Invoice.LineAdded, Invoice)
    assert folds_plainly(Invoice.PaymentApplied, Invoice)
    assert folds_plainly(Payment.Succeeded, Payment)
    assert not folds_plainly(Invoice.Created, Invoice)  # the library's creation `mutate`
    assert not folds_plainly(Payment.Initiated, Payment)
    assert not folds_plainly(_Noted, Invoice)  # its own `mutate`
    assert not folds_plainly(Invoice.LineAdded, _OwnVersion)  # an aggregate's own version property
    own_id = type("_OwnId", (), {**_LIBRARY_PROPERTIES, "id": property(lambda self: None)})
    assert folds_plainly(Invoice.LineAdded, type("_Library", (), _LIBRARY_PROPERTIES))
    assert not folds_plainly(Invoice.LineAdded, own_id)  # an aggregate's own id property


def test_an_event_class_that_overrides_mutate_is_folded_by_it() -> None:
    invoice_events, _ = _story()
    states: AggregateStates[Invoice] = AggregateStates(Invoice, _refused)
    for event in invoice_events:
        states.apply(event)
    last = invoice_events[-1]
    noted = _Noted(  # type: ignore[call-arg]
        originator_id=last.originator_id,
        originator_version=last.originator_version + 1,
        timestamp=at(7),
        note="hello",
    )
    invoice = states.apply(noted)
    assert invoice.memo == "mutated: hello"
    assert invoice.version == noted.originator_version
    assert invoice.modified_on == at(7)


def test_a_loaded_state_of_another_aggregate_raises_the_library_error() -> None:
    invoice_events, _ = _story()
    other = _replayed(_story()[0][:3])

    def load(aggregate_id: UUID, version: int) -> Invoice:
        return other  # at version 3, as asked, but another invoice

    states: AggregateStates[Invoice] = AggregateStates(Invoice, load)
    with pytest.raises(OriginatorIDError):
        states.apply(invoice_events[3])


def test_a_loaded_state_at_another_version_raises_the_library_error() -> None:
    invoice_events, _ = _story()
    behind = _replayed(invoice_events[:2])

    def load(aggregate_id: UUID, version: int) -> Invoice:
        return behind  # version 2 when version 3 was asked for

    states: AggregateStates[Invoice] = AggregateStates(Invoice, load)
    with pytest.raises(OriginatorVersionError):
        states.apply(invoice_events[3])
