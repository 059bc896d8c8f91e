"""The Stripe test server cannot drift into a Stripe that does not exist: its objects are
Stripe's own examples, and carry every field the SDK's resource classes declare."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import stripe

from adapters.stripe import StripePaymentProvider
from tests.stripe_server import API_KEY, FIXTURES, StripeServer

ROOT = Path(__file__).resolve().parents[2]
# ../shared beside the clone (CI); a worktree sits one level deeper.
CANDIDATES = [base / "shared" / "stripe" / "fixtures3.json" for base in (ROOT.parent, ROOT.parent.parent)]


def _declared(resource: type[Any]) -> set[str]:
    """The fields the SDK's class for a Stripe object declares (not its class-level constants)."""
    return {name for name, kind in resource.__annotations__.items() if "ClassVar" not in str(kind)}


def _missing(obj: dict[str, Any], resource: type[Any]) -> list[str]:
    return sorted(_declared(resource) - set(obj))


def test_every_object_the_server_returns_has_every_field_the_sdk_declares(stripe_server: StripeServer) -> None:
    provider = StripePaymentProvider(API_KEY, api_base=stripe_server.base_url, max_network_retries=0)
    try:
        session = provider.create_checkout_session(
            invoice_id="0b9b6f2e-8c1d-4f5e-9a3b-2c7d1e0f4a56",
            amount=1_000,
            currency="usd",
            customer_email="ap@acme.example",
            description="Invoice",
            success_url="https://billing.example/ok",
            cancel_url="https://billing.example/cancel",
            idempotency_key="k",
        )
        failed = stripe_server.add_failed_payment_intent(amount=1_000, currency="usd")
        provider.retry_payment(provider_payment_id=failed, idempotency_key="r")
        provider.report_meter_event(
            event_name="api_calls", customer_id="cus_1", value=3, identifier="m-1", at=datetime.now(UTC)
        )
    finally:
        provider.close()
    paid_session, paid_intent = stripe_server.complete_session(session.id)
    answered = [r for r in stripe_server.requests if r.status == 200]
    assert {r.path for r in answered} >= {"/v1/checkout/sessions", f"/v1/payment_intents/{failed}"}

    assert _missing(stripe_server.sessions[session.id], stripe.checkout.Session) == []
    assert _missing(paid_session, stripe.checkout.Session) == []
    assert _missing(stripe_server.payment_intents[failed], stripe.PaymentIntent) == []
    assert _missing(paid_intent, stripe.PaymentIntent) == []
    assert _missing(next(iter(stripe_server.state.meter_events.values())), stripe.billing.MeterEvent) == []


def test_the_copied_examples_are_stripes_own() -> None:
    """tests/fixtures/stripe_objects.json is a verbatim copy of the resources used from fixtures3.json."""
    found = [path for path in CANDIDATES if path.exists()]
    if not found:
        pytest.skip("no ../shared/stripe/fixtures3.json beside the clone")
    shared = json.loads(found[0].read_text())["resources"]
    copied = json.loads(FIXTURES.read_text())["resources"]
    assert {name: shared[name] for name in copied} == copied
