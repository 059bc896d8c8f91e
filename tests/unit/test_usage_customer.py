"""The usage customer: records fold into their periods; closing bills a period once, in order;
late usage becomes an adjustment on the next invoice."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import uuid4

import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic

from ledger.errors import CurrencyMismatchError, InvalidUsageBatchError, PeriodNotEndedError
from ledger.usage.catalog import UsageCatalog
from ledger.usage.customers import UsageCustomer
from ledger.usage.meter_reports import MeterReporter
from ledger.usage.records import NewUsageRecord, UsageBatch, UsageRecord, read_records
from tests.unit.given import CUSTOMER, T0, drain
from tests.unit.test_event_shapes import LIBRARY_FIELDS, event_classes, non_json_values

JANUARY = "2026-01-20T10:00:00Z"


def catalog() -> UsageCatalog:
    catalog = UsageCatalog.open(at=T0)
    catalog.define_meter(key="calls", name="API calls", event_name=None, aggregation="sum", at=T0)
    catalog.define_meter(key="seats", name="Seats", event_name=None, aggregation="max", at=T0)
    tiers = {"tiers": [{"up_to": 100, "unit_amount": 0}, {"up_to": None, "unit_amount": 2}]}
    catalog.define_price(key="calls", meter="calls", currency="usd", model="graduated", terms=tiers, at=T0)
    catalog.define_price(
        key="seats", meter="seats", currency="usd", model="per_unit", terms={"unit_amount": 500}, at=T0
    )
    catalog.define_price(
        key="seats-eur", meter="seats", currency="eur", model="per_unit", terms={"unit_amount": 1}, at=T0
    )
    return catalog


def customer(prices: tuple[str, ...] = ("calls", "seats")) -> UsageCustomer:
    found = catalog()
    definitions = [found.price(p) for p in prices]
    return UsageCustomer.set_up(
        key="acme",
        customer=CUSTOMER,
        currency="usd",
        timezone="Europe/Paris",
        billing_anchor_day=1,
        prices=definitions,
        meters={d["meter"]: found.meter(d["meter"]) for d in definitions},
        starts_at=datetime(2026, 1, 10, tzinfo=UTC),
        stripe_customer_id=None,
        at=T0,
    )


def records(*rows: tuple[str, object, str, str]) -> list[NewUsageRecord]:
    raw = [{"customer": "acme", "meter": m, "quantity": q, "timestamp": t, "identifier": i} for m, q, t, i in rows]
    found, errors = read_records(raw)
    assert not errors
    return found


def test_records_fold_into_the_period_of_their_local_date() -> None:
    acme = customer()
    acme.add_usage(
        records(
            ("calls", 60, "2026-01-31T22:59:59Z", "a"),  # 23:59:59 in Paris: January
            ("calls", 70, "2026-01-31T23:00:00Z", "b"),  # midnight in Paris: February
            ("seats", 3, "2026-01-05T00:00:00+01:00", "c"),
            ("seats", 2, "2026-01-20T00:00:00Z", "d"),
        ),
        at=T0,
    )
    january = acme.first_period.key
    assert acme.quantity(january, "calls") == Decimal(60)
    assert acme.quantity(january, "seats") == Decimal(3)  # max
    assert acme.records == 4


def test_closing_bills_each_meter_with_its_tier_breakdown_and_moves_to_the_next_period() -> None:
    acme = customer()
    acme.add_usage(
        records(("calls", 150, "2026-01-15T10:00:00Z", "a"), ("seats", 4, "2026-01-15T10:00:00Z", "b")), at=T0
    )
    lines = acme.close_next_period(invoice_id=uuid4(), at=T0)
    assert [(line.quantity, line.unit_amount, line.amount) for line in lines] == [
        ("100", 0, 0),  # calls, tier 1
        ("50", 2, 100),  # calls, tier 2
        ("4", 500, 2000),  # seats
    ]
    assert "tier 2" in lines[1].description
    assert acme.next_period.start.month == 1  # Feb 1st in Paris is Jan 31st 23:00 UTC
    assert acme.next_period.start == datetime(2026, 1, 31, 23, tzinfo=UTC)


def test_a_period_is_closed_only_after_it_ends() -> None:
    acme = customer()
    with pytest.raises(PeriodNotEndedError):
        acme.close_next_period(invoice_id=uuid4(), at=datetime(2026, 1, 31, 22, 59, tzinfo=UTC))


def test_late_usage_is_an_adjustment_on_the_next_invoice_naming_its_period() -> None:
    acme = customer(("calls",))
    acme.add_usage(records(("calls", 150, "2026-01-15T10:00:00Z", "a")), at=T0)
    acme.close_next_period(invoice_id=uuid4(), at=T0)
    late = acme.add_usage(records(("calls", 25, "2026-01-20T10:00:00Z", "late")), at=T0)
    assert late[0].late is True
    lines = acme.close_next_period(invoice_id=uuid4(), at=T0)
    adjustment = lines[-1]
    assert adjustment.amount == 50  # 175 prices at 150, 150 at 100
    assert "late usage" in adjustment.description
    assert "2026-01-01 to 2026-02-01" in adjustment.description
    assert acme.closed[acme.first_period.key]["billed"] == {"calls": "175"}
    later = datetime(2026, 5, 1, tzinfo=UTC)
    assert "late usage" not in acme.close_next_period(invoice_id=uuid4(), at=later)[-1].description  # billed once


def test_prices_in_another_currency_are_refused() -> None:
    with pytest.raises(CurrencyMismatchError):
        customer(("calls", "seats-eur"))


def test_a_record_refused_names_why() -> None:
    acme = customer(("calls",))
    (seat,) = records(("seats", 1, "2026-01-15T10:00:00Z", "x"))
    assert acme.refusal(seat, T0) == ("meter", "usage customer 'acme' is not billed for meter 'seats'")
    (early,) = records(("calls", 1, "2025-12-31T22:00:00Z", "y"))
    assert acme.refusal(early, T0) is not None
    (future,) = records(("calls", 1, "2026-03-02T09:06:00Z", "z"))
    assert acme.refusal(future, T0) == ("timestamp", "is more than 5 minutes in the future")


def test_bad_records_are_named_by_position_and_field() -> None:
    _, errors = read_records(
        [
            {"customer": "acme", "meter": "calls", "timestamp": "2026-01-15T10:00:00Z", "identifier": "ok"},
            {"customer": "acme", "meter": "calls", "quantity": "-1", "timestamp": "yesterday", "identifier": ""},
            "not a record",
            {"meter": "calls", "colour": "red"},
        ]
    )
    assert {e["field"] for e in errors} == {
        "records[1].quantity",
        "records[1].timestamp",
        "records[1].identifier",
        "records[2]",
        "records[3].colour",
        "records[3].customer",
        "records[3].timestamp",
        "records[3].identifier",
    }


def test_usage_events_hold_plain_json_only() -> None:
    acme = customer()
    events = acme.add_usage(records(("calls", "1.5", "2026-01-15T10:00:00Z", "a"), ("seats", 2, JANUARY, "b")), at=T0)
    acme.close_next_period(invoice_id=uuid4(), at=T0)
    batch = UsageBatch.accept(batch_id=uuid4(), records=events, duplicates=0, at=T0)
    reporter = MeterReporter.start("stripe", at=T0)
    reporter.record(through=3, reported=["x"], skipped=[], at=T0)
    found = [*drain(acme), *drain(batch), *drain(catalog()), *drain(reporter)]
    assert len(found) > len(events)
    for event in found:
        state = {k: v for k, v in vars(event).items() if k not in LIBRARY_FIELDS}
        assert non_json_values(state, type(event).__name__) == []


USAGE_AGGREGATES = [UsageCatalog, UsageCustomer, UsageRecord, UsageBatch, MeterReporter]


@pytest.mark.parametrize("aggregate", USAGE_AGGREGATES, ids=lambda a: a.__name__)
def test_usage_aggregates_and_events_have_explicit_topics_of_their_own(aggregate: type[Aggregate]) -> None:
    assert get_topic(aggregate) == vars(aggregate)["TOPIC"]
    for name, cls in event_classes(aggregate).items():
        topic = vars(cls).get("TOPIC")
        assert isinstance(topic, str), name
        assert topic.startswith(f"{vars(aggregate)['TOPIC']}.")
        assert get_topic(cls) == topic


def big_spender() -> UsageCustomer:
    found = UsageCatalog.open(at=T0)
    found.define_meter(key="bytes", name="Bytes", event_name=None, aggregation="sum", at=T0)
    found.define_price(key="bytes", meter="bytes", currency="usd", model="per_unit", terms={"unit_amount": 600}, at=T0)
    return UsageCustomer.set_up(
        key="acme",
        customer=CUSTOMER,
        currency="usd",
        timezone="Europe/Paris",
        billing_anchor_day=1,
        prices=[found.price("bytes")],
        meters={"bytes": found.meter("bytes")},
        starts_at=datetime(2026, 1, 10, tzinfo=UTC),
        stripe_customer_id=None,
        at=T0,
    )


def test_late_usage_the_next_invoice_could_not_hold_is_refused_naming_the_late_record() -> None:
    acme = big_spender()
    most = 10**12
    acme.add_usage(records(("bytes", most, "2026-01-15T10:00:00Z", "jan")), at=T0)  # 6 x 10**14
    acme.close_next_period(invoice_id=uuid4(), at=T0)
    acme.add_usage(records(("bytes", most, "2026-02-15T10:00:00Z", "feb")), at=T0)  # 6 x 10**14 more
    with pytest.raises(InvalidUsageBatchError) as refused:  # February's invoice would also bill 6 x 10**14 for January
        acme.add_usage(
            records(("bytes", 1, "2026-02-16T10:00:00Z", "fine"), ("bytes", most, "2026-01-20T10:00:00Z", "late")),
            at=T0,
        )
    assert [error["field"] for error in refused.value.errors] == ["records[0].quantity", "records[1].quantity"]
    assert "beyond the limit" in refused.value.errors[0]["message"]
    assert acme.quantity(acme.first_period.key, "bytes") == Decimal(most)  # nothing was added

    lines = acme.close_next_period(invoice_id=uuid4(), at=datetime(2026, 3, 1, tzinfo=UTC))
    assert sum(line.amount for line in lines) == 600 * most
