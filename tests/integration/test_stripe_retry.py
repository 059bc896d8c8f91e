"""The Stripe adapter's payment retry with the real SDK, over HTTP, against the Stripe-compatible test server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.stripe import StripePaymentProvider
from commands.ports import ATTEMPTED, NOT_RETRYABLE, SETTLED, PaymentRetry
from ledger.errors import PaymentDeclinedError, ProviderConfigurationError, ProviderUnavailableError
from tests.stripe_server import API_KEY, StripeServer

INVOICE_ID = "0b9b6f2e-8c1d-4f5e-9a3b-2c7d1e0f4a56"


@pytest.fixture
def provider(stripe_server: StripeServer) -> Iterator[StripePaymentProvider]:
    provider = StripePaymentProvider(API_KEY, api_base=stripe_server.base_url, max_network_retries=0)
    yield provider
    provider.close()


def _failed_intent(server: StripeServer, **changes: object) -> str:
    return server.add_failed_payment_intent(amount=309_219, currency="usd", invoice_id=INVOICE_ID, **changes)  # type: ignore[arg-type]


def test_a_retry_confirms_the_payment_intent_off_session_with_the_card_that_failed(
    provider: StripePaymentProvider, stripe_server: StripeServer
) -> None:
    intent = _failed_intent(stripe_server)

    answer = provider.retry_payment(provider_payment_id=intent, idempotency_key="dunning-1-step-1")

    assert answer == PaymentRetry(intent, ATTEMPTED, "succeeded")
    [read] = stripe_server.requests_to("GET", f"/v1/payment_intents/{intent}")
    assert "idempotency-key" not in read.headers
    [confirm] = stripe_server.requests_to("POST", f"/v1/payment_intents/{intent}/confirm")
    assert confirm.form == {"payment_method": "pm_card_chargeDeclined", "off_session": "true"}
    assert confirm.headers["idempotency-key"] == "dunning-1-step-1"
    stored = stripe_server.payment_intents[intent]
    assert (stored["status"], stored["amount_received"]) == ("succeeded", 309_219)


def test_a_declined_retry_is_a_declined_payment(provider: StripePaymentProvider, stripe_server: StripeServer) -> None:
    intent = _failed_intent(stripe_server)
    stripe_server.confirm_outcomes(intent, "declined")

    with pytest.raises(PaymentDeclinedError, match="insufficient funds") as raised:
        provider.retry_payment(provider_payment_id=intent, idempotency_key="k-1")
    assert raised.value.request_id is not None
    assert stripe_server.payment_intents[intent]["status"] == "requires_payment_method"


def test_the_same_key_is_the_same_attempt_not_a_second_charge(
    provider: StripePaymentProvider, stripe_server: StripeServer
) -> None:
    intent = _failed_intent(stripe_server)
    stripe_server.confirm_outcomes(intent, "declined", "succeeded")

    for _ in range(2):
        with pytest.raises(PaymentDeclinedError):
            provider.retry_payment(provider_payment_id=intent, idempotency_key="k-1")

    confirms = stripe_server.requests_to("POST", f"/v1/payment_intents/{intent}/confirm")
    assert [c.status for c in confirms] == [402, 402]  # the second answered from the first
    assert stripe_server.payment_intents[intent]["status"] == "requires_payment_method"
    assert provider.retry_payment(provider_payment_id=intent, idempotency_key="k-2").status == "succeeded"


def test_a_processing_retry_is_reported_as_attempted(
    provider: StripePaymentProvider, stripe_server: StripeServer
) -> None:
    intent = _failed_intent(stripe_server)
    stripe_server.confirm_outcomes(intent, "processing")
    assert provider.retry_payment(provider_payment_id=intent, idempotency_key="k").status == "processing"


@pytest.mark.parametrize("status", ["succeeded", "processing"])
def test_a_payment_already_moving_money_is_settled_and_not_confirmed(
    provider: StripePaymentProvider, stripe_server: StripeServer, status: str
) -> None:
    intent = _failed_intent(stripe_server, status=status)
    assert provider.retry_payment(provider_payment_id=intent, idempotency_key="k") == PaymentRetry(
        intent, SETTLED, status
    )
    assert stripe_server.requests_to("POST", f"/v1/payment_intents/{intent}/confirm") == []


def test_nothing_to_retry_without_a_payment_method_or_on_a_canceled_intent(
    provider: StripePaymentProvider, stripe_server: StripeServer
) -> None:
    no_card = _failed_intent(stripe_server, payment_method=None)
    canceled = _failed_intent(stripe_server, status="canceled")

    assert provider.retry_payment(provider_payment_id=no_card, idempotency_key="k1") == PaymentRetry(
        no_card,
        NOT_RETRYABLE,
        "requires_payment_method",
        "the PaymentIntent is requires_payment_method and has no payment method",
    )
    assert provider.retry_payment(provider_payment_id=canceled, idempotency_key="k2").outcome == NOT_RETRYABLE
    missing = provider.retry_payment(provider_payment_id="pi_unknown", idempotency_key="k3")
    assert (missing.outcome, missing.status) == (NOT_RETRYABLE, "missing")
    assert [r.method for r in stripe_server.requests] == ["GET", "GET", "GET"]


@pytest.mark.parametrize(
    ("kind", "mapped"),
    [
        ("rate_limit", ProviderUnavailableError),
        ("api_error", ProviderUnavailableError),
        ("permission", ProviderConfigurationError),
    ],
)
def test_stripe_errors_on_a_retry_become_ours(
    provider: StripePaymentProvider, stripe_server: StripeServer, kind: str, mapped: type[Exception]
) -> None:
    intent = _failed_intent(stripe_server)
    stripe_server.fail_next(kind)
    with pytest.raises(mapped):
        provider.retry_payment(provider_payment_id=intent, idempotency_key="k")
    assert stripe_server.payment_intents[intent]["status"] == "requires_payment_method"
