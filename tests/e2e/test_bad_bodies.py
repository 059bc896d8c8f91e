"""Every route that reads a body, driven with bodies that do not decode: each answers a 4xx
problem+json, stores nothing, and no exception reaches the ASGI server.

The routes are enumerated from the app itself, so a route added later is driven too. The app is
called directly (no server between) through httpx's ASGI transport with
`raise_app_exceptions=True`: an exception that escapes a handler fails the test instead of
becoming a 500.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from adapters.clock import ManualClock
from adapters.read_models import InProcessProjections, read_model_engine
from adapters.stripe.webhooks import StripeWebhookVerifier
from commands.application import BillingApplication
from tests.conftest import AppFactory
from tests.e2e.conftest import AUTH, INVOICE, TOKEN, WEBHOOK_SECRET
from web.app import create_app
from web.services import Services

DEEP = b"[" * 10_000 + b"]" * 10_000
DEEP_OBJECT = b'{"a":' * 10_000 + b"1" + b"}" * 10_000
BODIES = {
    "deep array": DEEP,
    "deep object": DEEP_OBJECT,
    "deep inside an object": b'{"metadata": ' + DEEP + b"}",
    "not UTF-8": b'{"memo": "\xff\xfe"}',
    "not JSON": b"currency=usd",
    "an array": b"[1, 2]",
    "a string": b'"invoice"',
    "a number": b"12",
}


@pytest.fixture
def served(
    make_app: AppFactory, database_url: str, clock: ManualClock
) -> Iterator[tuple[Starlette, BillingApplication]]:
    app = make_app()
    engine = read_model_engine(database_url)
    services = Services(
        app=app,
        read_models=InProcessProjections(app, engine),
        clock=clock,
        api_token=TOKEN,
        webhooks=StripeWebhookVerifier(WEBHOOK_SECRET),
    )
    try:
        yield create_app(services), app
    finally:
        engine.dispose()


def _send(asgi: Starlette, requests: list[dict[str, Any]]) -> list[httpx.Response]:
    async def send_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=asgi, raise_app_exceptions=True)
        async with httpx.AsyncClient(transport=transport, base_url="http://ledger.test") as client:
            return [await client.request(**request) for request in requests]

    return asyncio.run(send_all())


def _writes(asgi: Starlette) -> list[tuple[str, str]]:
    routes = [route for route in asgi.routes if isinstance(route, Route)]
    found = [
        (method, route.path) for route in routes for method in route.methods or () if method not in {"GET", "HEAD"}
    ]
    assert len(found) >= 15, found
    return found


def _signed(body: bytes) -> dict[str, str]:
    timestamp = str(int(time.time()))
    signature = hmac.new(WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={timestamp},v1={signature}"}


@pytest.mark.parametrize("name", list(BODIES))
def test_a_body_that_does_not_decode_is_a_4xx_problem_on_every_route(
    served: tuple[Starlette, BillingApplication], name: str
) -> None:
    asgi, app = served
    [created] = _send(asgi, [{"method": "POST", "url": "/api/invoices", "json": INVOICE, "headers": AUTH}])
    invoice = created.json()
    values = {
        "invoice_id": invoice["id"],
        "line_id": invoice["lines"][0]["id"],
        "key": "acme",
        "event_id": "evt_1",
        "item_id": str(uuid4()),  # none such: the body is refused before the item is looked for
    }
    body = BODIES[name]
    head = app.head()
    writes = _writes(asgi)
    requests = []
    for method, path in writes:
        headers = {**AUTH, "Content-Type": "application/json", "Idempotency-Key": str(uuid4())}
        if path.startswith("/webhooks/"):
            headers.update(_signed(body))
        requests.append({"method": method, "url": path.format(**values), "content": body, "headers": headers})
    for (method, path), response in zip(writes, _send(asgi, requests), strict=True):
        assert 400 <= response.status_code < 500, (method, path, response.status_code, response.text[:300])
        assert response.headers["content-type"] == "application/problem+json", (method, path)
        assert {"type", "title", "status", "detail"} <= set(response.json()), (method, path)
    assert app.head() == head  # nothing stored
