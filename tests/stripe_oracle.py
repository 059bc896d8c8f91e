"""Where each invoice of a Stripe story must end, whatever order its events were delivered in.

A small model, written from the contract (docs/stripe.md, commands/ingestion/stripe_events.py), not from the
ledger's code. Most of the end state does not depend on the order: every capture, refund and
dispute is applied once. What does is which declined attempts count: a decline counts when the
ledger took it before the payment's success, and is ignored after. Deliveries run concurrently,
so "before" is the order the ledger recorded the events in: the position of each event's record
in the log (`positions`), which is the order its transactions were serialised in, since every
report of a payment writes that payment.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from tests.stripe_stories import PROCESSING, SUCCESS, IntentStory, InvoiceStory, StripeEvent

Position = Callable[[StripeEvent], int]


@dataclass(frozen=True)
class ExpectedPayment:
    status: str | None  # None: no report ever created the payment
    amount: int
    amount_captured: int
    charge_id: str | None
    refunds: dict[str, int]
    disputes: dict[str, str]  # dispute id -> open | won | lost
    failed_attempts: list[tuple[str, str]]  # (attempt id, code), in the order recorded


@dataclass(frozen=True)
class ExpectedInvoice:
    status: str
    amount_paid: int
    amount_refunded: int
    amount_disputed: int
    amount_dispute_lost: int
    amount_due: int
    payments: dict[str, ExpectedPayment]  # by PaymentIntent id
    failure_codes: list[str]  # the invoice's failed attempts, in the order recorded
    checkouts: dict[str, str]


def expected_invoice(story: InvoiceStory, events: Iterable[StripeEvent], position: Position) -> ExpectedInvoice:
    ordered = sorted(events, key=position)
    payments = {i.intent: _payment(i, [e for e in ordered if e.intent == i.intent]) for i in story.intents}
    succeeded = [i for i in story.intents if i.succeeds]
    paid = sum(i.amount for i in succeeded)
    disputes = [(i.dispute.amount, i.dispute.outcome) for i in succeeded if i.dispute is not None]
    first_seen = {_attempt(e): position(e) for e in reversed(ordered) if _attempt(e) is not None}
    failures = sorted((first_seen[a], code) for p in payments.values() for a, code in p.failed_attempts)
    return ExpectedInvoice(
        status="paid" if paid >= story.total else "open",
        amount_paid=paid,
        amount_refunded=sum(r.amount for i in succeeded for r in i.refunds),
        amount_disputed=sum(amount for amount, outcome in disputes if outcome is None),
        amount_dispute_lost=sum(amount for amount, outcome in disputes if outcome == "lost"),
        amount_due=0 if paid >= story.total else story.total - paid,
        payments=payments,
        failure_codes=[code for _, code in failures],
        checkouts={i.session: "completed" for i in succeeded if i.session is not None},
    )


def _payment(intent: IntentStory, ordered: list[StripeEvent]) -> ExpectedPayment:
    status: str | None = None
    charge_id: str | None = None
    attempts: list[tuple[str, str]] = []
    for event in ordered:
        if status == "succeeded":
            break  # nothing reported after the success changes the payment's state or attempts
        if SUCCESS in event.reports:
            status = "succeeded"
            charge_id = None if event.event_type.startswith("checkout.") else intent.charge
        elif PROCESSING in event.reports:
            status = "processing" if status in (None, "pending", "failed") else status
        elif (attempt := _attempt(event)) is not None and attempt not in (a for a, _ in attempts):
            attempts.append((attempt, event.code or ""))
            status = "failed"
    succeeded = status == "succeeded"
    dispute = intent.dispute
    return ExpectedPayment(
        status=status,
        amount=intent.amount,
        amount_captured=intent.amount if succeeded else 0,
        charge_id=charge_id,
        refunds={r.refund_id: r.amount for r in intent.refunds} if succeeded else {},
        disputes={dispute.dispute_id: dispute.outcome or "open"} if succeeded and dispute else {},
        failed_attempts=attempts,
    )


def _attempt(event: StripeEvent) -> str | None:
    found = [k.removeprefix("attempt:") for k in event.reports if k.startswith("attempt:")]
    return found[0] if found else None


def first_reports(events: Iterable[StripeEvent], position: Position) -> dict[str, StripeEvent]:
    """For each movement (a PaymentIntent's success, a refund, a dispute's opening and closing,
    a declined attempt), the event the ledger took it from first."""
    first: dict[str, StripeEvent] = {}
    for event in sorted(events, key=position):
        for key in event.reports:
            if key == PROCESSING or key.startswith("checkout:"):
                continue
            first.setdefault(f"{event.intent}:{key}" if key == SUCCESS else key, event)
    return first


def success_position(events: Iterable[StripeEvent], position: Position) -> dict[str, int]:
    """Each PaymentIntent's first success report, by its position."""
    found: dict[str, int] = {}
    for event in events:
        if SUCCESS in event.reports and event.intent is not None:
            found[event.intent] = min(found.get(event.intent, position(event)), position(event))
    return found


def trial_balance(stories: Iterable[tuple[InvoiceStory, ExpectedInvoice, int, int]]) -> dict[str, dict[str, int]]:
    """Per currency, each account's balance (debit - credit) the journal must show, for
    (story, expected, subtotal, tax) of every invoice; accounts at zero left out."""
    balances: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for story, expected, subtotal, tax in stories:
        accounts = balances[story.currency]
        accounts["accounts_receivable"] += story.total - expected.amount_paid
        accounts["revenue"] -= subtotal
        accounts["tax_payable"] -= tax
        accounts["processor_balance"] += (
            expected.amount_paid - expected.amount_refunded - expected.amount_disputed - expected.amount_dispute_lost
        )
        accounts["refunds"] += expected.amount_refunded
        accounts["disputes"] += expected.amount_disputed + expected.amount_dispute_lost
    return {c: {a: v for a, v in accounts.items() if v} for c, accounts in balances.items()}
