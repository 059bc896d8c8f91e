"""Stripe webhook deliveries checked as Stripe documents: the `Stripe-Signature` header's
HMAC-SHA256 over `timestamp.body` with the endpoint secret, and a timestamp within the
tolerance (300 s by default) of our clock, then the body read as an event
(adapters/stripe/payloads.py).

Verification runs on the raw bytes, before any parsing: a re-encoded body would not verify.
The SDK refuses only a timestamp older than the tolerance; one as far in the future is refused
here too, since a signed delivery stamped ahead could be replayed until that moment passes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import stripe

from adapters.stripe.payloads import read_event
from commands.ingestion.provider_events import VerifiedEvent, WebhookRejectedError

PROVIDER = "stripe"
TOLERANCE_SECONDS = 300


class StripeWebhookVerifier:
    provider = PROVIDER

    def __init__(
        self, secret: str, tolerance_seconds: int = TOLERANCE_SECONDS, now: Callable[[], float] = time.time
    ) -> None:
        if not secret:
            raise ValueError("a webhook signing secret is required (STRIPE_WEBHOOK_SECRET)")
        self._secret = secret
        self._tolerance = tolerance_seconds
        self._now = now

    def verify(self, payload: bytes, signature: str | None) -> VerifiedEvent:
        if not signature:
            raise WebhookRejectedError("no Stripe-Signature header")
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            raise WebhookRejectedError("the body is not UTF-8") from None
        try:
            stripe.WebhookSignature.verify_header(text, signature, self._secret, tolerance=None)
        except stripe.SignatureVerificationError as error:
            raise WebhookRejectedError(f"signature: {error.user_message or error}") from None
        self._check_timestamp(signature)
        return read_event(text)

    def _check_timestamp(self, signature: str) -> None:
        """Within the tolerance either way (the header's `t`, which the signature covers)."""
        stamps = [part[2:] for part in signature.split(",") if part.startswith("t=")]
        timestamp = int(stamps[0]) if stamps and stamps[0].isdigit() and stamps[0].isascii() else None
        if timestamp is None:
            raise WebhookRejectedError("signature: no timestamp")
        skew = timestamp - self._now()
        if abs(skew) > self._tolerance:
            side = "ahead of" if skew > 0 else "behind"
            raise WebhookRejectedError(
                f"signature: the timestamp is {abs(int(skew))} s {side} our clock (tolerance {self._tolerance} s)"
            )
