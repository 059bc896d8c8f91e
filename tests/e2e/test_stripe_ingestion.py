"""Stripe events over the webhook endpoint move money exactly once, whatever the order."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import httpx
import pytest
import stripe

from commands.application import BillingApplication
from commands.messages import NewLine
from ledger.errors import PaymentNotFoundError
from ledger.money import Money
from ledger.payments import payment_id_for
from ledger.payouts import payout_id_for
from tests.e2e.conftest import WEBHOOK_SECRET, Api
from tests.stripe_payloads import event_payload, verified_event

PI = "pi_3QLedgerTest0001"
CHARGE = "ch_3QLedgerTest0001"
TOTAL = 86_000
_SOON = datetime(2030, 1, 1, tzinfo=UTC)


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
    ).result
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
        "captured": True,
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
    assert outcomes == ["applied", "duplicate", "duplicate"]  # the second and third report the same money
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
    assert stripe_.deliver("refund.updated", "refund", **refund)["outcome"] == "duplicate"  # the same refund
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
        verified_event("evt_3QInterrupted", "payment_intent.succeeded", "payment_intent", **body), provider="stripe"
    )
    assert stripe_.app.invoice(invoice_id).amount_paid == 0
    answer = stripe_.deliver("payment_intent.succeeded", "payment_intent", event_id="evt_3QInterrupted", **body)
    assert (answer["duplicate"], answer["outcome"]) == (True, "applied")
    assert stripe_.app.invoice(invoice_id).amount_paid == TOTAL


def _refund(amount: int, refund_id: str = "re_3QEarly") -> dict[str, Any]:
    return {"id": refund_id, "amount": amount, "currency": "usd", "status": "succeeded", "payment_intent": PI}


def _dispute(status: str, amount: int = TOTAL) -> dict[str, Any]:
    return {
        "id": "dp_3QEarly",
        "amount": amount,
        "currency": "usd",
        "payment_intent": PI,
        "charge": CHARGE,
        "reason": "fraudulent",
        "status": status,
    }


def test_a_refund_before_its_payment_waits_and_is_applied_with_it(stripe_: Stripe) -> None:
    invoice_id = _open_invoice(stripe_.app)
    early = stripe_.deliver("refund.created", "refund", event_id="evt_3QEarlyRefund", **_refund(6_000))
    assert early["outcome"] == "waiting"
    assert stripe_.app.invoice(invoice_id).amount_refunded == 0

    assert (
        stripe_.deliver("payment_intent.succeeded", "payment_intent", **_succeeded(invoice_id))["outcome"] == "applied"
    )
    invoice = stripe_.app.invoice(invoice_id)
    assert (invoice.status, invoice.amount_paid, invoice.amount_refunded) == ("paid", TOTAL, 6_000)
    kept = stripe_.app.provider_event("stripe", "evt_3QEarlyRefund")
    assert kept is not None
    assert kept.outcome == "applied"
    # Its redelivery, and the later report of the same refund, change nothing.
    assert stripe_.deliver("refund.created", "refund", event_id="evt_3QEarlyRefund", **_refund(6_000))["duplicate"]
    assert stripe_.deliver("refund.updated", "refund", **_refund(6_000))["outcome"] == "duplicate"
    assert stripe_.app.invoice(invoice_id).amount_refunded == 6_000


def test_a_dispute_opened_and_closed_before_its_payment_is_applied_in_order(stripe_: Stripe) -> None:
    invoice_id = _open_invoice(stripe_.app)
    assert stripe_.deliver("charge.dispute.closed", "dispute", **_dispute("lost"))["outcome"] == "waiting"
    assert stripe_.deliver("charge.dispute.created", "dispute", **_dispute("needs_response"))["outcome"] == "waiting"
    stripe_.deliver("charge.succeeded", "charge", **_charge(invoice_id))
    invoice = stripe_.app.invoice(invoice_id)
    assert (invoice.status, invoice.amount_paid, invoice.amount_dispute_lost, invoice.amount_disputed) == (
        "paid",
        TOTAL,
        TOTAL,
        0,
    )


def test_a_closing_reported_before_the_opening_opens_and_closes_the_dispute(stripe_: Stripe) -> None:
    invoice_id = _open_invoice(stripe_.app)
    stripe_.deliver("payment_intent.succeeded", "payment_intent", **_succeeded(invoice_id))
    assert stripe_.deliver("charge.dispute.closed", "dispute", **_dispute("won", 5_000))["outcome"] == "applied"
    assert stripe_.deliver("charge.dispute.created", "dispute", **_dispute("needs_response", 5_000))["outcome"] == (
        "duplicate"
    )
    invoice = stripe_.app.invoice(invoice_id)
    assert invoice.disputes["dp_3QEarly"]["status"] == "won"
    assert (invoice.amount_disputed, invoice.amount_dispute_lost) == (0, 0)


def test_a_refunded_charge_seen_first_applies_its_payment_then_its_refunds(stripe_: Stripe) -> None:
    invoice_id = _open_invoice(stripe_.app)
    refunded = _charge(invoice_id, refunds={"object": "list", "data": [_refund(1_000)], "has_more": False})
    assert stripe_.deliver("charge.refunded", "charge", **refunded)["outcome"] == "applied"
    assert stripe_.deliver("payment_intent.succeeded", "payment_intent", **_succeeded(invoice_id))["outcome"] == (
        "duplicate"
    )
    invoice = stripe_.app.invoice(invoice_id)
    assert (invoice.amount_paid, invoice.amount_refunded) == (TOTAL, 1_000)


def test_a_refund_beyond_the_payment_is_refused_when_the_payment_arrives_and_the_payment_still_counts(
    stripe_: Stripe,
) -> None:
    invoice_id = _open_invoice(stripe_.app)
    stripe_.deliver("refund.created", "refund", event_id="evt_3QTooMuch", **_refund(TOTAL + 1))
    stripe_.deliver("payment_intent.succeeded", "payment_intent", **_succeeded(invoice_id))
    invoice = stripe_.app.invoice(invoice_id)
    assert (invoice.amount_paid, invoice.amount_refunded) == (TOTAL, 0)
    kept = stripe_.app.provider_event("stripe", "evt_3QTooMuch")
    assert kept is not None
    assert kept.outcome == "refused"


def test_processing_then_canceled_never_undo_a_success(stripe_: Stripe) -> None:
    invoice_id = _open_invoice(stripe_.app)
    processing = {**_succeeded(invoice_id), "status": "processing", "amount_received": 0}
    assert stripe_.deliver("payment_intent.processing", "payment_intent", **processing)["outcome"] == "applied"
    assert stripe_.app.payment(payment_id_for("stripe", PI)).status == "processing"
    stripe_.deliver("payment_intent.succeeded", "payment_intent", **_succeeded(invoice_id))
    canceled = {**processing, "status": "canceled", "cancellation_reason": "abandoned"}
    assert stripe_.deliver("payment_intent.processing", "payment_intent", **processing)["outcome"] == "ignored"
    assert stripe_.deliver("payment_intent.canceled", "payment_intent", **canceled)["outcome"] == "ignored"
    assert stripe_.app.payment(payment_id_for("stripe", PI)).status == "succeeded"
    assert stripe_.app.invoice(invoice_id).status == "paid"


def test_a_canceled_payment_intent_is_recorded_on_its_payment(stripe_: Stripe) -> None:
    invoice_id = _open_invoice(stripe_.app)
    canceled = {
        **_succeeded(invoice_id),
        "status": "canceled",
        "amount_received": 0,
        "cancellation_reason": "abandoned",
    }
    assert stripe_.deliver("payment_intent.canceled", "payment_intent", **canceled)["outcome"] == "applied"
    payment = stripe_.app.payment(payment_id_for("stripe", PI))
    assert (payment.status, payment.cancellation_reason) == ("canceled", "abandoned")
    assert stripe_.app.invoice(invoice_id).amount_due == TOTAL


def _session(invoice_id: UUID, session_id: str, **more: Any) -> dict[str, Any]:
    return {
        "id": session_id,
        "payment_intent": PI,
        "amount_total": TOTAL,
        "currency": "usd",
        "metadata": {"invoice_id": str(invoice_id)},
        **more,
    }


def test_checkout_sessions_close_as_completed_or_expired_on_the_invoice(stripe_: Stripe) -> None:
    invoice_id = _open_invoice(stripe_.app)
    stripe_.app.start_checkout(
        invoice_id, provider="stripe", session_id="cs_3QOld", amount=Money(TOTAL, "usd"), expires_at=_SOON
    )
    stripe_.app.start_checkout(
        invoice_id, provider="stripe", session_id="cs_3QNew", amount=Money(TOTAL, "usd"), expires_at=_SOON
    )
    expired = _session(invoice_id, "cs_3QOld", status="expired", payment_status="unpaid", payment_intent=None)
    assert stripe_.deliver("checkout.session.expired", "checkout.session", **expired)["outcome"] == "applied"
    paid = _session(invoice_id, "cs_3QNew", status="complete", payment_status="paid")
    assert stripe_.deliver("checkout.session.completed", "checkout.session", **paid)["outcome"] == "applied"
    invoice = stripe_.app.invoice(invoice_id)
    assert {k: v["status"] for k, v in invoice.checkouts.items()} == {"cs_3QOld": "expired", "cs_3QNew": "completed"}
    assert (invoice.status, invoice.amount_paid) == ("paid", TOTAL)


def test_a_delayed_checkout_payment_is_processing_then_fails_as_an_attempt(stripe_: Stripe) -> None:
    invoice_id = _open_invoice(stripe_.app)
    pending = _session(invoice_id, "cs_3QDebit", status="complete", payment_status="unpaid")
    assert stripe_.deliver("checkout.session.completed", "checkout.session", **pending)["outcome"] == "applied"
    assert stripe_.app.payment(payment_id_for("stripe", PI)).status == "processing"
    failed = _session(invoice_id, "cs_3QDebit", status="complete", payment_status="unpaid")
    answer = stripe_.deliver("checkout.session.async_payment_failed", "checkout.session", **failed)
    assert answer["outcome"] == "applied"
    invoice = stripe_.app.invoice(invoice_id)
    assert invoice.failed_attempts[-1]["code"] == "async_payment_failed"
    assert invoice.amount_due == TOTAL


def test_a_refused_event_leaves_nothing_but_its_own_record(stripe_: Stripe) -> None:
    """charge.refunded applies the payment it shows, then refuses a refund beyond it: all or nothing."""
    invoice_id = _open_invoice(stripe_.app)
    too_much = _charge(invoice_id, refunds={"object": "list", "data": [_refund(TOTAL + 5)], "has_more": False})
    answer = stripe_.deliver("charge.refunded", "charge", event_id="evt_3QAllOrNothing", **too_much)
    assert answer["outcome"] == "refused"
    invoice = stripe_.app.invoice(invoice_id)
    assert (invoice.amount_paid, invoice.amount_refunded, invoice.version) == (0, 0, 4)  # created, 2 lines, issued
    with pytest.raises(PaymentNotFoundError):
        stripe_.app.payment(payment_id_for("stripe", PI))


def test_payouts_move_the_processor_balance_to_the_bank_once_and_back_when_they_fail(stripe_: Stripe) -> None:
    payout = {"id": "po_3QWeekly", "amount": 50_000, "currency": "usd", "status": "paid"}
    assert stripe_.deliver("payout.paid", "payout", **payout)["outcome"] == "applied"
    assert stripe_.deliver("payout.paid", "payout", **payout)["outcome"] == "duplicate"  # another event, same payout
    kept = stripe_.app.repository.get(payout_id_for("stripe", "po_3QWeekly"))
    assert (kept.status, kept.amount) == ("paid", 50_000)
    failed = {**payout, "status": "failed", "failure_code": "account_closed", "failure_message": "closed"}
    assert stripe_.deliver("payout.failed", "payout", **failed)["outcome"] == "applied"
    kept = stripe_.app.repository.get(payout_id_for("stripe", "po_3QWeekly"))
    assert (kept.status, kept.failure) == ("failed", {"code": "account_closed", "message": "closed"})
    assert stripe_.deliver("payout.paid", "payout", **payout)["outcome"] == "ignored"  # late: it failed since
    other = {**payout, "amount": 1}
    assert stripe_.deliver("payout.failed", "payout", **other)["outcome"] == "refused"  # not the amount on record


def test_a_refund_or_dispute_in_another_currency_than_its_payment_is_refused_not_rescaled(stripe_: Stripe) -> None:
    # A jpy refund of 6,000 against a usd payment is not 60.00 usd: it is not this payment's money.
    invoice_id = _open_invoice(stripe_.app)
    waiting = stripe_.deliver(
        "refund.created", "refund", event_id="evt_3QYenEarly", **{**_refund(6_000), "currency": "jpy"}
    )
    assert waiting["outcome"] == "waiting"
    stripe_.deliver("payment_intent.succeeded", "payment_intent", **_succeeded(invoice_id))
    early = stripe_.app.provider_event("stripe", "evt_3QYenEarly")
    assert early is not None
    assert early.outcome == "refused"
    late = stripe_.deliver("refund.created", "refund", **{**_refund(6_000, "re_3QYen"), "currency": "jpy"})
    assert late["outcome"] == "refused"
    disputed = stripe_.deliver("charge.dispute.created", "dispute", **{**_dispute("needs_response"), "currency": "eur"})
    assert disputed["outcome"] == "refused"
    invoice = stripe_.app.invoice(invoice_id)
    assert (invoice.status, invoice.amount_paid, invoice.amount_refunded) == ("paid", TOTAL, 0)
    assert invoice.disputes == {}
