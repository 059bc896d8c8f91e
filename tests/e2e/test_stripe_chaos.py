"""Chaos: a realistic Stripe stream for many invoices, delivered as badly as Stripe may deliver it.

Every valid event is delivered one to three times, all deliveries shuffled and sent by eight
threads at once to the served endpoint, among forged ones (tampered body, wrong secret, stale
timestamp, no signature, malformed JSON, JSON that is no event). Then every invoice and payment
must be where the oracle (tests/stripe_oracle.py) says, nothing applied twice, every rejected
delivery without a trace, every accepted event recorded once and handled, and the read models
built from the whole log must balance to zero and agree with the aggregates.

A red run names its seed and the invoice's events in the order the ledger took them:
`CHAOS_SEEDS=7 pytest tests/e2e/test_stripe_chaos.py` runs that seed; `CHAOS_THREADS=1` delivers
one at a time (the order is still shuffled), which takes the races out.

When it was written this test was red on every seed: test_stripe_chaos_findings.py shows each
cause in the shortest stream that shows it.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import httpx
import pytest
import stripe

from adapters.read_models import projection_runner
from commands.application import BillingApplication
from commands.ingestion.provider_events import ProviderEvent
from commands.messages import NewLine
from ledger.errors import PaymentNotFoundError
from ledger.invoices import Invoice
from ledger.money import Money
from ledger.payments import Payment, payment_id_for
from projections.payments import payment_row
from projections.queries import invoice_row, trial_balance
from tests.e2e.conftest import WEBHOOK_SECRET, Api
from tests.stripe_oracle import (
    ExpectedInvoice,
    expected_invoice,
    first_reports,
    success_position,
)
from tests.stripe_oracle import (
    trial_balance as expected_balance,
)
from tests.stripe_stories import SUCCESS, InvoiceStory, StoryTeller, StripeEvent

SEEDS = [int(s) for s in os.environ.get("CHAOS_SEEDS", "20260302,4242,7,1999").split(",")]
INVOICES = 40
THREADS = int(os.environ.get("CHAOS_THREADS", "8"))
CURRENCIES = ["usd", "eur", "jpy"]
CREATED = 1_772_442_000  # 2026-03-02 09:00 UTC, the test clock's moment
_SOON = datetime(2030, 1, 1, tzinfo=UTC)

REJECTIONS = ["tampered body", "wrong secret", "stale timestamp", "no header", "not JSON", "not an event"]


@dataclass(frozen=True)
class Delivery:
    event_id: str
    content: bytes  # what is sent
    signed: bytes | None  # what the signature is over; None: no Stripe-Signature header
    secret: str = WEBHOOK_SECRET
    age: int = 0  # seconds the signature's timestamp is back-dated by
    rejection: str | None = None  # why the ledger must refuse it; None for a genuine delivery

    def headers(self) -> dict[str, str]:
        if self.signed is None:
            return {}
        moment = int(time.time()) - self.age
        return {
            "Stripe-Signature": stripe.WebhookSignature.generate_signature_header(
                self.signed.decode(), self.secret, moment
            )
        }


@dataclass(frozen=True)
class Sent:
    delivery: Delivery
    started: float  # time.monotonic() just before the request
    ended: float  # and just after the answer
    response: httpx.Response


@dataclass
class Run:
    seed: int
    stories: list[InvoiceStory]
    events: list[StripeEvent]
    sent: list[Sent]
    positions: dict[str, int]  # event id -> position of its record in the log
    log: list[tuple[int, Any]]

    def position(self, event: StripeEvent) -> int:
        return self.positions[event.event_id]


# ------------------------------------------------------------------------------ the stream


def _open_invoices(app: BillingApplication, rng: random.Random, teller: StoryTeller) -> list[InvoiceStory]:
    stories = []
    for n in range(INVOICES):
        currency = rng.choice(CURRENCIES)
        lines = [NewLine("Platform fee", 1, rng.randint(500, 90_000))]
        if rng.random() < 0.5:
            lines.append(NewLine("Seats", str(rng.randint(1, 12)), rng.randint(100, 5_000), "20"))
        invoice_id = app.create_draft(
            customer={"email": f"ap{n}@example.com", "name": f"Customer {n}"}, currency=currency, lines=lines
        ).result
        app.issue(invoice_id)
        total = app.invoice(invoice_id).total
        story = teller.invoice(invoice_id, currency, total, with_checkout=rng.random() < 0.35)
        for intent in story.intents:
            if intent.session is not None:
                app.start_checkout(
                    invoice_id,
                    provider="stripe",
                    session_id=intent.session,
                    amount=Money(total, currency),
                    expires_at=_SOON,
                )
        if n % 4 == 0:
            teller.unknown()
        if n % 3 == 0:
            teller.stranger()
        stories.append(story)
    return stories


def _forged(rng: random.Random, event: StripeEvent, event_id: str, rejection: str) -> Delivery:
    """A delivery that must be refused, of a copy of `event` under its own id."""
    body: dict[str, Any] = json.loads(event.body)
    body["id"] = event_id
    content = json.dumps(body, separators=(",", ":")).encode()
    if rejection == "tampered body":
        body["data"]["object"]["amount"] = int(body["data"]["object"].get("amount") or 0) + 1
        return Delivery(event_id, json.dumps(body, separators=(",", ":")).encode(), content, rejection=rejection)
    if rejection == "wrong secret":
        return Delivery(event_id, content, content, secret="whsec_not_ours_0123456789", rejection=rejection)
    if rejection == "stale timestamp":
        return Delivery(event_id, content, content, age=rng.randint(301, 3 * 86_400), rejection=rejection)
    if rejection == "no header":
        return Delivery(event_id, content, None, rejection=rejection)
    if rejection == "not JSON":
        cut = content[: rng.randint(1, len(content) - 1)]
        return Delivery(event_id, cut, cut, rejection=rejection)
    not_event = {**body, "object": "charge"} if rng.random() < 0.5 else {**body["data"]["object"], "id": event_id}
    text = json.dumps(not_event).encode()
    return Delivery(event_id, text, text, rejection=rejection)


def _deliveries(rng: random.Random, events: list[StripeEvent]) -> list[Delivery]:
    genuine = [
        Delivery(e.event_id, e.body, e.body) for e in events for _ in range(rng.choices([1, 2, 3], [5, 3, 2])[0])
    ]
    forged = [
        _forged(rng, rng.choice(events), f"evt_3ChaosForged{n:05d}", REJECTIONS[n % len(REJECTIONS)])
        for n in range(len(events) // 10 + len(REJECTIONS))
    ]
    deliveries = genuine + forged
    rng.shuffle(deliveries)
    return deliveries


def _deliver(base_url: str, deliveries: list[Delivery]) -> list[Sent]:
    with httpx.Client(base_url=base_url, timeout=60) as client:

        def send(delivery: Delivery) -> Sent:
            headers = delivery.headers()
            started = time.monotonic()
            response = client.post("/webhooks/stripe", content=delivery.content, headers=headers)
            return Sent(delivery, started, time.monotonic(), response)

        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            return list(pool.map(send, deliveries))


def _whole_log(app: BillingApplication) -> list[tuple[int, Any]]:
    log: list[tuple[int, Any]] = []
    while page := app.events_after(log[-1][0] if log else 0, 1_000):
        log.extend(page)
    return log


def _stream(api: Api, seed: int) -> Run:
    rng = random.Random(seed)
    teller = StoryTeller(rng, CREATED)
    stories = _open_invoices(api.app, rng, teller)
    sent = _deliver(api.base_url, _deliveries(rng, teller.events))
    log = _whole_log(api.app)
    positions: dict[str, int] = {}
    for position, event in log:
        if isinstance(event, ProviderEvent.Received):
            assert event.event_id not in positions, f"seed {seed}: {event.event_id} recorded twice"
            positions[event.event_id] = position
    return Run(seed, stories, teller.events, sent, positions, log)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_chaotic_stream_leaves_every_invoice_where_the_oracle_says(api: Api, seed: int) -> None:
    run = _stream(api, seed)
    # Money first: a red run shows the worst it found.
    _every_delivery_is_answered_as_the_contract_says(run)
    _nothing_is_applied_twice(run)
    _every_decline_answered_before_any_report_of_the_success_was_sent_is_recorded(run, api)
    _every_invoice_and_payment_ends_where_the_oracle_says(run, api)
    _strangers_payments_are_never_created(run, api)
    _the_read_models_over_the_whole_log_balance_and_agree_with_the_aggregates(run, api)
    _rejected_deliveries_leave_nothing_and_accepted_events_are_recorded_once_and_handled(run, api)
    _the_event_that_moved_the_money_says_so_and_a_decline_after_the_success_changes_nothing(run, api)


# ------------------------------------------------------------------------------ the checks


def _every_delivery_is_answered_as_the_contract_says(run: Run) -> None:
    first: Counter[str] = Counter()
    for sent in run.sent:
        response, delivery = sent.response, sent.delivery
        if delivery.rejection is not None:
            assert response.status_code == 400, f"seed {run.seed}: {delivery.rejection} -> {response.text}"
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["type"] == "urn:ledger:problem:webhook-rejected"
            continue
        assert response.status_code == 200, f"seed {run.seed}: {delivery.event_id} -> {response.text}"
        answer = response.json()
        assert (answer["received"], answer["id"]) == (True, delivery.event_id)
        first[delivery.event_id] += not answer["duplicate"]
    # Each event was taken once: one delivery recorded it, every other one was a duplicate.
    assert first == Counter({e.event_id: 1 for e in run.events}), f"seed {run.seed}"


def _rejected_deliveries_leave_nothing_and_accepted_events_are_recorded_once_and_handled(run: Run, api: Api) -> None:
    rejected = {s.delivery.event_id for s in run.sent if s.delivery.rejection is not None}
    assert rejected
    for event_id in rejected:
        assert api.app.provider_event("stripe", event_id) is None, f"seed {run.seed}: {event_id}"
    assert set(run.positions) == {e.event_id for e in run.events}, f"seed {run.seed}"
    handled: Counter[UUID] = Counter(e.originator_id for _, e in run.log if isinstance(e, ProviderEvent.Handled))
    for event in run.events:
        kept = api.app.provider_event("stripe", event.event_id)
        assert kept is not None
        assert kept.payload == event.body.decode()  # the evidence, byte for byte
        where = f"seed {run.seed}: {event.event_type} {event.event_id} -> {kept.outcome} ({kept.detail})"
        if event.expected is not None:
            assert kept.outcome == event.expected, where
        else:
            assert kept.outcome in ("applied", "duplicate", "ignored"), where
        # Handled once; or twice when it first waited for its payment.
        assert handled[kept.id] == (2 if kept.outcome != "waiting" and _waited(run, kept.id) else 1), where


def _waited(run: Run, record_id: UUID) -> bool:
    outcomes = [e.outcome for _, e in run.log if isinstance(e, ProviderEvent.Handled) and e.originator_id == record_id]
    return outcomes[0] == "waiting"


def _every_invoice_and_payment_ends_where_the_oracle_says(run: Run, api: Api) -> None:
    for story in run.stories:
        expected = _expected(run, story)
        invoice = api.app.invoice(story.invoice_id)
        where = f"seed {run.seed}, invoice {story.invoice_id}, events {_trace(run, story)}"
        assert (
            invoice.status,
            invoice.amount_paid,
            invoice.amount_refunded,
            invoice.amount_disputed,
            invoice.amount_dispute_lost,
            invoice.amount_due,
        ) == (
            expected.status,
            expected.amount_paid,
            expected.amount_refunded,
            expected.amount_disputed,
            expected.amount_dispute_lost,
            expected.amount_due,
        ), where
        succeeded = [p for p, e in expected.payments.items() if e.status == "succeeded"]
        assert sorted(invoice.payment_ids) == sorted(str(payment_id_for("stripe", p)) for p in succeeded), where
        assert sorted(invoice.refund_ids) == sorted(r for e in expected.payments.values() for r in e.refunds), where
        assert {k: d["status"] for k, d in invoice.disputes.items()} == {
            k: s for e in expected.payments.values() for k, s in e.disputes.items()
        }, where
        assert [a["code"] for a in invoice.failed_attempts] == expected.failure_codes, where
        assert {k: c["status"] for k, c in invoice.checkouts.items()} == expected.checkouts, where
        for intent, want in expected.payments.items():
            if want.status is None:
                with pytest.raises(PaymentNotFoundError):
                    api.app.provider_payment("stripe", intent)
                continue
            payment = api.app.provider_payment("stripe", intent)
            assert (
                payment.status,
                payment.amount,
                payment.amount_captured,
                payment.charge_id,
                payment.refunds,
                {k: d["status"] for k, d in payment.disputes.items()},
                payment.failed_attempt_ids,
                payment.failure["code"] if payment.failure else None,
            ) == (
                want.status,
                want.amount,
                want.amount_captured,
                want.charge_id,
                want.refunds,
                want.disputes,
                [a for a, _ in want.failed_attempts],
                want.failed_attempts[-1][1] if want.failed_attempts else None,
            ), f"{where}, payment {intent}"


def _strangers_payments_are_never_created(run: Run, api: Api) -> None:
    for event in run.events:
        if event.expected in ("unmatched", "waiting"):
            obj = json.loads(event.body)["data"]["object"]
            intent = obj["id"] if obj["object"] == "payment_intent" else obj["payment_intent"]
            with pytest.raises(PaymentNotFoundError):
                api.app.provider_payment("stripe", intent)


def _nothing_is_applied_twice(run: Run) -> None:
    applied: Counter[tuple[str, str]] = Counter()
    for _, event in run.log:
        if isinstance(event, Invoice.PaymentApplied):
            applied["payment", event.payment_id] += 1
        elif isinstance(event, Invoice.RefundApplied):
            applied["refund", event.refund_id] += 1
        elif isinstance(event, Invoice.DisputeOpened):
            applied["dispute opened", event.dispute_id] += 1
        elif isinstance(event, Invoice.DisputeClosed):
            applied["dispute closed", event.dispute_id] += 1
        elif isinstance(event, Payment.Succeeded):
            applied["capture", str(event.originator_id)] += 1
        elif isinstance(event, Payment.Failed):
            applied["attempt", event.attempt_id] += 1
    twice = {key: n for key, n in applied.items() if n > 1}
    assert not twice, f"seed {run.seed}: {twice}"
    captures = sum(1 for story in run.stories for i in story.intents if i.succeeds)
    assert sum(1 for kind, _ in applied if kind == "payment") == captures


def _the_event_that_moved_the_money_says_so_and_a_decline_after_the_success_changes_nothing(run: Run, api: Api) -> None:
    ours = [e for e in run.events if e.intent is not None]
    outcome = {e.event_id: _outcome(api.app, e.event_id) for e in ours}
    for key, event in first_reports(ours, run.position).items():
        if key.startswith("attempt:"):
            continue
        assert outcome[event.event_id] == "applied", (
            f"seed {run.seed}: {key} first reported by {event.event_type} {event.event_id}"
        )
    success = success_position(ours, run.position)
    for event in ours:
        if any(k.startswith("attempt:") for k in event.reports) and event.intent in success:
            late = run.position(event) > success[event.intent]
            if late:  # a duplicate when another report of the same attempt was recorded first
                assert outcome[event.event_id] in ("ignored", "duplicate"), f"seed {run.seed}: {event.event_id}"


def _every_decline_answered_before_any_report_of_the_success_was_sent_is_recorded(run: Run, api: Api) -> None:
    """The bound that needs no knowledge of the order the ledger took concurrent deliveries in."""
    answered: dict[str, float] = {}
    started: dict[str, float] = {}
    for sent in run.sent:
        event_id = sent.delivery.event_id
        if sent.delivery.rejection is None:
            answered[event_id] = min(answered.get(event_id, sent.ended), sent.ended)
            started[event_id] = min(started.get(event_id, sent.started), sent.started)
    for story in run.stories:
        for intent in story.intents:
            events = [e for e in run.events if e.intent == intent.intent]
            first_success = min((started[e.event_id] for e in events if SUCCESS in e.reports), default=float("inf"))
            generated = {f.charge for f in intent.all_failures}
            try:
                recorded = set(api.app.provider_payment("stripe", intent.intent).failed_attempt_ids)
            except PaymentNotFoundError:
                recorded = set()
            assert recorded <= generated
            for failure in intent.all_failures:
                reports = [e for e in events if f"attempt:{failure.charge}" in e.reports]
                if min(answered[e.event_id] for e in reports) < first_success:
                    assert failure.charge in recorded, f"seed {run.seed}: {failure.charge} of {intent.intent}"


def _the_read_models_over_the_whole_log_balance_and_agree_with_the_aggregates(run: Run, api: Api) -> None:
    projection_runner(api.app, api.engine).catch_up()
    rows = trial_balance(api.engine)
    books: dict[str, dict[str, int]] = defaultdict(dict)
    for row in rows:
        if row.balance:
            books[row.currency][row.account] = row.balance
    for currency in {r.currency for r in rows}:
        assert sum(r.balance for r in rows if r.currency == currency) == 0, f"seed {run.seed}: {currency}"
    invoices = [(s, _expected(run, s), api.app.invoice(s.invoice_id)) for s in run.stories]
    assert dict(books) == expected_balance((s, e, i.subtotal, i.tax) for s, e, i in invoices), f"seed {run.seed}"
    for story, _, invoice in invoices:
        row = invoice_row(api.engine, str(story.invoice_id))
        assert row is not None
        assert (
            row["status"],
            row["amount_paid"],
            row["amount_refunded"],
            row["amount_due"],
            row["amount_disputed"],
            row["amount_dispute_lost"],
            row["failed_attempts"],
            row["version"],
        ) == (
            invoice.status,
            invoice.amount_paid,
            invoice.amount_refunded,
            invoice.amount_due,
            invoice.amount_disputed,
            invoice.amount_dispute_lost,
            len(invoice.failed_attempts),
            invoice.version,
        ), f"seed {run.seed}: invoice {story.invoice_id}"
        for intent in story.intents:
            try:
                payment = api.app.provider_payment("stripe", intent.intent)
            except PaymentNotFoundError:
                continue
            kept = payment_row(api.engine, str(payment.id))
            assert kept is not None
            assert (kept["status"], kept["amount_captured"], kept["amount_refunded"], kept["version"]) == (
                payment.status,
                payment.amount_captured,
                payment.amount_refunded,
                payment.version,
            ), f"seed {run.seed}: payment {intent.intent}"


# ------------------------------------------------------------------------------ helpers


def _expected(run: Run, story: InvoiceStory) -> ExpectedInvoice:
    intents = {i.intent for i in story.intents}
    return expected_invoice(story, [e for e in run.events if e.intent in intents], run.position)


def _outcome(app: BillingApplication, event_id: str) -> str | None:
    kept = app.provider_event("stripe", event_id)
    return None if kept is None else kept.outcome


def _trace(run: Run, story: InvoiceStory) -> list[str]:
    """The invoice's events in the order the ledger took them: what a red run is read from."""
    intents = {i.intent for i in story.intents}
    ours = sorted((e for e in run.events if e.intent in intents), key=run.position)
    return [f"{e.event_type}[{e.event_id}]" for e in ours]
