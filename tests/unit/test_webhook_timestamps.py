"""The webhook verifier's tolerance, at its exact edges, on a fixed clock."""

from __future__ import annotations

import pytest
import stripe

from adapters.stripe.webhooks import TOLERANCE_SECONDS, StripeWebhookVerifier
from commands.ingestion.provider_events import WebhookRejectedError
from tests.stripe_payloads import event_payload

SECRET = "whsec_edges"
NOW = 1_800_000_000


def _verify_signed_at(moment: int) -> None:
    body = event_payload("payment_intent.succeeded", "payment_intent", event_id="evt_1Edge").decode()
    header = stripe.WebhookSignature.generate_signature_header(body, SECRET, moment)
    StripeWebhookVerifier(SECRET, now=lambda: float(NOW)).verify(body.encode(), header)


@pytest.mark.parametrize("skew", [-TOLERANCE_SECONDS, 0, TOLERANCE_SECONDS])
def test_a_timestamp_within_the_tolerance_either_way_is_taken(skew: int) -> None:
    _verify_signed_at(NOW + skew)


@pytest.mark.parametrize(("skew", "side"), [(-TOLERANCE_SECONDS - 1, "behind"), (TOLERANCE_SECONDS + 1, "ahead of")])
def test_one_second_beyond_the_tolerance_is_refused_naming_the_side(skew: int, side: str) -> None:
    with pytest.raises(WebhookRejectedError, match=f"{TOLERANCE_SECONDS + 1} s {side} our clock"):
        _verify_signed_at(NOW + skew)
