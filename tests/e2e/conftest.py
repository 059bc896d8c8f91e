"""The API served for real: uvicorn on a free loopback port, in a thread, on each backend.

Requests go over TCP with httpx, as an integrator's would. The clock is the test's ManualClock,
so moments in responses are known.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine
from starlette.applications import Starlette

from adapters.clock import ManualClock
from adapters.read_models import InProcessProjections, read_model_engine
from adapters.stripe import StripePaymentProvider
from adapters.stripe.webhooks import StripeWebhookVerifier
from commands.application import BillingApplication
from commands.ports import PaymentProvider
from commands.provider_events import WebhookVerifier
from tests.conftest import AppFactory
from tests.pg_cluster import free_port
from tests.stripe_server import API_KEY, StripeServer
from web.app import create_app
from web.openapi import EXAMPLE_INVOICE
from web.services import Services

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WEBHOOK_SECRET = "whsec_test_0123456789abcdef"

INVOICE: dict[str, Any] = copy.deepcopy(EXAMPLE_INVOICE)


@dataclass
class Api:
    client: httpx.Client  # authenticated, base URL set
    base_url: str
    app: BillingApplication
    engine: Engine
    clock: ManualClock


class ServedApp:
    """An ASGI app served by uvicorn on a free loopback port until `stop()`."""

    def __init__(self, asgi: Starlette) -> None:
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(asgi, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


def serve(
    app: BillingApplication,
    engine: Engine,
    clock: ManualClock,
    *,
    follow: bool = False,
    payments: PaymentProvider | None = None,
    webhooks: WebhookVerifier | None = None,
) -> ServedApp:
    read_models = InProcessProjections(app, engine)
    services = Services(
        app=app,
        read_models=read_models,
        clock=clock,
        api_token=TOKEN,
        inline_reads=engine.dialect.name == "sqlite",
        payments=payments,
        webhooks=webhooks,
    )
    asgi = create_app(services, on_startup=read_models.start if follow else None, on_shutdown=read_models.stop)
    return ServedApp(asgi)


@pytest.fixture
def api(
    make_app: AppFactory, database_url: str, clock: ManualClock, shared_stripe_server: StripeServer
) -> Iterator[Api]:
    """The API with Stripe configured (the test server stands in for it: checkout answers, and
    webhooks are checked against WEBHOOK_SECRET)."""
    app = make_app()
    engine = read_model_engine(database_url)
    payments = StripePaymentProvider(API_KEY, api_base=shared_stripe_server.base_url, max_network_retries=0)
    served = serve(app, engine, clock, payments=payments, webhooks=StripeWebhookVerifier(WEBHOOK_SECRET))
    try:
        with httpx.Client(base_url=served.base_url, headers=AUTH, timeout=30) as client:
            yield Api(client, served.base_url, app, engine, clock)
    finally:
        served.stop()
        payments.close()
        engine.dispose()
