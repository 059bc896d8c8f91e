"""`POST /api/invoices/{id}/checkout` over HTTP, with the real Stripe SDK talking to the
Stripe-compatible test server, on each backend."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from adapters.clock import ManualClock
from adapters.read_models import read_model_engine
from commands.portal.tokens import link_id_from
from ledger.portal.links import ACTIVE, PortalLink
from tests.conftest import AppFactory
from tests.e2e.conftest import AUTH, INVOICE, SECRET_KEY, Api, serve, served_api
from tests.e2e.test_openapi import conforms
from tests.stripe_server import StripeServer

PUBLIC_URL = "https://billing.example"


@pytest.fixture
def api(make_app: AppFactory, database_url: str, clock: ManualClock, stripe_server: StripeServer) -> Iterator[Api]:
    """The API served with Stripe configured: the adapter points at this test's own Stripe server."""
    engine = read_model_engine(database_url)
    try:
        with served_api(make_app(), engine, clock, stripe_server.base_url, PUBLIC_URL) as api:
            yield api
    finally:
        engine.dispose()


def _issued(api: Api, **changes: Any) -> dict[str, Any]:
    created = api.client.post("/api/invoices", json={**INVOICE, **changes})
    assert created.status_code == 201, created.text
    issued = api.client.post(f"/api/invoices/{created.json()['id']}/issue")
    assert issued.status_code == 200, issued.text
    invoice: dict[str, Any] = issued.json()
    return invoice


def _checkout(api: Api, invoice_id: str, body: Any = None, **headers: str) -> httpx.Response:
    return api.client.post(f"/api/invoices/{invoice_id}/checkout", json=body, headers=headers)


def test_checkout_opens_a_session_for_the_amount_due_and_records_it_on_the_invoice(
    api: Api, stripe_server: StripeServer
) -> None:
    invoice = _issued(api)
    response = _checkout(api, invoice["id"])

    assert response.status_code == 201, response.text
    body = response.json()
    conforms(body, "CheckoutStarted")
    session = stripe_server.sessions[body["session_id"]]
    assert body["checkout_url"] == session["url"]
    assert body["invoice"]["id"] == invoice["id"]
    assert response.headers["ETag"] == f'"{body["invoice"]["version"]}"'

    assert session["amount_total"] == invoice["amount_due"]
    assert session["currency"] == "usd"
    assert session["customer_email"] == "ap@acme.example"
    assert session["metadata"] == {"invoice_id": invoice["id"]}
    page = _portal_page(api, session["success_url"], invoice["id"])
    assert session["success_url"] == f"{page}?checkout=success"
    assert session["cancel_url"] == f"{page}?checkout=cancel"
    [sent] = stripe_server.requests_to("POST", "/v1/checkout/sessions")
    assert sent.form["payment_intent_data"]["metadata"] == {"invoice_id": invoice["id"]}
    assert sent.form["line_items"][0]["price_data"]["product_data"]["name"] == f"Invoice {invoice['number']}"

    recorded = api.app.invoice(uuid.UUID(invoice["id"]))
    assert recorded.checkouts == {
        body["session_id"]: {
            "provider": "stripe",
            "amount": invoice["amount_due"],
            "expires_at": body["expires_at"],
            "status": "open",
        }
    }
    assert body["invoice"]["version"] == invoice["version"] + 1
    assert recorded.payment_ids == []  # the payment comes with Stripe's report of it, keyed by its PaymentIntent


def _portal_page(api: Api, url: str, invoice_id: str) -> str:
    """The portal page of the invoice the URL is under, after checking its link: signed with the
    app's secret, issued by checkout for the invoice's customer."""
    match = re.fullmatch(rf"{re.escape(PUBLIC_URL)}/portal/([A-Za-z0-9_.-]+)/invoices/{invoice_id}\?checkout=\w+", url)
    assert match, url
    link = api.app.portal.link(link_id_from(match.group(1), SECRET_KEY))
    assert link is not None
    assert (link.customer_email, link.invoice_id, link.issued_by) == ("ap@acme.example", invoice_id, "checkout")
    return f"{PUBLIC_URL}/portal/{match.group(1)}/invoices/{invoice_id}"


def test_a_retry_with_the_same_key_gets_the_same_session_and_one_payment(api: Api, stripe_server: StripeServer) -> None:
    invoice = _issued(api)
    first = _checkout(api, invoice["id"], **{"Idempotency-Key": "pay-1"})
    again = _checkout(api, invoice["id"], **{"Idempotency-Key": "pay-1"})

    assert first.status_code == again.status_code == 201, again.text
    assert again.json() == first.json()
    assert [r.headers["idempotency-key"] for r in stripe_server.requests] == ["pay-1", "pay-1"]
    assert len(stripe_server.sessions) == 1
    # The same portal link, so the same return pages: the provider's idempotency compares them.
    assert stripe_server.requests[0].form["success_url"] == stripe_server.requests[1].form["success_url"]


def test_a_retry_without_a_key_gets_the_same_session_too(api: Api, stripe_server: StripeServer) -> None:
    invoice = _issued(api)
    first = _checkout(api, invoice["id"])
    again = _checkout(api, invoice["id"])

    assert again.json()["session_id"] == first.json()["session_id"]
    assert again.json()["invoice"]["version"] == first.json()["invoice"]["version"]
    assert len(stripe_server.sessions) == 1


def test_a_checkout_opened_again_once_its_link_expired_or_was_revoked_returns_to_a_page_that_opens(
    api: Api, stripe_server: StripeServer
) -> None:
    invoice = _issued(api)

    def return_link() -> PortalLink:
        opened = _checkout(api, invoice["id"])
        assert opened.status_code == 201, opened.text
        page = _portal_page(api, stripe_server.sessions[opened.json()["session_id"]]["success_url"], invoice["id"])
        link = api.app.portal.link(link_id_from(page.split("/")[4], SECRET_KEY))
        assert link is not None
        return link

    first = return_link()
    api.clock.advance(timedelta(days=31))  # the invoice still unpaid, the first link expired
    second = return_link()
    assert second.id != first.id
    assert second.status(at=api.clock.now()) == ACTIVE
    assert api.app.portal.revoke(second.id, reason="sent to the wrong address").result is True
    third = return_link()
    assert third.id not in (first.id, second.id)
    assert third.status(at=api.clock.now()) == ACTIVE
    assert return_link().id == third.id  # while it lasts, a retry meets the same link


def test_the_same_key_on_another_invoice_is_refused(api: Api, stripe_server: StripeServer) -> None:
    first, second = _issued(api), _issued(api)
    assert _checkout(api, first["id"], **{"Idempotency-Key": "pay-1"}).status_code == 201
    reused = _checkout(api, second["id"], **{"Idempotency-Key": "pay-1"})
    assert reused.status_code == 422, reused.text
    assert len(stripe_server.sessions) == 1


def test_without_a_secret_key_the_return_pages_must_be_given(
    make_app: AppFactory, database_url: str, clock: ManualClock, stripe_server: StripeServer
) -> None:
    engine = read_model_engine(database_url)
    try:
        with served_api(make_app(), engine, clock, stripe_server.base_url, PUBLIC_URL, secret_key=None) as api:
            invoice = _issued(api)
            refused = _checkout(api, invoice["id"])
            assert refused.status_code == 422, refused.text
            assert refused.json()["errors"][0]["field"] == "success_url"
            assert stripe_server.sessions == {}
            chosen = _checkout(
                api, invoice["id"], {"success_url": "https://a.example/ok", "cancel_url": "https://a.example/no"}
            )
            assert chosen.status_code == 201, chosen.text
    finally:
        engine.dispose()


def test_return_pages_can_be_chosen(api: Api, stripe_server: StripeServer) -> None:
    invoice = _issued(api)
    urls = {"success_url": "https://acme.example/paid?x=1", "cancel_url": "http://localhost:3000/invoices"}
    response = _checkout(api, invoice["id"], urls)
    assert response.status_code == 201, response.text
    session = stripe_server.sessions[response.json()["session_id"]]
    assert (session["success_url"], session["cancel_url"]) == (urls["success_url"], urls["cancel_url"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"success_url": "ftp://acme.example/paid"}, "success_url"),
        ({"cancel_url": "/relative"}, "cancel_url"),
        ({"success_url": "https://acme.example/a b"}, "success_url"),
        ({"success_url": "https://" + "a" * 2050 + ".example"}, "success_url"),
        ({"success_url": 7}, "success_url"),
        ({"return_url": "https://acme.example"}, "return_url"),
    ],
)
def test_bad_return_pages_are_refused(api: Api, stripe_server: StripeServer, body: Any, field: str) -> None:
    invoice = _issued(api)
    response = _checkout(api, invoice["id"], body)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field
    assert stripe_server.requests == []


def test_an_uncollectible_invoice_can_still_be_paid_and_a_partly_paid_one_for_what_is_left(
    api: Api, stripe_server: StripeServer
) -> None:
    invoice = _issued(api)
    paid = api.client.post(f"/api/invoices/{invoice['id']}/payments", json={"amount": 10_000, "reference": "w"})
    assert paid.status_code == 201, paid.text
    assert api.client.post(f"/api/invoices/{invoice['id']}/mark-uncollectible").status_code == 200

    response = _checkout(api, invoice["id"])
    assert response.status_code == 201, response.text
    assert stripe_server.sessions[response.json()["session_id"]]["amount_total"] == invoice["amount_due"] - 10_000


@pytest.mark.parametrize("state", ["draft", "paid", "void"])
def test_only_an_invoice_with_something_to_pay_goes_to_checkout(
    api: Api, stripe_server: StripeServer, state: str
) -> None:
    if state == "draft":
        invoice = api.client.post("/api/invoices", json=INVOICE).json()
    else:
        invoice = _issued(api)
        if state == "paid":
            paid = api.client.post(
                f"/api/invoices/{invoice['id']}/payments", json={"amount": invoice["amount_due"], "reference": "w"}
            )
            assert paid.status_code == 201
        else:
            assert api.client.post(f"/api/invoices/{invoice['id']}/void").status_code == 200
    head = api.app.head()

    response = _checkout(api, invoice["id"])
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert stripe_server.requests == []
    assert api.app.head() == head


@pytest.mark.parametrize("invoice_id", [str(uuid.uuid4()), "not-a-uuid"])
def test_an_unknown_invoice_is_not_found(api: Api, stripe_server: StripeServer, invoice_id: str) -> None:
    assert _checkout(api, invoice_id).status_code == 404
    assert stripe_server.requests == []


def test_a_deleted_draft_is_not_found(api: Api) -> None:
    draft = api.client.post("/api/invoices", json=INVOICE).json()
    assert api.client.delete(f"/api/invoices/{draft['id']}").status_code == 204
    assert _checkout(api, draft["id"]).status_code == 404


@pytest.mark.parametrize("kind", ["api_error", "rate_limit"])
def test_stripe_down_is_a_503_and_nothing_is_recorded(api: Api, stripe_server: StripeServer, kind: str) -> None:
    invoice = _issued(api)
    head = api.app.head()
    stripe_server.fail_next(kind)

    response = _checkout(api, invoice["id"])
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "1"
    assert response.json()["type"] == "urn:ledger:problem:provider-unavailable"
    assert api.app.head() == head

    retried = _checkout(api, invoice["id"])  # once Stripe is back, the same request goes through
    assert retried.status_code == 201, retried.text


def test_a_declined_payment_is_a_402(api: Api, stripe_server: StripeServer) -> None:
    invoice = _issued(api)
    head = api.app.head()
    stripe_server.fail_next("card_error")
    response = _checkout(api, invoice["id"])
    assert response.status_code == 402, response.text
    assert response.json()["type"] == "urn:ledger:problem:payment-declined"
    assert api.app.head() == head


def test_a_key_stripe_refuses_is_a_503_naming_the_configuration(api: Api, stripe_server: StripeServer) -> None:
    invoice = _issued(api)
    stripe_server.fail_next("authentication")
    response = _checkout(api, invoice["id"])
    assert response.status_code == 503, response.text
    assert response.json()["type"] == "urn:ledger:problem:provider-configuration"
    assert "Invalid API Key" in response.json()["detail"]


def test_without_stripe_configured_checkout_is_a_503(
    make_app: AppFactory, database_url: str, clock: ManualClock
) -> None:
    app = make_app()
    engine = read_model_engine(database_url)
    served = serve(app, engine, clock)  # as the other e2e tests serve it: no payment provider
    try:
        with httpx.Client(base_url=served.base_url, headers=AUTH, timeout=30) as client:
            created = client.post("/api/invoices", json=INVOICE).json()
            assert client.post(f"/api/invoices/{created['id']}/issue").status_code == 200
            head = app.head()
            response = client.post(f"/api/invoices/{created['id']}/checkout")
    finally:
        served.stop()
        engine.dispose()
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "STRIPE_API_KEY" in response.json()["detail"]
    assert app.head() == head


def test_a_key_that_cannot_be_a_stripe_header_is_sent_as_a_digest(api: Api, stripe_server: StripeServer) -> None:
    invoice = _issued(api)
    key = "clé 1".encode("latin-1")
    first = api.client.post(f"/api/invoices/{invoice['id']}/checkout", headers={"Idempotency-Key": key})
    again = api.client.post(f"/api/invoices/{invoice['id']}/checkout", headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 201, first.text
    assert again.json()["session_id"] == first.json()["session_id"]
    assert {r.headers["idempotency-key"] for r in stripe_server.requests} == {
        "ledger-key-" + hashlib.sha256("clé 1".encode()).hexdigest()
    }


def test_checkout_honours_if_match_before_stripe_is_called(api: Api, stripe_server: StripeServer) -> None:
    invoice = _issued(api)
    version = f'"{invoice["version"]}"'
    paid = api.client.post(f"/api/invoices/{invoice['id']}/payments", json={"amount": 1_000, "reference": "wire 1"})
    assert paid.status_code == 201, paid.text
    head = api.app.head()

    stale = _checkout(api, invoice["id"], **{"If-Match": version})  # the amount due changed since that version
    assert stale.status_code == 412, stale.text
    assert stale.json()["type"] == "urn:ledger:problem:stale-version"
    assert stripe_server.requests == []
    assert api.app.head() == head

    bad = _checkout(api, invoice["id"], **{"If-Match": "soon"})
    assert bad.status_code == 422, bad.text
    assert "If-Match" in {e["field"] for e in bad.json()["errors"]}

    current = _checkout(api, invoice["id"], **{"If-Match": paid.headers["ETag"]})
    assert current.status_code == 201, current.text


def test_a_checkout_retried_with_its_if_match_gets_the_same_session(api: Api, stripe_server: StripeServer) -> None:
    invoice = _issued(api)
    headers = {"If-Match": f'"{invoice["version"]}"', "Idempotency-Key": "pay-1"}
    first = _checkout(api, invoice["id"], **headers)
    # Opening the session moved the invoice's version on; it changed nothing the checkout pays for.
    again = _checkout(api, invoice["id"], **headers)

    assert first.status_code == again.status_code == 201, again.text
    assert again.json()["session_id"] == first.json()["session_id"]
    assert len(stripe_server.sessions) == 1
