"""Webhook events ingested several to a transaction, on each backend: each is handled as it would
be alone, a redelivery within the batch is a duplicate, and one bad delivery spoils nothing else."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any
from uuid import UUID

from commands.application import BillingApplication, Delivery, Ingested
from commands.ingestion.provider_events import VerifiedEvent
from commands.ingestion.stripe_events import StripeIngestion, handle
from commands.messages import NewLine
from commands.work import Work
from ledger.payments import payment_id_for
from tests.conftest import AppFactory
from tests.stripe_payloads import verified_event


def _open_invoice(app: BillingApplication, amount: int = 10_000) -> UUID:
    invoice_id = app.create_draft(
        customer={"email": "ap@acme.example"}, currency="usd", lines=[NewLine("Fee", 1, amount)]
    ).result
    app.issue(invoice_id)
    return invoice_id


def _event(event_id: str, event_type: str, resource: str, **changes: Any) -> VerifiedEvent:
    return verified_event(event_id, event_type, resource, **changes)


def _story(invoice_id: UUID, n: int) -> list[VerifiedEvent]:
    intent, charge = f"pi_batch{n}", f"ch_batch{n}"
    metadata = {"invoice_id": str(invoice_id)}
    return [
        _event(
            f"evt_r{n}",
            "refund.created",
            "refund",
            id=f"re_b{n}",
            amount=1_000,
            status="succeeded",
            payment_intent=intent,
        ),
        _event(
            f"evt_p{n}",
            "payment_intent.succeeded",
            "payment_intent",
            id=intent,
            amount=10_000,
            amount_received=10_000,
            currency="usd",
            latest_charge=charge,
            metadata=metadata,
        ),
        _event(
            f"evt_c{n}",
            "charge.succeeded",
            "charge",
            id=charge,
            payment_intent=intent,
            amount=10_000,
            amount_captured=10_000,
            captured=True,
            currency="usd",
            metadata=metadata,
        ),
    ]


def _deliveries(events: list[VerifiedEvent]) -> list[Delivery]:
    return [Delivery(e, "stripe", lambda work, at, e=e: handle(work, e, at)) for e in events]  # type: ignore[misc]


def test_one_batch_applies_each_story_once_and_sees_its_own_redeliveries(app: BillingApplication) -> None:
    invoices = [_open_invoice(app) for _ in range(3)]
    events = [e for n, invoice_id in enumerate(invoices) for e in _story(invoice_id, n)]
    outcomes = app.ingest_provider_events(_deliveries(events + events[:2]))
    assert [o.outcome for o in outcomes if isinstance(o, Ingested)] == [
        *["waiting", "applied", "duplicate"] * 3,
        "applied",  # the redelivered refund: a duplicate, answered as its record now stands (released)
        "applied",
    ]
    assert [o.duplicate for o in outcomes if isinstance(o, Ingested)][-2:] == [True, True]
    for invoice_id in invoices:
        invoice = app.invoice(invoice_id)
        assert (invoice.status, invoice.amount_paid, invoice.amount_refunded) == ("paid", 10_000, 1_000)
    refund_record = app.provider_event("stripe", "evt_r0")
    assert refund_record is not None
    assert refund_record.outcome == "applied"  # released by its payment, in the same transaction


def test_a_delivery_that_fails_unexpectedly_leaves_nothing_and_spoils_nothing_else(app: BillingApplication) -> None:
    good, other = _open_invoice(app), _open_invoice(app)
    [_, paid, _] = _story(good, 1)
    [_, also_paid, _] = _story(other, 2)

    def broken(work: Work, at: datetime) -> tuple[str, str]:
        work.add(work.invoice(good))
        raise RuntimeError("a bug in a handler")

    deliveries = [
        Delivery(paid, "stripe", lambda work, at: handle(work, paid, at)),
        Delivery(_event("evt_bug", "payment_intent.succeeded", "payment_intent"), "stripe", broken),
        Delivery(also_paid, "stripe", lambda work, at: handle(work, also_paid, at)),
    ]
    first, failed, third = app.ingest_provider_events(deliveries)
    assert isinstance(failed, RuntimeError)
    assert (first.outcome, third.outcome) == ("applied", "applied")  # type: ignore[union-attr]
    assert app.provider_event("stripe", "evt_bug") is None  # Stripe will deliver it again
    assert app.invoice(good).amount_paid == app.invoice(other).amount_paid == 10_000


def test_concurrent_deliveries_through_the_group_commit_apply_each_payment_once(make_app: AppFactory) -> None:
    """Two processes' worth of ingestion (two applications), each grouping its own threads' events."""
    apps = [make_app(), make_app()]
    invoices = [_open_invoice(apps[0]) for _ in range(12)]
    events = [e for n, invoice_id in enumerate(invoices) for e in _story(invoice_id, n)]
    ingestions = [StripeIngestion(app) for app in apps]
    start = threading.Barrier(8)

    def deliver(k: int) -> list[Ingested]:
        start.wait()
        ingestion = ingestions[k % 2]
        return [ingestion.ingest(e) for e in (events if k % 2 else list(reversed(events)))]

    with ThreadPoolExecutor(8) as pool:
        answers = [a for batch in pool.map(deliver, range(8)) for a in batch]
    assert len(answers) == 8 * len(events)
    for n, invoice_id in enumerate(invoices):
        invoice = apps[0].invoice(invoice_id)
        assert (invoice.amount_paid, invoice.amount_refunded, invoice.payment_ids) == (
            10_000,
            1_000,
            [str(payment_id_for("stripe", f"pi_batch{n}"))],
        )
    for event in events:
        kept = apps[1].provider_event("stripe", event.event_id)
        assert kept is not None
        assert kept.outcome in ("applied", "duplicate")


def test_awaited_deliveries_share_batches_and_apply_each_payment_once(app: BillingApplication) -> None:
    """The webhook route's way in (`ingest_async`): the deliveries await their batches, run on
    the group commit's writer thread; redeliveries are duplicates, each payment applied once."""
    invoices = [_open_invoice(app) for _ in range(6)]
    events = [e for n, invoice_id in enumerate(invoices) for e in _story(invoice_id, n)]
    ingestion = StripeIngestion(app)

    async def deliver() -> list[Ingested]:
        return list(await asyncio.gather(*(ingestion.ingest_async(e) for e in events + events)))

    answers = asyncio.run(deliver())
    assert [a.outcome for a in answers[: len(events)]] == ["waiting", "applied", "duplicate"] * len(invoices)
    assert all(a.duplicate for a in answers[len(events) :])
    for invoice_id in invoices:
        invoice = app.invoice(invoice_id)
        assert (invoice.status, invoice.amount_paid, invoice.amount_refunded) == ("paid", 10_000, 1_000)
    group = ingestion._group
    assert group.items == 2 * len(events)
    assert group.batches < group.items  # they shared transactions
