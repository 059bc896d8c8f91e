"""/api/webhook-events: the inbox of Stripe events as an integrator reads it, and reprocessing,
over HTTP on each backend (deliveries signed as Stripe signs them)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

import httpx
import stripe

from tests.e2e.conftest import INVOICE, WEBHOOK_SECRET, Api
from tests.e2e.test_openapi import conforms
from tests.stripe_payloads import event_payload


def _deliver(api: Api, event_type: str, resource: str, event_id: str, **changes: Any) -> str:
    api.clock.advance(timedelta(minutes=1))  # one received_at each: the list's order is the arrival's
    body = event_payload(event_type, resource, event_id=event_id, **changes)
    signature = stripe.WebhookSignature.generate_signature_header(body.decode(), WEBHOOK_SECRET)
    response = httpx.post(api.base_url + "/webhooks/stripe", content=body, headers={"Stripe-Signature": signature})
    assert response.status_code == 200, response.text
    outcome: str = response.json()["outcome"]
    return outcome


def _paid(api: Api, event_id: str, intent: str, invoice_id: str | None) -> str:
    metadata = {"invoice_id": invoice_id} if invoice_id else {}
    return _deliver(
        api,
        "payment_intent.succeeded",
        "payment_intent",
        event_id,
        id=intent,
        amount=86_000,
        amount_received=86_000,
        currency="usd",
        status="succeeded",
        metadata=metadata,
    )


def _invoice(api: Api, *, issue: bool = True) -> dict[str, Any]:
    created = api.client.post("/api/invoices", json=INVOICE)
    assert created.status_code == 201, created.text
    invoice: dict[str, Any] = created.json()
    if issue:
        issued = api.client.post(f"/api/invoices/{invoice['id']}/issue")
        assert issued.status_code == 200, issued.text
        invoice = issued.json()
    return invoice


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    conforms(body, "Problem")
    return body


def test_the_inbox_lists_each_event_with_its_status_newest_first(api: Api) -> None:
    invoice = _invoice(api)
    assert invoice["total"] == 86_000  # the example invoice's total, which the payments below pay
    assert _paid(api, "evt_1Stranger", "pi_1Stranger", None) == "unmatched"
    assert _paid(api, "evt_1Paid", "pi_1Paid", invoice["id"]) == "applied"
    assert _deliver(api, "customer.created", "customer", "evt_1Customer", id="cus_1") == "ignored"

    listed = api.client.get("/api/webhook-events")
    assert listed.status_code == 200, listed.text
    body = listed.json()
    conforms(body, "WebhookEventList")
    assert [(e["id"], e["status"]) for e in body["data"]] == [
        ("evt_1Customer", "ignored"),
        ("evt_1Paid", "applied"),
        ("evt_1Stranger", "unmatched"),
    ]
    assert body["data"][1]["object_id"] == "pi_1Paid"
    assert body["data"][1]["type"] == "payment_intent.succeeded"

    unmatched = api.client.get("/api/webhook-events", params={"status": "unmatched"}).json()
    assert [e["id"] for e in unmatched["data"]] == ["evt_1Stranger"]
    first = api.client.get("/api/webhook-events", params={"limit": 2}).json()
    assert (len(first["data"]), first["has_more"]) == (2, True)
    rest = api.client.get("/api/webhook-events", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert ([e["id"] for e in rest["data"]], rest["has_more"], rest["next_cursor"]) == (["evt_1Stranger"], False, None)

    one = api.client.get("/api/webhook-events/evt_1Paid")
    assert one.status_code == 200
    conforms(one.json(), "WebhookEvent")
    assert one.json() == body["data"][1]
    _problem(api.client.get("/api/webhook-events/evt_1Never"), 404)


def test_bad_filters_are_refused_with_the_field_named(api: Api) -> None:
    for params, field in [({"status": "lost"}, "status"), ({"limit": "0"}, "limit"), ({"cursor": "x"}, "cursor")]:
        problem = _problem(api.client.get("/api/webhook-events", params=params), 422)
        assert [e["field"] for e in problem["errors"]] == [field]


def test_a_rejected_event_reprocessed_once_its_invoice_is_issued_is_applied_once(api: Api) -> None:
    draft = _invoice(api, issue=False)
    assert _paid(api, "evt_1OnDraft", "pi_1OnDraft", draft["id"]) == "refused"
    assert api.client.get("/api/webhook-events/evt_1OnDraft").json()["status"] == "rejected"
    issued = api.client.post(f"/api/invoices/{draft['id']}/issue")
    assert issued.status_code == 200, issued.text

    done = api.client.post("/api/webhook-events/evt_1OnDraft/reprocess")
    assert done.status_code == 200, done.text
    conforms(done.json(), "WebhookEventReprocessed")
    assert done.json()["previous_status"] == "rejected"
    assert (done.json()["status"], done.json()["reprocessing"]) == ("applied", 1)
    invoice = api.client.get(f"/api/invoices/{draft['id']}").json()
    assert (invoice["status"], invoice["amount_paid"]) == ("paid", 86_000)
    assert api.client.get("/api/webhook-events/evt_1OnDraft").json()["status"] == "applied"

    again = _problem(api.client.post("/api/webhook-events/evt_1OnDraft/reprocess"), 409)
    assert "applied already" in again["detail"]
    assert api.client.get(f"/api/invoices/{draft['id']}").json()["amount_paid"] == 86_000


def test_reprocessing_with_the_same_key_answers_as_the_first_time(api: Api) -> None:
    assert _paid(api, "evt_1Early", "pi_1Early", None) == "unmatched"
    invoice = _invoice(api)
    api.app.initiate_provider_payment(UUID(invoice["id"]), provider="stripe", provider_payment_id="pi_1Early")
    key = {"Idempotency-Key": "reprocess-evt_1Early"}
    first = api.client.post("/api/webhook-events/evt_1Early/reprocess", headers=key)
    again = api.client.post("/api/webhook-events/evt_1Early/reprocess", headers=key)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json()
    assert first.json()["status"] == "applied"
    assert api.client.get(f"/api/invoices/{invoice['id']}").json()["amount_paid"] == 86_000


def test_reprocessing_refuses_unknown_waiting_and_done_events(api: Api) -> None:
    refund = {"id": "re_1Early", "amount": 1_000, "status": "succeeded", "payment_intent": "pi_1Later"}
    assert _deliver(api, "refund.created", "refund", "evt_1Waiting", **refund) == "waiting"
    assert _deliver(api, "customer.created", "customer", "evt_1Customer", id="cus_1") == "ignored"
    waiting = _problem(api.client.post("/api/webhook-events/evt_1Waiting/reprocess"), 409)
    assert "waits for its payment" in waiting["detail"]
    _problem(api.client.post("/api/webhook-events/evt_1Customer/reprocess"), 409)
    _problem(api.client.post("/api/webhook-events/evt_1Never/reprocess"), 404)
    _problem(api.client.post("/api/webhook-events/evt_1Customer/reprocess", json={"force": True}), 422)
    anonymous = httpx.post(api.base_url + "/api/webhook-events/evt_1Customer/reprocess")
    assert anonymous.status_code == 401
