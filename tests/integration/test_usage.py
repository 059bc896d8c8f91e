"""Usage-based billing on both backends: batches, duplicates (also from two writers at once),
closing periods into draft invoices, late usage, and the meter-report outbox against the
Stripe-compatible test server, across a restart and a Stripe outage."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from adapters.clock import ManualClock
from adapters.stripe import StripePaymentProvider
from commands.application import BillingApplication
from commands.usage.reporting import report_usage
from ledger.errors import InvalidUsageBatchError, PeriodNotEndedError, ProviderUnavailableError
from ledger.invoices import DRAFT
from tests.conftest import AppFactory
from tests.stripe_server import API_KEY, StripeServer

CUSTOMER = {"email": "ap@acme.example", "name": "Acme Ltd"}
JANUARY = "2026-01-15T10:00:00Z"


def catalogue(app: BillingApplication, *, stripe_customer: str | None = None) -> None:
    app.usage.define_meter(key="calls", name="API calls", aggregation="sum", event_name="api_calls")
    tiers = [{"up_to": 1000, "unit_amount": 0}, {"up_to": None, "unit_amount": "0.25"}]
    app.usage.define_price(key="calls", meter="calls", currency="usd", model="graduated", terms={"tiers": tiers})
    app.usage.set_up_customer(
        key="acme",
        customer=CUSTOMER,
        currency="usd",
        timezone="America/New_York",
        prices=["calls"],
        starts_at=datetime(2026, 1, 1, 5, tzinfo=UTC),
        stripe_customer_id=stripe_customer,
    )


def batch(prefix: str, count: int, *, quantity: object = 2, timestamp: str = JANUARY) -> list[dict[str, Any]]:
    return [
        {
            "customer": "acme",
            "meter": "calls",
            "quantity": quantity,
            "timestamp": timestamp,
            "identifier": f"{prefix}-{i}",
        }
        for i in range(count)
    ]


def test_a_repeated_identifier_is_ignored_across_batches(app: BillingApplication) -> None:
    catalogue(app)
    first = app.usage.record(batch("r", 500)).result
    again = app.usage.record(batch("r", 10) + batch("s", 5) + batch("s", 1)).result
    assert (first.accepted, first.duplicates) == (500, [])
    assert again.accepted == 5
    assert again.duplicates == [*range(10), 15]
    customer = app.usage.customer("acme")
    assert customer.records == 505
    assert customer.quantity(customer.first_period.key, "calls") == Decimal(1010)
    assert app.usage.stored_record("acme", "s-3") is not None


def test_one_bad_record_refuses_the_batch_and_stores_nothing(app: BillingApplication) -> None:
    catalogue(app)
    bad = batch("r", 3)
    bad[1]["meter"] = "storage"
    bad[2]["customer"] = "nobody"
    with pytest.raises(InvalidUsageBatchError) as refused:
        app.usage.record(bad)
    assert [e["field"] for e in refused.value.errors] == ["records[1].meter", "records[2].customer"]
    assert app.usage.customer("acme").records == 0
    assert app.usage.stored_record("acme", "r-0") is None


def test_two_writers_sending_the_same_identifiers_store_each_once(make_app: AppFactory) -> None:
    catalogue(make_app())
    writers = [make_app(), make_app()]
    outcomes: list[Any] = [None, None]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def send(n: int) -> None:
        try:
            start.wait()
            # Both send the same 300 identifiers, in different batches and orders.
            records = batch("shared", 300)
            outcomes[n] = [
                writers[n].usage.record(part).result for part in (records[:150], records[150:])[:: 1 if n else -1]
            ]
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    accepted = sum(result.accepted for results in outcomes for result in results)
    duplicates = sum(len(result.duplicates) for results in outcomes for result in results)
    assert (accepted, duplicates) == (300, 300)
    customer = make_app().usage.customer("acme")
    assert customer.records == 300
    assert customer.quantity(customer.first_period.key, "calls") == Decimal(600)


def test_closing_a_period_makes_one_draft_and_late_usage_adjusts_the_next(app: BillingApplication) -> None:
    catalogue(app)
    app.usage.record(batch("jan", 700))  # 1,400 calls: 1,000 free, 400 x 0.25 = 100
    closed = app.usage.close_period("acme").result
    invoice = app.invoice(closed.invoice_id)
    assert invoice.status == DRAFT
    assert invoice.total == 100
    assert [line.amount for line in invoice.lines.values()] == [0, 100]
    assert invoice.metadata == {"usage_customer": "acme", "period_start": "2026-01-01", "period_end": "2026-02-01"}

    app.usage.record(batch("late", 10, timestamp="2026-01-31T12:00:00Z"))  # 20 more January calls: +5
    app.usage.record(batch("feb", 1, timestamp="2026-02-10T12:00:00Z"))
    february = app.invoice(app.usage.close_period("acme").result.invoice_id)
    assert app.invoice(closed.invoice_id).version == invoice.version  # the closed one is untouched
    adjustment = list(february.lines.values())[-1]
    assert adjustment.amount == 5
    assert "2026-01-01 to 2026-02-01" in adjustment.description
    with pytest.raises(PeriodNotEndedError):
        app.usage.close_period("acme")  # March has not ended on 2026-03-02


def test_the_same_close_with_an_idempotency_key_answers_the_same_invoice(app: BillingApplication) -> None:
    catalogue(app)
    first = app.usage.close_period("acme", idempotency_key="close-jan").result
    assert app.usage.close_period("acme", idempotency_key="close-jan").result == first
    assert app.usage.customer("acme").next_period.key == "2026-02-01T05:00:00.000000Z"


def test_usage_is_reported_to_stripe_once_across_a_restart_and_an_outage(
    make_app: AppFactory, stripe_server: StripeServer, clock: ManualClock
) -> None:
    app = make_app()
    catalogue(app, stripe_customer="cus_acme")
    app.usage.record(batch("r", 5, timestamp="2026-02-20T10:00:00Z"))
    app.usage.record(batch("old", 1))  # 2026-01-15: beyond Stripe's 35 days on 2026-03-02
    provider = StripePaymentProvider(API_KEY, api_base=stripe_server.base_url, max_network_retries=0)
    try:
        stripe_server.fail_next("api_error")
        with pytest.raises(ProviderUnavailableError):
            report_usage(app, provider)
        assert stripe_server.state.meter_events == {}

        done = report_usage(app, provider)
        assert (done.reported, done.skipped) == (5, 1)
        restarted = make_app()
        assert report_usage(restarted, provider).reported == 0  # nothing twice after a restart
        restarted.usage.record(batch("r", 6, timestamp="2026-02-20T10:00:00Z"))  # r-5 is the only new one
        assert report_usage(restarted, provider).reported == 1
    finally:
        provider.close()
    events = stripe_server.state.meter_events
    assert len(events) == 6
    sent = stripe_server.requests_to("POST", "/v1/billing/meter_events")
    assert {r.form["event_name"] for r in sent} == {"api_calls"}
    assert {r.form["payload"]["stripe_customer_id"] for r in sent} == {"cus_acme"}
    assert {r.form["payload"]["value"] for r in sent} == {"2"}
    reporter = make_app().usage.meter_reporter("stripe")
    assert reporter is not None
    assert (reporter.reported, reporter.skipped) == (6, 1)


UNIT = "998.999999999999"  # with 10**12 bytes and 10**12 hits, exactly the most an invoice holds


def _big_customer(app: BillingApplication) -> None:
    """Prices at which the largest record quantities reach the amount an invoice can hold."""
    app.usage.define_meter(key="bytes", name="Bytes", aggregation="sum")
    app.usage.define_meter(key="hits", name="Hits", aggregation="sum")
    app.usage.define_price(key="bytes", meter="bytes", currency="usd", model="per_unit", terms={"unit_amount": UNIT})
    app.usage.define_price(
        key="hits", meter="hits", currency="usd", model="package", terms={"package_size": 1, "package_amount": 1}
    )
    app.usage.set_up_customer(
        key="big",
        customer=CUSTOMER,
        currency="usd",
        timezone="UTC",
        prices=["bytes", "hits"],
        starts_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def _record(meter: str, quantity: object, identifier: str) -> dict[str, Any]:
    return {"customer": "big", "meter": meter, "quantity": quantity, "timestamp": JANUARY, "identifier": identifier}


def test_usage_its_period_could_not_bill_is_refused_and_the_largest_accepted_period_closes(
    app: BillingApplication,
) -> None:
    _big_customer(app)
    most = 10**12  # the largest quantity a record may have
    app.usage.record([_record("bytes", most, "b-1"), _record("hits", most, "h-1")])  # 10**15 - 1 in all

    with pytest.raises(InvalidUsageBatchError) as refused:  # beyond what an invoice holds
        app.usage.record([_record("bytes", 1, "b-2"), _record("hits", "0.5", "h-2"), _record("hits", 1, "h-3")])
    assert [error["field"] for error in refused.value.errors] == ["records[0].quantity"]
    assert "invoice" in refused.value.errors[0]["message"]
    assert app.usage.stored_record("big", "b-2") is None

    closed = app.usage.close_period("big").result
    invoice = app.invoice(closed.invoice_id)
    assert invoice.total == 10**15 - 1
    assert [(line.quantity, line.amount) for line in invoice.lines.values()] == [
        ("1", 998_999_999_999_999),
        ("1", most),
    ]
