"""Amounts and payloads across the Stripe boundary: the currency codec both ways, and Stripe's
objects decoded into typed reports that refuse wrong types and name the field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from adapters.stripe import STRIPE_API_VERSION
from adapters.stripe.currency import StripeAmountError, from_stripe, to_stripe
from adapters.stripe.payloads import read_event
from commands.ingestion.provider_events import WebhookRejectedError
from commands.ingestion.provider_reports import ChargeReport, PaymentReport
from commands.ingestion.stripe_events import READ_API_VERSIONS, UnreadableEventError, handle
from commands.work import Work
from ledger.errors import InvalidAmountError
from ledger.money import Money
from tests.stripe_payloads import event_payload, stripe_object, verified_event
from tests.unit.given import T0

# (currency, ledger minor units, Stripe's units): Stripe's currency documentation, special cases.
CROSSINGS = [
    ("usd", 1234, 1234),
    ("jpy", 500, 500),  # zero-decimal in both
    ("kwd", 5120, 5120),  # three decimals, the last one 0
    ("isk", 5, 500),  # zero-decimal in ISO 4217, two-decimal (whole krónur) in Stripe's API
    ("huf", 1050, 1050),  # two-decimal in both; whole forints only for payouts, which we never make
    ("twd", 1050, 1050),
    ("mga", 500, 5),  # two-decimal in ISO 4217, zero-decimal in Stripe
    ("ugx", 700, 700),
    ("bhd", 10, 10),
]


@pytest.mark.parametrize(("currency", "ours", "stripes"), CROSSINGS)
def test_each_currency_crosses_in_stripes_units_and_back(currency: str, ours: int, stripes: int) -> None:
    assert to_stripe(Money(ours, currency)) == stripes
    assert from_stripe(stripes, currency) == Money(ours, currency)


@pytest.mark.parametrize(
    ("currency", "ours", "why"),
    [
        ("kwd", 5124, "multiples of 10"),  # 5.124 KWD: Stripe's partners take only a final 0
        ("mga", 550, "whole units"),  # 5.50 ariary: Stripe has no fraction of an ariary
        ("clf", 10_000, "does not take payments"),  # four decimals: not a Stripe currency
        ("uyi", 100, "does not take payments"),
    ],
)
def test_what_stripe_cannot_represent_is_refused_before_any_call(currency: str, ours: int, why: str) -> None:
    with pytest.raises(StripeAmountError, match=why) as refused:
        to_stripe(Money(ours, currency))
    assert isinstance(refused.value, InvalidAmountError)  # answered 422, not 5xx


def test_an_amount_from_stripe_the_ledger_cannot_hold_is_refused() -> None:
    with pytest.raises(StripeAmountError, match="whole number"):
        from_stripe(550, "isk")  # 5.50 kr: no such amount in ISO 4217's krónur


def _event(event_type: str, resource: str, **changes: Any) -> bytes:
    return event_payload(event_type, resource, event_id="evt_1", created=1_700_000_000, **changes)


def test_a_webhook_amount_is_converted_into_the_ledgers_units() -> None:
    event = verified_event(
        "evt_1", "payment_intent.succeeded", "payment_intent", amount=500, amount_received=500, currency="isk"
    )
    assert isinstance(event.subject, PaymentReport)
    assert event.subject.amount_received == Money(5, "isk")
    mga = verified_event("evt_2", "charge.succeeded", "charge", amount=5, amount_captured=5, currency="mga")
    assert isinstance(mga.subject, ChargeReport)
    assert mga.subject.amount_captured == Money(500, "mga")


@pytest.mark.parametrize(
    ("resource", "changes", "named"),
    [
        ("charge", {"captured": "false"}, "data.object.captured"),  # a string is not a boolean
        ("payment_intent", {"amount_received": "1000"}, "data.object.amount_received"),
        ("payment_intent", {"amount_received": 10.5}, "data.object.amount_received"),
        ("refund", {"amount": True}, "data.object.amount"),
        ("payment_intent", {"metadata": {"invoice_id": 7}}, "data.object.metadata"),
        ("payment_intent", {"amount": 500, "amount_received": 550, "currency": "isk"}, "data.object.amount_received"),
        ("dispute", {"currency": "xyz"}, "data.object.currency"),
    ],
)
def test_an_object_that_does_not_decode_is_unreadable_with_the_field_named(
    resource: str, changes: dict[str, Any], named: str
) -> None:
    event = read_event(_event(f"{resource}.updated", resource, **changes).decode())
    assert event.subject is None
    assert event.unreadable is not None
    assert named in event.unreadable


def test_a_missing_field_is_named() -> None:
    body = json.loads(_event("payment_intent.succeeded", "payment_intent"))
    del body["data"]["object"]["amount_received"]
    event = read_event(json.dumps(body))
    assert event.unreadable is not None
    assert "amount_received" in event.unreadable
    with pytest.raises(UnreadableEventError, match="amount_received"):
        handle(Work(lambda _: None), event, T0)


def test_a_charge_whose_captured_flag_is_a_string_is_refused_not_applied() -> None:
    """Read by hand, "false" was truthy: an uncaptured charge was taken for money received."""
    event = read_event(_event("charge.succeeded", "charge", captured="false").decode())
    with pytest.raises(UnreadableEventError, match=r"data\.object\.captured"):
        handle(Work(lambda _: None), event, T0)


def test_a_bug_below_the_handlers_is_not_taken_for_a_bad_payload() -> None:
    event = verified_event("evt_1", "payment_intent.succeeded", "payment_intent")

    def broken_store(_: object) -> None:
        raise TypeError("a bug in the store")

    with pytest.raises(TypeError, match="a bug in the store"):
        handle(Work(broken_store), event, T0)


@pytest.mark.parametrize(
    "body",
    [
        b"{" * 10_000 + b"}" * 10_000,
        b'{"id":"evt_1","object":"event","type":"x","created":1,"data":{"object":'
        + b"[" * 10_000
        + b"]" * 10_000
        + b"}}",
        b"[]",
        b'{"id":"evt_1","object":"event","type":"x","created":"1","data":{"object":{}}}',
        b'{"id":"evt_1","object":"event","type":"x","created":1,"data":{"object":[]}}',
        b'{"id":"nope","object":"event","type":"x","created":1,"data":{"object":{"object":"charge"}}}',
        b"not json",
    ],
)
def test_a_body_that_is_not_an_event_is_rejected(body: bytes) -> None:
    with pytest.raises(WebhookRejectedError):
        read_event(body.decode())


def test_each_events_api_version_is_kept_and_the_one_we_read_is_the_sdks() -> None:
    assert read_event(_event("payment_intent.succeeded", "payment_intent").decode()).api_version == STRIPE_API_VERSION
    assert STRIPE_API_VERSION in READ_API_VERSIONS  # an SDK upgrade makes us look at the payloads again


def test_an_event_in_a_version_we_did_not_check_is_flagged() -> None:
    body = json.loads(_event("refund.updated", "refund", status="pending"))
    body["api_version"] = "2019-02-19"
    event = read_event(json.dumps(body))
    assert event.api_version == "2019-02-19"
    outcome, detail = handle(Work(lambda _: None), event, T0)
    assert outcome == "ignored"  # read, since it decodes, and flagged for an operator
    assert "api_version 2019-02-19 is not one the ledger was checked against" in detail


def test_a_payment_intent_read_for_a_retry_is_typed_too() -> None:
    from adapters.stripe.payloads import read_retried_intent

    failed = stripe_object(
        "payment_intent",
        status="requires_payment_method",
        payment_method=None,
        last_payment_error={"code": "card_declined", "payment_method": {"id": "pm_1", "object": "payment_method"}},
    )
    assert read_retried_intent(failed).failed_payment_method() == "pm_1"
    with pytest.raises(ValueError, match=r"\$\.status"):
        read_retried_intent({**failed, "status": 3})
