"""What the chaos test (test_stripe_chaos.py) found, each shown by the shortest stream that shows it.

Each test states the contract (docs/stripe.md and docs/adr/0003-idempotency-receipts.md, the module
docstring of commands/ingestion/stripe_events.py) and delivers events in an order Stripe may use. The last two show
what concurrent deliveries do, with the interleaving made deterministic: one event is decided
on what it read, another commits, then the first commits.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import httpx
import pytest
import stripe

from commands.application import BillingApplication
from commands.ingestion import stripe_events
from commands.ingestion.provider_events import VerifiedEvent
from commands.messages import NewLine
from commands.work import Work
from ledger.money import Money
from ledger.payments import Payment, payment_id_for
from tests.conftest import AppFactory
from tests.e2e.conftest import WEBHOOK_SECRET, Api
from tests.stripe_payloads import event_payload, verified_event

PI = "pi_3QFinding0001"
CHARGE = "ch_3QFinding0001"
DECLINED = "ch_3QFindingDeclined1"
TOTAL = 40_000


class Hook:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.sent = 0

    def deliver(self, event_type: str, resource: str, **obj: Any) -> str:
        """Deliver a signed event; the outcome the ledger answered."""
        self.sent += 1
        body = event_payload(event_type, resource, event_id=f"evt_3QFinding{self.sent:04d}", **obj)
        header = stripe.WebhookSignature.generate_signature_header(body.decode(), WEBHOOK_SECRET)
        response = httpx.post(
            self.api.base_url + "/webhooks/stripe", content=body, headers={"Stripe-Signature": header}, timeout=30
        )
        assert response.status_code == 200, response.text
        outcome: str = response.json()["outcome"]
        return outcome

    def outcome(self, n: int) -> str | None:
        kept = self.api.app.provider_event("stripe", f"evt_3QFinding{n:04d}")
        return None if kept is None else kept.outcome


@pytest.fixture
def hook(api: Api) -> Hook:
    return Hook(api)


def _invoice(app: BillingApplication) -> UUID:
    invoice_id = app.create_draft(
        customer={"email": "ap@acme.example", "name": "Acme"}, currency="usd", lines=[NewLine("Plan", 1, TOTAL)]
    ).result
    app.issue(invoice_id)
    return invoice_id


def _intent(invoice_id: UUID, **more: Any) -> dict[str, Any]:
    return {
        "id": PI,
        "amount": TOTAL,
        "amount_received": 0,
        "currency": "usd",
        "status": "requires_payment_method",
        "latest_charge": None,
        "metadata": {"invoice_id": str(invoice_id)},
        **more,
    }


def _declined(invoice_id: UUID, charge: str = DECLINED) -> dict[str, Any]:
    error = {"type": "card_error", "charge": charge, "code": "card_declined", "decline_code": "insufficient_funds"}
    return _intent(invoice_id, latest_charge=charge, last_payment_error=error)


def _succeeded(invoice_id: UUID) -> dict[str, Any]:
    return _intent(invoice_id, status="succeeded", amount_received=TOTAL, latest_charge=CHARGE)


def _refund(refund_id: str = "re_3QFinding1", amount: int = 5_000, status: str = "succeeded") -> dict[str, Any]:
    return {"id": refund_id, "amount": amount, "currency": "usd", "status": status, "payment_intent": PI}


def _dispute(status: str) -> dict[str, Any]:
    return {
        "id": "dp_3QFinding1",
        "amount": TOTAL,
        "currency": "usd",
        "payment_intent": PI,
        "charge": CHARGE,
        "status": status,
    }


def test_a_dispute_reported_after_a_decline_and_before_the_success_is_recorded_when_the_success_arrives(
    hook: Hook,
) -> None:
    """Found with seed 20260302. Seen: both dispute events `refused` ("cannot dispute payment ...:
    it is failed"), and the lost dispute never recorded (amount_dispute_lost 0)."""
    invoice_id = _invoice(hook.api.app)
    hook.deliver("payment_intent.payment_failed", "payment_intent", **_declined(invoice_id))
    hook.deliver("charge.dispute.created", "dispute", **_dispute("needs_response"))
    hook.deliver("charge.dispute.closed", "dispute", **_dispute("lost"))
    hook.deliver("payment_intent.succeeded", "payment_intent", **_succeeded(invoice_id))
    invoice = hook.api.app.invoice(invoice_id)
    assert (invoice.status, invoice.amount_paid, invoice.amount_dispute_lost) == ("paid", TOTAL, TOTAL)
    assert (hook.outcome(2), hook.outcome(3)) == ("applied", "applied")


def test_a_refund_reported_while_the_payment_is_processing_is_applied_when_the_success_arrives(hook: Hook) -> None:
    """Seen: the refund event `refused` ("cannot refund payment ...: it is processing") and the
    refund never recorded (amount_refunded 0)."""
    invoice_id = _invoice(hook.api.app)
    hook.deliver("payment_intent.processing", "payment_intent", **_intent(invoice_id, status="processing"))
    hook.deliver("refund.updated", "refund", **_refund())
    hook.deliver("payment_intent.succeeded", "payment_intent", **_succeeded(invoice_id))
    invoice = hook.api.app.invoice(invoice_id)
    assert (invoice.amount_paid, invoice.amount_refunded) == (TOTAL, 5_000)
    assert hook.outcome(2) == "applied"


def test_a_refunded_charge_reported_after_a_decline_applies_the_capture_it_shows(hook: Hook) -> None:
    """ "`charge.refunded` itself shows the capture, so when it names our invoice it applies the
    payment first" holds only when no report created the payment before. Seen after a decline:
    `refused` ("cannot refund payment ...: it is failed"), amount_paid 0; and a later decline of
    another charge is recorded as a failed attempt although the payment had been captured."""
    invoice_id = _invoice(hook.api.app)
    hook.deliver("payment_intent.payment_failed", "payment_intent", **_declined(invoice_id))
    refunded = {
        "id": CHARGE,
        "amount": TOTAL,
        "amount_captured": TOTAL,
        "amount_refunded": 5_000,
        "captured": True,
        "currency": "usd",
        "payment_intent": PI,
        "status": "succeeded",
        "metadata": {"invoice_id": str(invoice_id)},
        "refunds": {"object": "list", "data": [_refund()], "has_more": False},
    }
    assert hook.deliver("charge.refunded", "charge", **refunded) == "applied"
    assert hook.deliver("payment_intent.payment_failed", "payment_intent", **_declined(invoice_id, "ch_3QLate")) == (
        "ignored"
    )
    invoice = hook.api.app.invoice(invoice_id)
    assert (invoice.status, invoice.amount_paid, invoice.amount_refunded) == ("paid", TOTAL, 5_000)
    assert len(invoice.failed_attempts) == 1


def test_a_second_report_of_a_waiting_refund_is_not_left_waiting_once_the_payment_arrives(hook: Hook) -> None:
    """Was seen: the first report is marked `applied` when the payment arrives; the second stayed
    `waiting` for ever (the movement keeps only the first report's event id). The second report
    of a refund already waiting is now a `duplicate`: it adds nothing, the first one carries it."""
    invoice_id = _invoice(hook.api.app)
    assert hook.deliver("refund.created", "refund", **_refund()) == "waiting"
    assert hook.deliver("refund.updated", "refund", **_refund()) == "duplicate"
    hook.deliver("payment_intent.succeeded", "payment_intent", **_succeeded(invoice_id))
    assert hook.api.app.invoice(invoice_id).amount_refunded == 5_000
    assert hook.outcome(1) == "applied"
    assert hook.outcome(2) != "waiting"


# ------------------------------------------------------------------------------ concurrency


def _verified(event_id: str, event_type: str, resource: str, **obj: Any) -> VerifiedEvent:
    return verified_event(event_id, event_type, resource, created=1_772_442_000, **obj)


def test_a_refund_deferred_while_its_payment_is_being_applied_is_not_lost(make_app: AppFactory) -> None:
    """Two deliveries at once: a refund, and its payment's success. The refund reads "no payment
    yet" and defers itself; before it commits, the success commits, finding nothing deferred.
    Nothing they wrote collides (the refund writes the deferred movements and its own record, the
    success the payment, the invoice and its own record), so both commit: the refund waits for a
    payment that has already arrived, for ever. Seen: amount_refunded 0, the refund event `waiting`."""
    first, second = make_app(), make_app()
    invoice_id = _invoice(first)
    refund = _verified("evt_3QSkewRefund", "refund.updated", "refund", **_refund())
    success = _verified("evt_3QSkewSuccess", "payment_intent.succeeded", "payment_intent", **_succeeded(invoice_id))

    def refund_meanwhile_success(work: Work, at: datetime) -> tuple[str, str]:
        decided = stripe_events.handle(work, refund, at)
        stripe_events.ingest(second, success)  # commits while the refund's transaction is open
        return decided

    first.ingest_provider_event(refund, provider="stripe", handle=refund_meanwhile_success)
    assert first.invoice(invoice_id).amount_paid == TOTAL
    assert first.invoice(invoice_id).amount_refunded == 5_000
    kept = first.provider_event("stripe", "evt_3QSkewRefund")
    assert kept is not None
    assert kept.outcome == "applied"


def test_a_refund_is_not_refused_as_a_duplicate_on_a_stale_read_of_its_payment(make_app: AppFactory) -> None:
    """Two reports of one refund at once (`refund.updated`, `charge.refunded`). `charge.refunded`
    reads the payment before the other report commits and the invoice after: the payment says
    "not refunded yet", the invoice "already refunded", and the event is committed `refused`
    ("refund ... was already applied to ...") — a refusal decided on a read that was stale, never
    retried since a refusal writes only the event's own record. Money is right here; the record
    is not, and any rule checked on such a read can refuse what it should apply."""
    first, second = make_app(), make_app()
    invoice_id = _invoice(first)
    stripe_events.ingest(
        first, _verified("evt_3QStalePaid", "payment_intent.succeeded", "payment_intent", **_succeeded(invoice_id))
    )
    charge = {
        "id": CHARGE,
        "amount": TOTAL,
        "amount_captured": TOTAL,
        "amount_refunded": 5_000,
        "captured": True,
        "currency": "usd",
        "payment_intent": PI,
        "status": "succeeded",
        "metadata": {"invoice_id": str(invoice_id)},
        "refunds": {"object": "list", "data": [_refund()], "has_more": False},
    }
    refunded = _verified("evt_3QStaleCharge", "charge.refunded", "charge", **charge)
    updated = _verified("evt_3QStaleRefund", "refund.updated", "refund", **_refund())

    def read_payment_then_the_other_report_commits(work: Work, at: datetime) -> tuple[str, str]:
        work.get(payment_id_for("stripe", PI), Payment)  # the handler's first read, as it does it
        stripe_events.ingest(second, updated)
        return stripe_events.handle(work, refunded, at)

    first.ingest_provider_event(refunded, provider="stripe", handle=read_payment_then_the_other_report_commits)
    assert first.invoice(invoice_id).amount_refunded == 5_000
    kept = first.provider_event("stripe", "evt_3QStaleCharge")
    assert kept is not None
    assert kept.outcome == "duplicate", kept.detail  # the refund was applied once, by the other report


def test_a_refunded_charge_that_applies_its_payment_is_marked_applied(hook: Hook) -> None:
    """Seen: `ignored` ("refund ... already applied"): the capture it applied, and the waiting
    refund it released, are left out of its outcome, which sums up its refunds only."""
    invoice_id = _invoice(hook.api.app)
    assert hook.deliver("refund.created", "refund", **_refund()) == "waiting"
    refunded = {
        "id": CHARGE,
        "amount": TOTAL,
        "amount_captured": TOTAL,
        "amount_refunded": 5_000,
        "captured": True,
        "currency": "usd",
        "payment_intent": PI,
        "status": "succeeded",
        "metadata": {"invoice_id": str(invoice_id)},
        "refunds": {"object": "list", "data": [_refund()], "has_more": False},
    }
    outcome = hook.deliver("charge.refunded", "charge", **refunded)
    invoice = hook.api.app.invoice(invoice_id)
    assert (invoice.amount_paid, invoice.amount_refunded) == (TOTAL, 5_000)
    assert outcome == "applied"


def test_a_completed_checkout_that_closes_the_checkout_is_marked_applied(hook: Hook) -> None:
    """APPLIED is "it moved money or changed a payment, an invoice or a checkout". Seen: a
    `checkout.session.completed` after the payment closes the invoice's checkout and is marked
    `ignored` ("payment ... succeeded (already)")."""
    invoice_id = _invoice(hook.api.app)
    hook.api.app.start_checkout(
        invoice_id,
        provider="stripe",
        session_id="cs_test_3QFinding",
        amount=Money(TOTAL, "usd"),
        expires_at=datetime(2030, 1, 1, tzinfo=UTC),
    )
    hook.deliver("payment_intent.succeeded", "payment_intent", **_succeeded(invoice_id))
    session = {
        "id": "cs_test_3QFinding",
        "amount_total": TOTAL,
        "currency": "usd",
        "payment_intent": PI,
        "payment_status": "paid",
        "status": "complete",
        "metadata": {"invoice_id": str(invoice_id)},
    }
    outcome = hook.deliver("checkout.session.completed", "checkout.session", **session)
    assert hook.api.app.invoice(invoice_id).checkouts["cs_test_3QFinding"]["status"] == "completed"
    assert outcome == "applied"
