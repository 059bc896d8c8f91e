"""Stripe webhook deliveries checked as Stripe documents: the `Stripe-Signature` header's
HMAC-SHA256 over `timestamp.body` with the endpoint secret, and a timestamp no older than the
tolerance (300 s by default), then the body read as an event.

Verification runs on the raw bytes, before any parsing: a re-encoded body would not verify.
"""

from __future__ import annotations

import json
from typing import Any

import stripe

from commands.provider_events import VerifiedEvent, WebhookRejectedError

PROVIDER = "stripe"
TOLERANCE_SECONDS = 300


class StripeWebhookVerifier:
    provider = PROVIDER

    def __init__(self, secret: str, tolerance_seconds: int = TOLERANCE_SECONDS) -> None:
        if not secret:
            raise ValueError("a webhook signing secret is required (STRIPE_WEBHOOK_SECRET)")
        self._secret = secret
        self._tolerance = tolerance_seconds

    def verify(self, payload: bytes, signature: str | None) -> VerifiedEvent:
        if not signature:
            raise WebhookRejectedError("no Stripe-Signature header")
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            raise WebhookRejectedError("the body is not UTF-8") from None
        try:
            stripe.WebhookSignature.verify_header(text, signature, self._secret, self._tolerance)
        except stripe.SignatureVerificationError as error:
            raise WebhookRejectedError(f"signature: {error.user_message or error}") from None
        return _event(text)


def _event(text: str) -> VerifiedEvent:
    try:
        body: Any = json.loads(text)
    except ValueError:
        raise WebhookRejectedError("the body is not JSON") from None
    except RecursionError:  # a signed body nested 10,000 deep is a bad payload, not a server error
        raise WebhookRejectedError("the body nests too deeply") from None
    if not isinstance(body, dict) or body.get("object") != "event":
        raise WebhookRejectedError("the body is not a Stripe event")
    event_id, event_type, created = body.get("id"), body.get("type"), body.get("created")
    data = body.get("data")
    if not isinstance(event_id, str) or not event_id.startswith("evt_") or len(event_id) > 255:
        raise WebhookRejectedError("the event has no valid id")
    if not isinstance(event_type, str) or not event_type or len(event_type) > 100:
        raise WebhookRejectedError("the event has no type")
    if isinstance(created, bool) or not isinstance(created, int):
        raise WebhookRejectedError("the event has no creation time")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise WebhookRejectedError("the event has no data.object")
    return VerifiedEvent(
        event_id=event_id,
        event_type=event_type,
        created=created,
        livemode=bool(body.get("livemode", False)),
        data_object=data["object"],
        payload=text,
    )
