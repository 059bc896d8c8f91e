"""The webhook inbox on each backend: every Stripe event received, once, with its status; the
stuck ones; and the reprocessing of an unmatched, rejected or never-handled event."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import Engine

from adapters.clock import ManualClock
from adapters.stripe.payloads import read_event
from commands.application import BillingApplication, Reprocessed
from commands.ingestion import stripe_events
from commands.ingestion.provider_events import (
    ProviderEvent,
    ProviderEventNotFoundError,
    ProviderEventNotReprocessableError,
    VerifiedEvent,
    WebhookRejectedError,
    provider_event_id,
)
from commands.messages import NewLine
from projections.runner import ProjectionRunner
from projections.webhook_inbox import list_webhook_events, stuck_events, webhook_event_row
from tests.stripe_payloads import payment_succeeded, verified_event


def _invoice(app: BillingApplication, *, issue: bool = True, amount: int = 10_000) -> UUID:
    invoice_id = app.create_draft(
        customer={"email": "ap@acme.example"}, currency="usd", lines=[NewLine("Fee", 1, amount)]
    ).result
    if issue:
        app.issue(invoice_id)
    return invoice_id


def _captured(event_id: str, intent: str, invoice_id: UUID, amount: int = 10_000) -> VerifiedEvent:
    return verified_event(
        event_id,
        "charge.succeeded",
        "charge",
        id=f"ch_{intent}",
        payment_intent=intent,
        amount=amount,
        amount_captured=amount,
        captured=True,
        currency="usd",
        metadata={"invoice_id": str(invoice_id)},
    )


def _refund(event_id: str, intent: str, refund_id: str, amount: int = 1_000) -> VerifiedEvent:
    return verified_event(
        event_id, "refund.created", "refund", id=refund_id, amount=amount, status="succeeded", payment_intent=intent
    )


def _ingest(app: BillingApplication, clock: ManualClock, event: VerifiedEvent) -> str:
    clock.advance(timedelta(minutes=1))  # one received_at each: the list's order is the arrival's
    return stripe_events.ingest(app, event).outcome


def _reprocess(app: BillingApplication, event_id: str, **options: Any) -> Reprocessed:
    return stripe_events.reprocess(app, event_id, decode=read_event, **options)


def _statuses(engine: Engine) -> dict[str, str]:
    return {row["id"]: row["status"] for row in list_webhook_events(engine, limit=200).rows}


def test_each_event_is_listed_once_with_what_was_done_with_it(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    invoice_id, draft_id = _invoice(app), _invoice(app, issue=False)
    customer = verified_event("evt_customer", "customer.created", "customer", id="cus_1")
    assert _ingest(app, clock, customer) == "ignored"
    assert _ingest(app, clock, payment_succeeded("evt_paid", "pi_a", invoice_id)) == "applied"
    assert (
        _ingest(app, clock, payment_succeeded("evt_paid", "pi_a", invoice_id)) == "applied"
    )  # a redelivery: its record
    assert _ingest(app, clock, _captured("evt_captured", "pi_a", invoice_id)) == "duplicate"
    assert _ingest(app, clock, _refund("evt_early_refund", "pi_later", "re_1")) == "waiting"
    assert _ingest(app, clock, _refund("evt_early_refund_again", "pi_later", "re_1")) == "duplicate"
    assert _ingest(app, clock, payment_succeeded("evt_stranger", "pi_stranger", None)) == "unmatched"
    assert _ingest(app, clock, payment_succeeded("evt_on_draft", "pi_draft", draft_id)) == "refused"
    clock.advance(timedelta(minutes=1))
    assert app.record_provider_event(payment_succeeded("evt_kept", "pi_kept", None), provider="stripe").result

    runner.catch_up()
    assert _statuses(engine) == {
        "evt_customer": "ignored",
        "evt_paid": "applied",
        "evt_captured": "duplicate",
        "evt_early_refund": "waiting",
        "evt_early_refund_again": "duplicate",
        "evt_stranger": "unmatched",
        "evt_on_draft": "rejected",
        "evt_kept": "received",
    }
    captured = webhook_event_row(engine, "evt_captured")
    assert captured is not None
    assert (captured["type"], captured["object_id"], captured["provider"]) == ("charge.succeeded", "ch_pi_a", "stripe")
    assert "(already)" in captured["detail"]
    assert captured["handled_at"] == captured["received_at"]  # recorded and handled in one transaction
    kept = webhook_event_row(engine, "evt_kept")
    assert kept is not None
    assert (kept["handled_at"], kept["object_id"]) == (None, "pi_kept")
    assert webhook_event_row(engine, "evt_never") is None


def test_the_list_pages_newest_first_and_filters_by_status(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    for n in range(5):
        _ingest(app, clock, payment_succeeded(f"evt_{n}", f"pi_{n}", None))
    _ingest(app, clock, verified_event("evt_other", "customer.created", "customer", id="cus_1"))
    runner.catch_up()

    seen: list[str] = []
    cursor = None
    while True:
        page = list_webhook_events(engine, status="unmatched", limit=2, cursor=cursor)
        seen += [row["id"] for row in page.rows]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == ["evt_4", "evt_3", "evt_2", "evt_1", "evt_0"]
    assert [row["id"] for row in list_webhook_events(engine, status="ignored").rows] == ["evt_other"]
    assert list_webhook_events(engine, limit=1).rows[0]["id"] == "evt_other"


def test_a_waiting_event_is_listed_applied_once_its_payment_arrives(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    invoice_id = _invoice(app)
    _ingest(app, clock, _refund("evt_refund", "pi_a", "re_1"))
    runner.catch_up()
    assert _statuses(engine) == {"evt_refund": "waiting"}

    _ingest(app, clock, payment_succeeded("evt_paid", "pi_a", invoice_id))
    runner.catch_up()  # the release comes in a later batch than the event's own record
    assert _statuses(engine) == {"evt_refund": "applied", "evt_paid": "applied"}
    assert app.invoice(invoice_id).amount_refunded == 1_000


def test_stuck_events_are_the_unmatched_and_waiting_ones_older_than_asked(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    invoice_id = _invoice(app)
    _ingest(app, clock, payment_succeeded("evt_stranger", "pi_stranger", None))
    _ingest(app, clock, _refund("evt_refund", "pi_later", "re_1"))
    _ingest(app, clock, payment_succeeded("evt_paid", "pi_paid", invoice_id))
    cutoff = clock.now() + timedelta(seconds=30)
    _ingest(app, clock, payment_succeeded("evt_recent", "pi_recent", None))
    runner.catch_up()

    stuck = stuck_events(engine, older_than=cutoff)
    assert [(row["id"], row["status"]) for row in stuck] == [("evt_stranger", "unmatched"), ("evt_refund", "waiting")]
    assert [row["id"] for row in stuck_events(engine, older_than=cutoff, limit=1)] == ["evt_stranger"]
    assert stuck_events(engine, older_than=clock.now() - timedelta(days=1)) == []


def test_an_unmatched_payment_is_applied_once_when_reprocessed_after_its_payment_is_known(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    assert _ingest(app, clock, payment_succeeded("evt_early", "pi_a", None)) == "unmatched"
    invoice_id = _invoice(app)
    app.initiate_provider_payment(invoice_id, provider="stripe", provider_payment_id="pi_a")

    done = _reprocess(app, "evt_early")
    assert (done.previous_outcome, done.outcome, done.reprocessing) == ("unmatched", "applied", 1)
    assert app.invoice(invoice_id).amount_paid == 10_000
    with pytest.raises(ProviderEventNotReprocessableError, match="applied already"):
        _reprocess(app, "evt_early")
    assert app.invoice(invoice_id).amount_paid == 10_000
    assert app.invoice(invoice_id).status == "paid"

    runner.catch_up()
    assert _statuses(engine) == {"evt_early": "applied"}
    history = [type(e).__name__ for e in app.repository.event_store.get(provider_event_id("stripe", "evt_early"))]
    assert history == ["Received", "Handled", "Reprocessed"]


def test_a_rejected_payment_is_applied_when_reprocessed_after_its_invoice_is_issued(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    draft_id = _invoice(app, issue=False)
    assert _ingest(app, clock, payment_succeeded("evt_on_draft", "pi_a", draft_id)) == "refused"
    first = _reprocess(app, "evt_on_draft")  # still a draft: refused again, and said so
    assert (first.previous_outcome, first.outcome, first.reprocessing) == ("refused", "refused", 1)
    app.issue(draft_id)

    second = _reprocess(app, "evt_on_draft")
    assert (second.previous_outcome, second.outcome, second.reprocessing) == ("refused", "applied", 2)
    assert app.invoice(draft_id).status == "paid"
    runner.catch_up()
    assert _statuses(engine) == {"evt_on_draft": "applied"}


def test_a_kept_event_never_handled_is_handled_by_reprocessing(app: BillingApplication) -> None:
    invoice_id = _invoice(app)
    app.record_provider_event(payment_succeeded("evt_kept", "pi_a", invoice_id), provider="stripe")
    done = _reprocess(app, "evt_kept")
    assert (done.previous_outcome, done.outcome) == (None, "applied")
    assert app.invoice(invoice_id).amount_paid == 10_000


def test_reprocessing_refuses_what_is_done_or_waiting_and_what_never_arrived(
    app: BillingApplication, clock: ManualClock
) -> None:
    invoice_id = _invoice(app)
    _ingest(app, clock, payment_succeeded("evt_paid", "pi_a", invoice_id))
    _ingest(app, clock, _captured("evt_captured", "pi_a", invoice_id))
    _ingest(app, clock, verified_event("evt_customer", "customer.created", "customer", id="cus_1"))
    _ingest(app, clock, _refund("evt_refund", "pi_later", "re_1"))
    for event_id, why in [
        ("evt_paid", "applied already"),
        ("evt_captured", "what it reports was applied already"),
        ("evt_customer", "does not act on"),
        ("evt_refund", "waits for its payment"),
    ]:
        with pytest.raises(ProviderEventNotReprocessableError, match=why):
            _reprocess(app, event_id)
    with pytest.raises(ProviderEventNotFoundError):
        _reprocess(app, "evt_never")
    assert app.invoice(invoice_id).amount_paid == 10_000


def test_a_payload_that_no_longer_decodes_is_refused_again(app: BillingApplication, clock: ManualClock) -> None:
    _ingest(app, clock, payment_succeeded("evt_stranger", "pi_stranger", None))

    def unreadable(_: str) -> VerifiedEvent:
        raise WebhookRejectedError("the body is not a Stripe event: $.data")

    done = stripe_events.reprocess(app, "evt_stranger", decode=unreadable)
    assert done.outcome == "refused"
    assert "no longer decodes" in done.detail
    kept = app.provider_event("stripe", "evt_stranger")
    assert isinstance(kept, ProviderEvent)
    assert (kept.outcome, kept.reprocessings) == ("refused", 1)


def test_a_repeated_reprocessing_with_the_same_key_is_answered_as_the_first(
    app: BillingApplication, clock: ManualClock
) -> None:
    _ingest(app, clock, payment_succeeded("evt_early", "pi_a", None))
    invoice_id = _invoice(app)
    app.initiate_provider_payment(invoice_id, provider="stripe", provider_payment_id="pi_a")
    first = _reprocess(app, "evt_early", idempotency_key="reprocess-1")
    again = _reprocess(app, "evt_early", idempotency_key="reprocess-1")
    assert again == first
    assert app.invoice(invoice_id).amount_paid == 10_000
