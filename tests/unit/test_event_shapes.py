"""Stored events have explicit, stable topics, carry plain JSON values only (no Enum, no tuple),
and every shape ever stored stays readable.

The aggregates and their events are found by walking the code (tests/unit/event_classes.py),
not from a list: a new aggregate or event class is checked without anyone adding it here. Every
topic at every `class_version` has a pinned example (tests/fixtures/events, recorded by
tests/event_examples.py), loaded through the application's mapper on every run.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import get_topic, resolve_topic

from adapters.clock import ManualClock
from commands.application import BillingApplication
from commands.ingestion.provider_events import ProviderEvent, VerifiedEvent
from ledger.deferred import DISPUTE_CLOSED, REFUND, DeferredMovements
from ledger.invoices import BANK, PROCESSOR_BALANCE, Invoice
from ledger.lines import Line
from ledger.money import Money
from ledger.numbering import NumberSeries
from ledger.payments import Payment
from ledger.payouts import Payout
from tests.event_examples import FIXTURES, example_path, read_example
from tests.unit.event_classes import event_classes, stored_aggregates, stored_event_classes
from tests.unit.given import T0, at, drain

AGGREGATES: list[type[Aggregate]] = stored_aggregates()
#: The aggregates the stories below drive through their commands (the others' shapes are pinned).
STORY_AGGREGATES: list[type[Aggregate]] = [Invoice, Payment, NumberSeries, DeferredMovements, ProviderEvent, Payout]
LIBRARY_FIELDS = {"originator_id", "originator_version", "timestamp", "originator_topic"}
EXAMPLES = sorted(FIXTURES.glob("*/v*.json"))


def every_invoice_event() -> list[Any]:
    draft = Invoice.create_draft(
        invoice_id=uuid4(),
        customer={"email": "ap@example.com", "name": "Example"},
        currency="usd",
        at=T0,
        due_date="2026-04-01",
        metadata={"po": "42"},
    )
    draft.add_line(Line.price(line_id="l1", description="a", quantity="1.5", unit_amount=600, tax_rate="10"), at=at(1))
    draft.add_line(Line.price(line_id="l2", description="b", quantity=1, unit_amount=100), at=at(1))
    draft.change_line(Line.price(line_id="l1", description="a", quantity=1, unit_amount=1000), at=at(2))
    draft.remove_line("l2", at=at(2))
    draft.change_details(memo="Thanks", at=at(3))
    draft.issue(sequence=1, at=at(4))
    draft.start_checkout(provider="stripe", session_id="cs_1", amount=Money(1000, "usd"), expires_at=at(600), at=at(5))
    draft.close_checkout(session_id="cs_1", completed=False, at=at(5))
    draft.record_failed_attempt(payment_id="pay_0", code="card_declined", message="Declined", at=at(5))
    draft.apply_payment(payment_id="pay_1", amount=Money(1200, "usd"), fee=30, cash_account=PROCESSOR_BALANCE, at=at(6))
    draft.apply_refund(payment_id="pay_1", refund_id="re_1", amount=Money(100, "usd"), cash_account=BANK, at=at(7))
    draft.open_dispute(payment_id="pay_1", dispute_id="dp_1", amount=Money(100, "usd"), at=at(8))
    draft.close_dispute(dispute_id="dp_1", won=False, at=at(9))

    void = Invoice.create_draft(invoice_id=uuid4(), customer={"email": "a@example.com"}, currency="usd", at=T0)
    void.add_line(Line.price(line_id="l1", description="a", quantity=1, unit_amount=1000), at=at(1))
    void.issue(sequence=2, at=at(2))
    void.mark_uncollectible(at=at(3))
    void.void(at=at(4))

    deleted = Invoice.create_draft(invoice_id=uuid4(), customer={"email": "a@example.com"}, currency="usd", at=T0)
    deleted.delete_draft(at=at(1))
    return drain(draft) + drain(void) + drain(deleted)


def every_payment_and_series_event() -> list[Any]:
    payment = Payment.initiate(
        payment_id=uuid4(),
        invoice_id=uuid4(),
        provider="stripe",
        provider_payment_id="pi_1",
        amount=Money(1000, "usd"),
        at=T0,
    )
    payment.start_processing(at=at(1))
    payment.fail(attempt_id="ch_0", code="card_declined", message="Declined", at=at(1))
    payment.succeed(amount_captured=1000, fee=30, charge_id="ch_1", at=at(2))
    payment.refund(refund_id="re_1", amount=100, at=at(3))
    payment.dispute(dispute_id="dp_1", amount=100, reason="fraudulent", at=at(4))
    payment.dispute(dispute_id="dp_2", amount=100, reason="duplicate", at=at(4))
    payment.close_dispute(dispute_id="dp_1", won=True, at=at(5))
    payment.close_dispute(dispute_id="dp_2", won=False, at=at(5))
    canceled = Payment.initiate(
        payment_id=uuid4(),
        invoice_id=uuid4(),
        provider="stripe",
        provider_payment_id="pi_2",
        amount=Money(1000, "usd"),
        at=T0,
    )
    canceled.cancel(reason="abandoned", at=at(1))
    numbers = NumberSeries.start("INV", at=T0)
    numbers.allocate(uuid4(), at=at(1))
    return drain(payment) + drain(canceled) + drain(numbers)


def every_provider_event() -> list[Any]:
    deferred = DeferredMovements.start(provider="stripe", provider_payment_id="pi_1", at=T0)
    deferred.defer(
        kind=REFUND, movement_id="re_1", fields={"refund_id": "re_1", "amount": 100}, event_id="evt_1", at=T0
    )
    deferred.defer(
        kind=DISPUTE_CLOSED,
        movement_id="dp_1",
        fields={"dispute_id": "dp_1", "won": True, "amount": 100, "reason": "fraudulent"},
        event_id="evt_2",
        at=T0,
    )
    deferred.arrive(at=at(1))
    deferred.release("refund:re_1", outcome="applied", detail="", at=at(1))
    received = ProviderEvent.receive(
        provider="stripe",
        event=VerifiedEvent("evt_1", "refund.created", 1, False, "{}", api_version="2026-10-28.endive"),
        at=T0,
    )
    received.handled(outcome="waiting", detail="for pi_1", at=T0)
    received.handled(outcome="applied", detail="", at=at(1))
    unmatched = ProviderEvent.receive(
        provider="stripe", event=VerifiedEvent("evt_3", "payment_intent.succeeded", 1, False, "{}"), at=T0
    )
    unmatched.handled(outcome="unmatched", detail="no invoice", at=T0)
    unmatched.reprocess(outcome="applied", detail="payment succeeded", at=at(2))
    payout = Payout.report(provider="stripe", provider_payout_id="po_1", amount=Money(1000, "usd"), at=T0)
    payout.pay(at=at(1))
    payout.fail(code="account_closed", message="The bank account was closed", at=at(2))
    return drain(deferred) + drain(received) + drain(unmatched) + drain(payout)


def non_json_values(value: Any, path: str) -> list[str]:
    """Paths of every value that is not plain JSON (str, int, bool, None, list, dict of str keys)."""
    if type(value) in (str, int, bool, type(None)):  # exact types: a str or int Enum is refused
        return []
    if type(value) is list:
        return [bad for i, item in enumerate(value) for bad in non_json_values(item, f"{path}[{i}]")]
    if type(value) is dict:
        found = [f"{path}: key {key!r}" for key in value if type(key) is not str]
        return found + [bad for key, item in value.items() for bad in non_json_values(item, f"{path}.{key}")]
    return [f"{path}: {type(value).__name__}"]


# ------------------------------------------------------------------------------ topics


@pytest.mark.parametrize("aggregate", AGGREGATES, ids=lambda a: a.__name__)
def test_every_aggregate_has_an_explicit_topic(aggregate: type[Aggregate]) -> None:
    topic = vars(aggregate).get("TOPIC")
    assert isinstance(topic, str)
    assert topic
    assert get_topic(aggregate) == topic


@pytest.mark.parametrize("aggregate", AGGREGATES, ids=lambda a: a.__name__)
def test_every_event_class_has_its_own_explicit_topic(aggregate: type[Aggregate]) -> None:
    classes = event_classes(aggregate)
    assert classes
    for name, cls in classes.items():
        topic = vars(cls).get("TOPIC")
        assert isinstance(topic, str), f"{aggregate.__name__}.{name} has no TOPIC of its own"
        assert topic.startswith(f"{aggregate.TOPIC}."), topic  # type: ignore[attr-defined]
        assert get_topic(cls) == topic


def test_topics_are_unique_across_aggregates() -> None:
    topics = [cls.TOPIC for aggregate in AGGREGATES for cls in set(event_classes(aggregate).values())]  # type: ignore[attr-defined]
    assert len(topics) == len(set(topics))


def test_the_invoice_topics_are_the_documented_ones() -> None:
    assert {cls.TOPIC for cls in event_classes(Invoice).values()} == {  # type: ignore[attr-defined]
        "invoice.created",
        "invoice.line-added",
        "invoice.line-changed",
        "invoice.line-removed",
        "invoice.details-changed",
        "invoice.draft-deleted",
        "invoice.issued",
        "invoice.payment-applied",
        "invoice.payment-attempt-failed",
        "invoice.checkout-started",
        "invoice.checkout-closed",
        "invoice.paid",
        "invoice.overpaid",
        "invoice.refund-applied",
        "invoice.dispute-opened",
        "invoice.dispute-closed",
        "invoice.voided",
        "invoice.marked-uncollectible",
    }


# ------------------------------------------------------------------------------ plain values


def test_the_stories_trigger_every_event_class() -> None:
    stories = every_invoice_event() + every_payment_and_series_event() + every_provider_event()
    triggered = {type(event) for event in stories}
    declared = {cls for aggregate in STORY_AGGREGATES for cls in event_classes(aggregate).values()}
    assert declared - triggered == set()


@pytest.mark.parametrize("story", [every_invoice_event, every_payment_and_series_event, every_provider_event])
def test_triggered_events_carry_only_plain_json_values(story: Any) -> None:
    offences: list[str] = []
    for event in story():
        assert dataclasses.is_dataclass(event)
        for field in dataclasses.fields(event):
            if field.name in LIBRARY_FIELDS:
                continue
            offences += non_json_values(getattr(event, field.name), f"{type(event).__qualname__}.{field.name}")
    assert offences == []


def test_the_plain_json_check_catches_tuples_enums_and_decimals() -> None:
    from decimal import Decimal
    from enum import StrEnum

    class Colour(StrEnum):
        RED = "red"

    assert non_json_values({"a": (1, 2)}, "x") == ["x.a: tuple"]
    assert non_json_values([Colour.RED], "x") == ["x[0]: Colour"]
    assert non_json_values({"a": Decimal("1")}, "x") == ["x.a: Decimal"]
    assert non_json_values({"a": [1, "b", None, True, {"c": 2}]}, "x") == []


# ------------------------------------------------------------------------------ pinned shapes


def class_version(cls: type) -> int:
    version = getattr(cls, "class_version", 1)
    assert isinstance(version, int)
    return version


@pytest.fixture(scope="module")
def mapper() -> Mapper[UUID]:
    """The mapper of the application as it is composed (transcodings, upcasting), on no store."""
    app = BillingApplication(clock=ManualClock(T0), env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    return app.mapper


def test_the_walk_finds_every_aggregate_we_store() -> None:
    names = {aggregate.__name__ for aggregate in AGGREGATES}
    assert set(STORY_AGGREGATES) <= set(AGGREGATES)
    assert {"Receipt", "UsageCatalog", "UsageCustomer", "UsageRecord", "Dunning", "MeterReporter"} <= names


def test_every_topic_at_every_class_version_has_a_pinned_example() -> None:
    missing = [
        f"{cls.TOPIC} v{version}"  # type: ignore[attr-defined]
        for cls in stored_event_classes()
        for version in range(1, class_version(cls) + 1)
        if not example_path(cls.TOPIC, version).exists()  # type: ignore[attr-defined]
    ]
    assert missing == [], "record an example of each (tests/event_examples.py says how) and commit it"


def test_every_pinned_example_is_of_a_topic_we_still_store() -> None:
    topics = {cls.TOPIC for cls in stored_event_classes()}  # type: ignore[attr-defined]
    orphans = [str(path.relative_to(FIXTURES)) for path in EXAMPLES if path.parent.name not in topics]
    assert orphans == [], "stored events of these topics could no longer be read"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parent.name}@{p.stem}")
def test_a_pinned_example_loads_through_the_applications_mapper(path: Path, mapper: Mapper[UUID]) -> None:
    example = read_example(path)
    assert (example["topic"], f"v{example['class_version']}") == (path.parent.name, path.stem)
    stored = StoredEvent(
        originator_id=UUID(example["originator_id"]),
        originator_version=example["originator_version"],
        topic=example["topic"],
        state=json.dumps(example["state"]).encode(),
    )
    event = mapper.to_domain_event(stored)
    cls = resolve_topic(example["topic"])
    assert type(event) is cls  # upcast to the current class, whatever version was stored
    assert (event.originator_id, event.originator_version) == (stored.originator_id, stored.originator_version)
    fields = {f.name for f in dataclasses.fields(cls)} - {"originator_id", "originator_version"}
    missing = fields - set(vars(event))
    assert not missing, f"{example['topic']} v{example['class_version']} loads without {sorted(missing)}: upcast it"
    offences = [bad for name in fields - LIBRARY_FIELDS for bad in non_json_values(getattr(event, name), name)]
    assert offences == []
    if example["class_version"] == class_version(cls):
        # The current shape is exactly the pinned one: a field added, renamed or dropped without
        # a new class_version (and an upcaster from this one) fails here.
        assert set(example["state"]) - {"class_version"} == fields
        assert json.loads(mapper.to_stored_event(event).state) == example["state"]
