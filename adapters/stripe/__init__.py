"""The Stripe adapter: the only code that imports `stripe` (tests/unit/test_architecture.py)."""

from __future__ import annotations

from adapters.stripe.client import STRIPE_API_VERSION
from adapters.stripe.listing import StripeRecords
from adapters.stripe.provider import StripePaymentProvider

__all__ = ["STRIPE_API_VERSION", "StripePaymentProvider", "StripeRecords"]
