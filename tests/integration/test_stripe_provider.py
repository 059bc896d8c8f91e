"""The Stripe adapter with the real SDK, over HTTP, against the Stripe-compatible test server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.stripe import STRIPE_API_VERSION, StripePaymentProvider
from adapters.stripe.currency import StripeAmountError
from commands.ports import CheckoutSession, PaymentProvider
from ledger.errors import (
    IdempotencyKeyReusedError,
    PaymentDeclinedError,
    ProviderConfigurationError,
    ProviderError,
    ProviderUnavailableError,
)
from tests.stripe_server import API_KEY, StripeServer

INVOICE_ID = "0b9b6f2e-8c1d-4f5e-9a3b-2c7d1e0f4a56"


def _provider(server: StripeServer, *, api_key: str = API_KEY, retries: int = 0) -> StripePaymentProvider:
    return StripePaymentProvider(api_key, api_base=server.base_url, max_network_retries=retries)


@pytest.fixture
def provider(stripe_server: StripeServer) -> Iterator[StripePaymentProvider]:
    provider = _provider(stripe_server)
    yield provider
    provider.close()


def _checkout(provider: PaymentProvider, key: str = "key-1", **changes: Any) -> CheckoutSession:
    arguments: dict[str, Any] = {
        "invoice_id": INVOICE_ID,
        "amount": 309_219,
        "currency": "usd",
        "customer_email": "ap@acme.example",
        "description": "Invoice INV-2026-000042",
        "success_url": "https://billing.example/portal/paid",
        "cancel_url": "https://billing.example/portal/cancelled",
        "idempotency_key": key,
        **changes,
    }
    return provider.create_checkout_session(**arguments)


def test_a_checkout_session_carries_the_invoice_amount_and_return_pages(
    provider: StripePaymentProvider, stripe_server: StripeServer
) -> None:
    before = int(time.time())
    session = _checkout(provider)

    assert session.id.startswith("cs_test_")
    assert session.url == f"{stripe_server.base_url}/c/pay/{session.id}"
    assert session.payment_intent_id is None  # Stripe creates the PaymentIntent when the customer pays
    assert session.expires_at.tzinfo is UTC
    assert session.expires_at.timestamp() >= before + 23 * 3600

    [sent] = stripe_server.requests_to("POST", "/v1/checkout/sessions")
    assert sent.form == {
        "mode": "payment",
        "line_items": [
            {
                "quantity": "1",
                "price_data": {
                    "currency": "usd",
                    "unit_amount": "309219",
                    "product_data": {"name": "Invoice INV-2026-000042"},
                },
            }
        ],
        "customer_email": "ap@acme.example",
        "client_reference_id": INVOICE_ID,
        "success_url": "https://billing.example/portal/paid",
        "cancel_url": "https://billing.example/portal/cancelled",
        "metadata": {"invoice_id": INVOICE_ID},
        "payment_intent_data": {"description": "Invoice INV-2026-000042", "metadata": {"invoice_id": INVOICE_ID}},
    }
    stored = stripe_server.sessions[session.id]
    assert stored["amount_total"] == 309_219
    assert stored["currency"] == "usd"
    assert stored["customer_email"] == "ap@acme.example"
    assert stored["metadata"] == {"invoice_id": INVOICE_ID}
    assert stored["status"] == "open"
    assert stored["payment_status"] == "unpaid"


def test_the_api_version_is_pinned_and_the_key_sent_as_a_bearer_token(
    provider: StripePaymentProvider, stripe_server: StripeServer
) -> None:
    _checkout(provider)
    [sent] = stripe_server.requests
    assert sent.headers["stripe-version"] == STRIPE_API_VERSION
    assert provider.api_version == STRIPE_API_VERSION
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"


def test_our_idempotency_key_is_passed_through_and_a_repeat_gets_the_same_session(
    provider: StripePaymentProvider, stripe_server: StripeServer
) -> None:
    first = _checkout(provider, key="checkout-42")
    again = _checkout(provider, key="checkout-42")
    other = _checkout(provider, key="checkout-43")

    assert again == first
    assert other.id != first.id
    assert [r.headers["idempotency-key"] for r in stripe_server.requests] == ["checkout-42"] * 2 + ["checkout-43"]
    assert len(stripe_server.sessions) == 2


def test_the_same_key_for_another_request_is_refused_as_a_reused_key(
    provider: StripePaymentProvider, stripe_server: StripeServer
) -> None:
    _checkout(provider, key="checkout-42")
    with pytest.raises(IdempotencyKeyReusedError) as raised:
        _checkout(provider, key="checkout-42", amount=1)
    assert raised.value.key == "checkout-42"
    assert len(stripe_server.sessions) == 1


@pytest.mark.parametrize(
    ("kind", "mapped"),
    [
        ("card_error", PaymentDeclinedError),
        ("rate_limit", ProviderUnavailableError),
        ("api_error", ProviderUnavailableError),
        ("authentication", ProviderConfigurationError),
        ("permission", ProviderConfigurationError),
        ("invalid_request", ProviderConfigurationError),
    ],
)
def test_each_stripe_error_becomes_one_of_ours(
    provider: StripePaymentProvider, stripe_server: StripeServer, kind: str, mapped: type[ProviderError]
) -> None:
    stripe_server.fail_next(kind)
    with pytest.raises(mapped) as raised:
        _checkout(provider)
    assert type(raised.value) is mapped
    assert raised.value.request_id is not None
    assert raised.value.request_id.startswith("req_")
    assert raised.value.request_id in str(raised.value)
    assert str(raised.value).startswith("Stripe: ")
    assert stripe_server.sessions == {}


def test_a_wrong_api_key_is_a_configuration_error(stripe_server: StripeServer) -> None:
    provider = _provider(stripe_server, api_key="sk_test_wrong")
    try:
        with pytest.raises(ProviderConfigurationError, match="Invalid API Key"):
            _checkout(provider)
    finally:
        provider.close()


def test_no_api_key_is_a_configuration_error() -> None:
    with pytest.raises(ProviderConfigurationError, match="STRIPE_API_KEY"):
        StripePaymentProvider("")


def test_an_unreachable_stripe_is_unavailable(stripe_server: StripeServer) -> None:
    stripe_server.stop()
    provider = _provider(stripe_server)
    try:
        with pytest.raises(ProviderUnavailableError):
            _checkout(provider)
    finally:
        provider.close()


def test_a_transient_failure_is_retried_with_the_same_key(stripe_server: StripeServer) -> None:
    provider = _provider(stripe_server, retries=1)
    try:
        stripe_server.fail_next("api_error")
        session = _checkout(provider, key="checkout-7")
    finally:
        provider.close()
    assert [r.status for r in stripe_server.requests] == [500, 200]
    assert {r.headers["idempotency-key"] for r in stripe_server.requests} == {"checkout-7"}
    assert list(stripe_server.sessions) == [session.id]


def test_a_meter_event_is_reported_once_per_identifier(
    provider: StripePaymentProvider, stripe_server: StripeServer
) -> None:
    at = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    for _ in range(2):
        provider.report_meter_event(
            event_name="api_requests", customer_id="cus_123", value=25, identifier="usage-1", at=at
        )

    sent = stripe_server.requests_to("POST", "/v1/billing/meter_events")
    assert [r.form for r in sent] == [
        {
            "event_name": "api_requests",
            "payload": {"stripe_customer_id": "cus_123", "value": "25"},
            "identifier": "usage-1",
            "timestamp": str(int(at.timestamp())),
        }
    ] * 2
    assert {r.headers["idempotency-key"] for r in sent} == {"meter-event-usage-1"}
    assert list(stripe_server.state.meter_events) == ["usage-1"]


def test_a_4xx_that_is_not_json_is_a_configuration_error_not_a_temporary_failure(
    provider: StripePaymentProvider, stripe_server: StripeServer
) -> None:
    """An HTML 404 is not Stripe's API answering (a wrong STRIPE_API_BASE, a proxy): retrying
    will not help, an operator has to act."""
    stripe_server.fail_next("not_json_404")
    with pytest.raises(ProviderConfigurationError, match="not JSON") as raised:
        _checkout(provider)
    assert not isinstance(raised.value, ProviderUnavailableError)


@pytest.mark.parametrize(
    ("currency", "amount", "sent"),
    [("usd", 309_219, 309_219), ("jpy", 5_000, 5_000), ("isk", 5, 500), ("mga", 12_300, 123), ("kwd", 5_120, 5_120)],
)
def test_checkout_sends_the_amount_in_stripes_units(
    provider: StripePaymentProvider, stripe_server: StripeServer, currency: str, amount: int, sent: int
) -> None:
    _checkout(provider, amount=amount, currency=currency)
    [request] = stripe_server.requests_to("POST", "/v1/checkout/sessions")
    assert request.form["line_items"][0]["price_data"]["unit_amount"] == str(sent)


@pytest.mark.parametrize(("currency", "amount"), [("kwd", 5_124), ("mga", 12_345), ("clf", 10_000)])
def test_an_amount_stripe_cannot_represent_is_refused_before_any_request(
    provider: StripePaymentProvider, stripe_server: StripeServer, currency: str, amount: int
) -> None:
    with pytest.raises(StripeAmountError):
        _checkout(provider, amount=amount, currency=currency)
    assert stripe_server.requests == []
