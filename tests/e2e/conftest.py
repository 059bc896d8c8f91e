"""The API served for real: uvicorn on a free loopback port, in a thread, on each backend.

Requests go over TCP with httpx, as an integrator's would. The clock is the test's ManualClock,
so moments in responses are known.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import stripe
from sqlalchemy import Engine

from adapters.clock import ManualClock
from adapters.read_models import InProcessProjections, read_model_engine
from adapters.stripe import StripePaymentProvider, StripeRecords
from adapters.stripe.webhooks import StripeWebhookVerifier
from commands.application import BillingApplication
from commands.ingestion.provider_events import WebhookVerifier
from commands.ports import PaymentProvider
from commands.reconciliation.facts import ProviderRecords
from ledger.seller import Seller
from tests.conftest import AppFactory
from tests.served import ServedApp
from tests.stripe_payloads import _resources
from tests.stripe_server import API_KEY, StripeServer
from web.app import create_app
from web.models import EXAMPLE_INVOICE
from web.services import STRIPE_CHECKOUT_ORIGIN, Services

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WEBHOOK_SECRET = "whsec_test_0123456789abcdef"
# Signs the portal's links (LEDGER_SECRET_KEY): the portal is on in every served app unless a test turns it off.
SECRET_KEY = "test-portal-secret-0123456789abcdef-0123456789"

INVOICE: dict[str, Any] = copy.deepcopy(EXAMPLE_INVOICE)


@dataclass
class Api:
    client: httpx.Client  # authenticated, base URL set
    base_url: str
    app: BillingApplication
    engine: Engine
    clock: ManualClock


def deliver_event(base_url: str, event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
    """Send the webhook Stripe would send about `obj` to the served app's /webhooks/stripe,
    signed with the endpoint's secret (WEBHOOK_SECRET) as Stripe signs it; the ledger's answer."""
    event = copy.deepcopy(_resources()["event"])
    event.update(
        id=f"evt_{uuid.uuid4().hex}",
        type=event_type,
        created=int(time.time()),
        api_version=stripe.api_version,
        data={"object": obj},
    )
    body = json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(body, WEBHOOK_SECRET)
    answer = httpx.post(f"{base_url}/webhooks/stripe", content=body, headers={"Stripe-Signature": header}, timeout=30)
    assert answer.status_code == 200, answer.text
    received: dict[str, Any] = answer.json()
    return received


def serve(
    app: BillingApplication,
    engine: Engine,
    clock: ManualClock,
    *,
    follow: bool = False,
    payments: PaymentProvider | None = None,
    webhooks: WebhookVerifier | None = None,
    public_url: str | None = None,
    records: ProviderRecords | None = None,
    secret_key: str | None = SECRET_KEY,
    seller: Seller | None = None,
    checkout_origins: tuple[str, ...] = (),
) -> ServedApp:
    """The app served for real. `checkout_origins`: where a stand-in provider's checkout pages
    are, beside Stripe's (the portal's CSP lets Pay's redirect go there)."""
    read_models = InProcessProjections(app, engine)
    services = Services(
        app=app,
        read_models=read_models,
        clock=clock,
        api_token=TOKEN,
        inline_reads=engine.dialect.name == "sqlite",
        payments=payments,
        webhooks=webhooks,
        public_url=public_url,
        records=records,
        secret_key=secret_key,
        seller=seller or Seller(),
        checkout_origins=(STRIPE_CHECKOUT_ORIGIN, *checkout_origins),
    )
    asgi = create_app(services, on_startup=read_models.start if follow else None, on_shutdown=read_models.stop)
    return ServedApp(asgi)


@contextmanager
def served_api(
    app: BillingApplication,
    engine: Engine,
    clock: ManualClock,
    stripe_url: str,
    public_url: str | None = None,
    secret_key: str | None = SECRET_KEY,
) -> Iterator[Api]:
    """The API with Stripe configured (the test server at `stripe_url` stands in for it:
    checkout answers, reconciliation runs read its records, and webhooks are checked against
    WEBHOOK_SECRET)."""
    payments = StripePaymentProvider(API_KEY, api_base=stripe_url, max_network_retries=0)
    webhooks = StripeWebhookVerifier(WEBHOOK_SECRET)
    records = StripeRecords(API_KEY, api_base=stripe_url, sleep=lambda _: None)  # a retry does not wait
    served = serve(
        app,
        engine,
        clock,
        payments=payments,
        webhooks=webhooks,
        public_url=public_url,
        records=records,
        secret_key=secret_key,
        checkout_origins=(stripe_url.rstrip("/"),),
    )
    try:
        with httpx.Client(base_url=served.base_url, headers=AUTH, timeout=30) as client:
            yield Api(client, served.base_url, app, engine, clock)
    finally:
        served.stop()
        payments.close()
        records.close()


@pytest.fixture
def api(
    make_app: AppFactory, database_url: str, clock: ManualClock, shared_stripe_server: StripeServer
) -> Iterator[Api]:
    engine = read_model_engine(database_url)
    try:
        with served_api(make_app(), engine, clock, shared_stripe_server.base_url) as api:
            yield api
    finally:
        engine.dispose()
