"""Money across the Stripe boundary, end to end, on each backend: an invoice in each currency
goes to Checkout (the real SDK against the test Stripe server) in Stripe's units for that
currency, the customer pays, and Stripe's webhooks bring the payment back in the ledger's units.

Stripe's units are not ISO 4217's (its currency documentation, special cases): isk is
two-decimal in Stripe (5 kr is `500`), mga zero-decimal (1 ariary is `1`, 100 of ours), kwd
three-decimal ending in 0; jpy, huf and usd are the same on both sides.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from adapters.clock import ManualClock
from adapters.read_models import read_model_engine
from tests.conftest import AppFactory
from tests.e2e.conftest import Api, deliver_event, served_api
from tests.stripe_payloads import stripe_object
from tests.stripe_server import StripeServer


@pytest.fixture
def api(make_app: AppFactory, database_url: str, clock: ManualClock, stripe_server: StripeServer) -> Iterator[Api]:
    engine = read_model_engine(database_url)
    try:
        with served_api(make_app(), engine, clock, stripe_server.base_url, "https://billing.example") as api:
            yield api
    finally:
        engine.dispose()


# currency, the invoice's one line in the ledger's minor units, what Stripe is asked for
CURRENCIES = [
    ("usd", 12_345, 12_345),
    ("jpy", 5_000, 5_000),
    ("kwd", 12_340, 12_340),  # 12.340 KWD
    ("isk", 5_000, 500_000),  # 5,000 kr
    ("huf", 123_450, 123_450),  # 1,234.50 Ft: two decimals in charges
    ("mga", 123_400, 1_234),  # 1,234 ariary
]


def _issued(api: Api, currency: str, amount: int) -> dict[str, Any]:
    body = {
        "customer": {"email": "ap@acme.example", "name": "Acme Ltd"},
        "currency": currency,
        "lines": [{"description": "Services", "quantity": 1, "unit_amount": amount}],
    }
    created = api.client.post("/api/invoices", json=body)
    assert created.status_code == 201, created.text
    issued = api.client.post(f"/api/invoices/{created.json()['id']}/issue")
    assert issued.status_code == 200, issued.text
    invoice: dict[str, Any] = issued.json()
    return invoice


@pytest.mark.parametrize(("currency", "amount", "stripes"), CURRENCIES)
def test_an_invoice_is_charged_in_stripes_units_and_paid_in_ours(
    api: Api, stripe_server: StripeServer, currency: str, amount: int, stripes: int
) -> None:
    invoice = _issued(api, currency, amount)
    assert invoice["total"] == amount

    checkout = api.client.post(f"/api/invoices/{invoice['id']}/checkout")
    assert checkout.status_code == 201, checkout.text
    session_id = checkout.json()["session_id"]
    [sent] = stripe_server.requests_to("POST", "/v1/checkout/sessions")
    assert sent.form["line_items"][0]["price_data"] == {
        "currency": currency,
        "unit_amount": str(stripes),
        "product_data": {"name": f"Invoice {invoice['number']}"},
    }
    assert stripe_server.sessions[session_id]["amount_total"] == stripes

    session, intent = stripe_server.complete_session(session_id)
    assert deliver_event(api.base_url, "checkout.session.completed", session)["outcome"] == "applied"
    # The same money, once:
    assert deliver_event(api.base_url, "payment_intent.succeeded", intent)["outcome"] == "duplicate"

    paid = api.client.get(f"/api/invoices/{invoice['id']}").json()
    assert (paid["status"], paid["amount_paid"], paid["amount_due"]) == ("paid", amount, 0)


@pytest.mark.parametrize(("currency", "amount"), [("mga", 123_450), ("kwd", 12_345)])
def test_an_amount_stripe_cannot_charge_is_a_422_and_stripe_is_not_called(
    api: Api, stripe_server: StripeServer, currency: str, amount: int
) -> None:
    """1,234.50 ariary has no Stripe amount (mga is whole ariary there); 12.345 KWD neither (a
    three-decimal amount must end in 0)."""
    invoice = _issued(api, currency, amount)
    checkout = api.client.post(f"/api/invoices/{invoice['id']}/checkout")
    assert checkout.status_code == 422, checkout.text
    assert checkout.headers["content-type"] == "application/problem+json"
    assert stripe_server.requests_to("POST", "/v1/checkout/sessions") == []
    unchanged = api.client.get(f"/api/invoices/{invoice['id']}").json()
    assert unchanged["amount_due"] == amount


def test_a_webhook_amount_stripe_could_not_have_meant_is_refused_naming_the_field(
    api: Api, stripe_server: StripeServer
) -> None:
    """An isk amount that is not whole krónur cannot be held by the ledger: the event is kept,
    refused, and says which field."""
    invoice = _issued(api, "isk", 5_000)
    metadata = {"invoice_id": invoice["id"]}
    intent = stripe_object("payment_intent", amount=500_050, amount_received=500_050, currency="isk", metadata=metadata)
    received = deliver_event(api.base_url, "payment_intent.succeeded", intent)
    assert received["outcome"] == "refused"
    kept = api.app.provider_event("stripe", received["id"])
    assert kept is not None
    assert "data.object.amount" in kept.detail
    assert api.client.get(f"/api/invoices/{invoice['id']}").json()["amount_paid"] == 0
