"""Where the portal's Pay may lead (its CSP form-action): the Checkout pages of the Stripe the
adapter talks to."""

from __future__ import annotations

import pytest

from adapters.stripe.provider import STRIPE_CHECKOUT_ORIGIN, StripePaymentProvider, checkout_origin_for
from web.admin.security import CSP, content_security_policy


@pytest.mark.parametrize(
    ("api_base", "origin"),
    [
        (None, "https://checkout.stripe.com"),
        ("", "https://checkout.stripe.com"),
        ("https://api.stripe.com", "https://checkout.stripe.com"),  # Stripe named explicitly
        ("https://api.stripe.com/", "https://checkout.stripe.com"),
        ("http://127.0.0.1:8421", "http://127.0.0.1:8421"),  # a stand-in serves its own pages
        ("http://localhost:12111/v1/", "http://localhost:12111"),
    ],
)
def test_the_checkout_origin_follows_the_api_base(api_base: str | None, origin: str) -> None:
    assert checkout_origin_for(api_base) == origin


def test_the_provider_carries_it() -> None:
    provider = StripePaymentProvider("sk_test_x", max_network_retries=0)
    try:
        assert provider.checkout_origin == STRIPE_CHECKOUT_ORIGIN
    finally:
        provider.close()


def test_the_policy_adds_the_origin_to_form_action_only() -> None:
    assert content_security_policy() == CSP
    policy = content_security_policy(["https://checkout.stripe.com"])
    assert "form-action 'self' https://checkout.stripe.com;" in policy
    assert policy.replace(" https://checkout.stripe.com", "") == CSP
