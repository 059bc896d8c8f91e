"""The Stripe adapter: the only code that imports `stripe` (tests/unit/test_architecture.py)."""

from __future__ import annotations

from adapters.stripe.provider import STRIPE_API_VERSION, StripePaymentProvider

__all__ = ["STRIPE_API_VERSION", "StripePaymentProvider"]
