"""Stripe events over the webhook endpoint move money exactly once, whatever the order."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx
import pytest
import stripe

from commands.application import BillingApplication
from commands.messages import NewLine
from commands.provider_events import VerifiedEvent
from ledger.payments import payment_id_for
from tests.e2e.conftest import WEBHOOK_SECRET, Api
from tests.stripe_payloads import event_payload

PI = "pi_3QLedgerTest0001"
CHARGE = "ch_3QLedgerTest0001"
TOTAL = 86_000


class Stripe:
    """Delivers events as Stripe would, to a served ledger, and reads the ledger back."""

    def __init__(self, base_url: str, app: BillingApplication) -> None:
        self.base_url = base_url
        self.app = app
        self.sent = 0

    def deliver(self, event_type: str, resource: str, **fields: Any) -> dict[str, Any]:
        self.sent += 1
        event_id = fields.pop("event_id", f"evt_3QLedger{self.sent:06d}")
        body = event_payload(event_type, resource, event_id=event_id, **fields)
        header = stripe.WebhookSignature.generate_signature_header(body.decode(), WEBHOOK_SECRET)
        response = httpx.post(self.base_url + "/webhooks/stripe", content=body, headers={"Stripe-Signature": header})
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer


@pytest.fixture
def stripe_(api: Api) -> Stripe:
    """Stripe, delivering to the served API (its webhooks checked against WEBHOOK_SECRET)."""
    return Stripe(api.base_url, api.app)


def _open_invoice(app: BillingApplication) -> UUID:
    invoice_id = app.create_draft(
        customer={"email": "ap@acme.example", "name": "Acme"},
        currency="usd",
        lines=[NewLine("Platform fee", 1, 50_000), NewLine("Seats", "12", 2_500, "20")],
    )
    app.issue(invoice_id)
    return invoice_id


def _succeeded(invoice_id: UUID, amount: int = TOTAL) -> dict[str, Any]:
    return {
        "id": PI,
        "amount": amount,
        "amount_received": amount,
        "currency": "usd",
        "status": "succeeded",
        "latest_charge": CHARGE,
        "metadata": {"invoice_id": str(invoice_id)},
    }


def _charge(invoice_id: UUID, amount: int = TOTAL, **more: Any) -> dict[str, Any]:
    return {
        "id": CHARGE,
        "amount": amount,
        "amount_captured": amount,
        "currency": "usd",
        "payment_intent": PI,
        "status": "succeeded",
        "metadata": {"invoice_id": str(invoice_id)},
        **more,
    }


def test_one_payment_reported_three_ways_is_applied_once(stripe_: Stripe) -> None:
    invoice_id = _open_invoice(stripe_.app)
    session = {
        "payment_status": "paid",
        "status": "complete",
        "payment_intent": PI,
        "amount_total": TOTAL,
        "currency": "usd",
        "metadata": {"invoice_id": str(invoice_id)},
    }
    outcomes = [
        stripe_.deliver("charge.succeeded", "charge", **_charge(invoice_id))["outcome"],
        stripe_.deliver("checkout.session.completed", "checkout.session", **session)["outcome"],
        stripe_.deliver("payment_intent.succeeded", "payment_intent", **_succeeded(invoice_id))["outcome"],
    ]
    assert outcomes == ["applied"] * 3
    invoice = stripe_.app.invoice(invoice_id)
    assert (invoice.status, invoice.amount_paid, invoice.amount_due) == ("paid", TOTAL, 0)
    assert stripe_.app.payment(payment_id_for("stripe", PI)).charge_id == CHARGE


def test_a_redelivered_event_changes_nothing(stripe_: Stripe) -> None:
    invoice_id = _open_invoice(stripe_.app)
    first = stripe_.deliver(
        "payment_intent.succeeded", "payment_intent", event_id="evt_3QOnce", **_succeeded(invoice_id, 1_000)
    )
    again = stripe_.deliver(
        "payment_intent.succeeded", "payment_intent", event_id="evt_3QOnce", **_succeeded(invoice_id, 1_000)
    )
    assert (first["duplicate"], again["duplicate"], again["outcome"]) == (False, True, "applied")
    assert stripe_.app.invoice(invoice_id).amount_paid == 1_000


def test_a_failure_is_recorded_and_a_stale_one_never_undoes_the_success(stripe_: Stripe) -> None:
    invoice_id = _open_invoice(stripe_.app)
    failed = {
        **_succeeded(invoice_id),
        "amount_received": 0,
        "status": "requires_payment_method",
        "last_payment_error": {
            "charge": "ch_3QDeclined",
            "code": "card_declined",
            "decline_code": "insufficient_funds",
            "message": "Your card has insufficient funds.",
        },
    }
    assert stripe_.deliver("payment_intent.payment_failed", "payment_intent", **failed)["outcome"] == "applied"
    attempt = stripe_.app.invoice(invoice_id).failed_attempts[-1]
    assert (attempt["code"], attempt["message"]) == ("insufficient_funds", "Your card has insufficient funds.")
    stripe_.deliver("payment_intent.succeeded", "payment_intent", **_succeeded(invoice_id))
    late = dict(failed, last_payment_error={**failed["last_payment_error"], "charge": "ch_3QLateDecline"})
    assert stripe_.deliver("payment_intent.payment_failed", "payment_intent", **late)["outcome"] == "ignored"
    invoice = stripe_.app.invoice(invoice_id)
    assert (invoice.status, invoice.amount_paid) == ("paid", TOTAL)


def test_refunds_are_applied_once_by_refund_id(stripe_: Stripe) -> None:
    invoice_id = _open_invoice(stripe_.app)
    stripe_.deliver("payment_intent.succeeded", "payment_intent", **_succeeded(invoice_id))
    refund = {
        "id": "re_3QPartial",
        "object": "refund",
        "amount": 6_000,
        "currency": "usd",
        "status": "succeeded",
        "payment_intent": PI,
    }
    refunded = _charge(
        invoice_id,
        amount_refunded=6_000,
        refunded=False,
        refunds={"object": "list", "data": [refund], "has_more": False},
    )
    assert stripe_.deliver("charge.refunded", "charge", **refunded)["outcome"] == "applied"
    assert stripe_.deliver("refund.updated", "refund", **refund)["outcome"] == "applied"  # the same refund
    invoice = stripe_.app.invoice(invoice_id)
    assert (invoice.amount_paid, invoice.amount_refunded, invoice.status) == (TOTAL, 6_000, "paid")


def test_a_lost_dispute_is_recorded(stripe_: Stripe) -> None:
    invoice_id = _open_invoice(stripe_.app)
    stripe_.deliver("payment_intent.succeeded", "payment_intent", **_succeeded(invoice_id))
    dispute = {
        "id": "dp_3QFraud",
        "amount": TOTAL,
        "currency": "usd",
        "payment_intent": PI,
        "charge": CHARGE,
        "reason": "fraudulent",
    }
    assert (
        stripe_.deliver("charge.dispute.created", "dispute", status="needs_response", **dispute)["outcome"] == "applied"
    )
    assert stripe_.deliver("charge.dispute.closed", "dispute", status="lost", **dispute)["outcome"] == "applied"
    assert stripe_.app.invoice(invoice_id).amount_dispute_lost == TOTAL


def test_events_for_no_invoice_of_ours_are_kept_as_unmatched(stripe_: Stripe) -> None:
    answer = stripe_.deliver("charge.refunded", "charge", event_id="evt_3QStranger", payment_intent="pi_3QStranger")
    assert answer["outcome"] == "unmatched"
    kept = stripe_.app.provider_event("stripe", "evt_3QStranger")
    assert kept is not None
    assert kept.outcome == "unmatched"


def test_an_event_recorded_but_never_handled_is_handled_on_redelivery(stripe_: Stripe) -> None:
    """The process stopped between recording the event and handling it: Stripe's retry finishes the job."""
    invoice_id = _open_invoice(stripe_.app)
    body = _succeeded(invoice_id)
    stripe_.app.record_provider_event(
        VerifiedEvent("evt_3QInterrupted", "payment_intent.succeeded", 1, False, body, "{}"), provider="stripe"
    )
    assert stripe_.app.invoice(invoice_id).amount_paid == 0
    answer = stripe_.deliver("payment_intent.succeeded", "payment_intent", event_id="evt_3QInterrupted", **body)
    assert (answer["duplicate"], answer["outcome"]) == (True, "applied")
    assert stripe_.app.invoice(invoice_id).amount_paid == TOTAL
