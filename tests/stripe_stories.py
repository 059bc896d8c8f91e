"""What Stripe sends about an invoice: a seeded story of webhook events, from Stripe's example objects.

An invoice is paid by one PaymentIntent (a few by two partial ones), after 0-3 declined
attempts (`payment_intent.payment_failed` naming the failing charge, and `charge.failed` for
it); the success is reported by `payment_intent.succeeded`, `charge.succeeded` and sometimes
`checkout.session.completed`; then 0-3 partial refunds (`refund.created`, `refund.updated` and
`charge.refunded` listing the refunds so far), sometimes a dispute (`charge.dispute.created`,
then `charge.dispute.closed` won or lost, or still open), a stale `payment_failed` after the
success, `payment_intent.processing`, types the ledger does not act on, and events about
PaymentIntents that are none of ours. Refunds and the dispute never add up to more than was
captured, so every order of delivery is a valid one.

Each event says which money movements it reports (`reports`), keyed as the ledger keys them,
so the oracle (tests/stripe_oracle.py) can tell, from the order the ledger recorded the events
in, which report was the one that moved the money.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from tests.stripe_payloads import event_payload, stripe_object

SUCCESS = "success"
PROCESSING = "processing"

# (charge.failure_code, last_payment_error.decline_code), as Stripe reports card declines.
DECLINES = [
    ("card_declined", "insufficient_funds"),
    ("card_declined", "generic_decline"),
    ("card_declined", "do_not_honor"),
    ("expired_card", None),
    ("incorrect_cvc", None),
]


def attempt_key(charge: str) -> str:
    return f"attempt:{charge}"


def refund_key(refund_id: str) -> str:
    return f"refund:{refund_id}"


def opened_key(dispute_id: str) -> str:
    return f"dispute-opened:{dispute_id}"


def closed_key(dispute_id: str) -> str:
    return f"dispute-closed:{dispute_id}"


@dataclass(frozen=True)
class Failure:
    charge: str
    code: str  # the charge's failure_code
    decline_code: str | None

    @property
    def intent_code(self) -> str:
        """The code the PaymentIntent's last_payment_error gives: the decline code when there is one."""
        return self.decline_code or self.code


@dataclass(frozen=True)
class Refund:
    refund_id: str
    amount: int


@dataclass(frozen=True)
class Dispute:
    dispute_id: str
    amount: int
    outcome: str | None  # "won", "lost", or None while open


@dataclass
class IntentStory:
    intent: str
    charge: str  # the charge that succeeds
    amount: int
    succeeds: bool
    failures: list[Failure] = field(default_factory=list)
    stale_failure: Failure | None = None  # a decline reported after the success
    refunds: list[Refund] = field(default_factory=list)
    dispute: Dispute | None = None
    session: str | None = None  # a Checkout Session of ours that reports the success
    processing: bool = False

    @property
    def all_failures(self) -> list[Failure]:
        return self.failures + ([self.stale_failure] if self.stale_failure else [])


@dataclass
class InvoiceStory:
    invoice_id: UUID
    currency: str
    total: int
    intents: list[IntentStory]


@dataclass(frozen=True)
class StripeEvent:
    """One event as Stripe would send it, unsigned."""

    event_id: str
    event_type: str
    body: bytes
    intent: str | None  # the PaymentIntent of ours it is about; None for the others
    reports: frozenset[str]  # the movements it reports (SUCCESS, attempt:..., refund:..., ...)
    code: str | None = None  # for a failure: the code it would record
    expected: str | None = None  # for events not about our payments: the outcome they must get


class StoryTeller:
    """Writes the stories and the events Stripe would send for them; ids unique within a run."""

    def __init__(self, rng: random.Random, created: int) -> None:
        self.rng = rng
        self.created = created
        self.events: list[StripeEvent] = []
        self._serial = 0

    # ------------------------------------------------------------------------ stories

    def invoice(self, invoice_id: UUID, currency: str, total: int, *, with_checkout: bool) -> InvoiceStory:
        rng = self.rng
        roll = rng.random()
        if roll < 0.12 and total >= 2:  # paid in two parts; the second part sometimes never succeeds
            first = rng.randint(1, total - 1)
            intents = [self._intent(first, succeeds=True), self._intent(total - first, succeeds=rng.random() < 0.8)]
        else:
            intents = [self._intent(total, succeeds=roll >= 0.22)]
            if with_checkout and intents[0].succeeds:
                intents[0].session = self._id("cs_test_chaos")
        story = InvoiceStory(invoice_id, currency, total, intents)
        for intent in intents:
            self._tell(story, intent)
        return story

    def _intent(self, amount: int, *, succeeds: bool) -> IntentStory:
        rng = self.rng
        failures = [self._failure() for _ in range(rng.choice([0, 0, 1, 1, 2, 3]) if succeeds else rng.randint(1, 3))]
        intent = IntentStory(
            self._id("pi_3Chaos"), self._id("ch_3Chaos"), amount, succeeds, failures, processing=rng.random() < 0.2
        )
        if not succeeds:
            return intent
        if rng.random() < 0.25:
            intent.stale_failure = self._failure()
        held = 0
        if rng.random() < 0.3:
            held = rng.randint(1, amount if rng.random() < 0.3 else max(1, amount // 2))
            intent.dispute = Dispute(self._id("dp_3Chaos"), held, rng.choice(["won", "lost", None]))
        refundable = amount - held
        count = rng.choice([0, 0, 1, 1, 2, 3])
        if count and refundable >= count:
            parts = sorted(rng.sample(range(1, refundable + 1), count))  # the running totals
            if rng.random() < 0.2:  # now and then the last refund takes all that is left
                parts[-1] = refundable
            amounts = [b - a for a, b in zip([0, *parts], parts, strict=False)]
            intent.refunds = [Refund(self._id("re_3Chaos"), a) for a in amounts if a > 0]
        return intent

    def _failure(self) -> Failure:
        code, decline = self.rng.choice(DECLINES)
        return Failure(self._id("ch_3ChaosDeclined"), code, decline)

    # ------------------------------------------------------------------------ events

    def _tell(self, story: InvoiceStory, intent: IntentStory) -> None:
        pi = intent.intent
        meta = {"invoice_id": str(story.invoice_id)}
        if self.rng.random() < 0.3:
            self._send("payment_intent.created", "payment_intent", frozenset(), intent=pi, **self._pi(story, intent))
        for failure in intent.failures:
            self._failed(story, intent, failure)
        if intent.processing:
            pending = self._pi(story, intent, status="processing")
            self._send("payment_intent.processing", "payment_intent", frozenset({PROCESSING}), intent=pi, **pending)
        if not intent.succeeds:
            return
        paid = self._pi(story, intent, status="succeeded", amount_received=intent.amount, latest_charge=intent.charge)
        self._send("charge.succeeded", "charge", frozenset({SUCCESS}), intent=pi, **self._charge(story, intent))
        self._send("payment_intent.succeeded", "payment_intent", frozenset({SUCCESS}), intent=pi, **paid)
        if intent.session is not None:
            session = {
                "id": intent.session,
                "amount_total": intent.amount,
                "amount_subtotal": intent.amount,
                "currency": story.currency,
                "payment_intent": pi,
                "payment_status": "paid",
                "status": "complete",
                "client_reference_id": str(story.invoice_id),
                "metadata": meta,
            }
            reports = frozenset({SUCCESS, f"checkout:{intent.session}"})
            self._send("checkout.session.completed", "checkout.session", reports, intent=pi, **session)
        if intent.stale_failure is not None:
            self._failed(story, intent, intent.stale_failure, with_charge=False)
        self._refunds(story, intent)
        self._dispute(story, intent)

    def _failed(self, story: InvoiceStory, intent: IntentStory, failure: Failure, *, with_charge: bool = True) -> None:
        pi, key = intent.intent, frozenset({attempt_key(failure.charge)})
        message = "Your card was declined."
        error = {
            "type": "card_error",
            "charge": failure.charge,
            "code": failure.code,
            "decline_code": failure.decline_code,
            "message": message,
        }
        declined = self._pi(story, intent, latest_charge=failure.charge, last_payment_error=error)
        self._send(
            "payment_intent.payment_failed", "payment_intent", key, intent=pi, code=failure.intent_code, **declined
        )
        if not with_charge:
            return
        charge = self._charge(
            story,
            intent,
            id=failure.charge,
            status="failed",
            captured=False,
            paid=False,
            amount_captured=0,
            failure_code=failure.code,
            failure_message=message,
            outcome={
                "type": "issuer_declined",
                "reason": failure.decline_code,
                "network_status": "declined_by_network",
            },
        )
        self._send("charge.failed", "charge", key, intent=pi, code=failure.code, **charge)

    def _refunds(self, story: InvoiceStory, intent: IntentStory) -> None:
        pi = intent.intent
        so_far: list[dict[str, Any]] = []
        for refund in intent.refunds:
            obj = {
                "id": refund.refund_id,
                "amount": refund.amount,
                "currency": story.currency,
                "charge": intent.charge,
                "payment_intent": pi,
                "reason": "requested_by_customer",
            }
            key = frozenset({refund_key(refund.refund_id)})
            pending = self.rng.random() < 0.3  # card refunds are often succeeded at once
            created = {**obj, "status": "pending" if pending else "succeeded"}
            self._send("refund.created", "refund", frozenset() if pending else key, intent=pi, **created)
            self._send("refund.updated", "refund", key, intent=pi, **obj, status="succeeded")
            so_far.insert(0, stripe_object("refund", **obj, status="succeeded"))  # newest first, as Stripe lists
            refunded = sum(r["amount"] for r in so_far)
            charge = self._charge(
                story,
                intent,
                amount_refunded=refunded,
                refunded=refunded == intent.amount,
                refunds={"object": "list", "data": list(so_far), "has_more": False, "url": "/v1/refunds"},
            )
            reports = frozenset({SUCCESS, *(refund_key(r["id"]) for r in so_far)})
            self._send("charge.refunded", "charge", reports, intent=pi, **charge)

    def _dispute(self, story: InvoiceStory, intent: IntentStory) -> None:
        dispute = intent.dispute
        if dispute is None:
            return
        obj = {
            "id": dispute.dispute_id,
            "amount": dispute.amount,
            "currency": story.currency,
            "charge": intent.charge,
            "payment_intent": intent.intent,
            "reason": self.rng.choice(["fraudulent", "product_not_received", "duplicate"]),
        }
        opened = frozenset({opened_key(dispute.dispute_id)})
        self._send("charge.dispute.created", "dispute", opened, intent=intent.intent, **obj, status="needs_response")
        if dispute.outcome is not None:
            closed = opened | {closed_key(dispute.dispute_id)}
            self._send("charge.dispute.closed", "dispute", closed, intent=intent.intent, **obj, status=dispute.outcome)

    def unknown(self) -> None:
        """A type the ledger does not act on: acknowledged, kept, ignored."""
        customer = {"id": self._id("cus_Chaos"), "email": "ap@example.com"}
        self._send("customer.created", "customer", frozenset(), expected="ignored", **customer)

    def stranger(self) -> None:
        """A PaymentIntent of someone else's (no invoice_id): payments are unmatched; refunds and
        disputes wait for a payment that will never come."""
        pi, charge, amount = self._id("pi_3Stranger"), self._id("ch_3Stranger"), self.rng.randint(100, 9_999)
        common = {"amount": amount, "currency": "usd", "metadata": {}}
        kind = self.rng.randrange(4)
        if kind == 0:
            paid = {**common, "id": pi, "status": "succeeded", "amount_received": amount, "latest_charge": charge}
            self._send("payment_intent.succeeded", "payment_intent", frozenset(), expected="unmatched", **paid)
        elif kind == 1:
            captured = {**common, "id": charge, "payment_intent": pi, "captured": True, "amount_captured": amount}
            self._send("charge.succeeded", "charge", frozenset(), expected="unmatched", **captured)
        elif kind == 2:
            error = {"type": "card_error", "charge": charge, "code": "card_declined", "decline_code": "fraudulent"}
            declined = {**common, "id": pi, "status": "requires_payment_method", "last_payment_error": error}
            self._send("payment_intent.payment_failed", "payment_intent", frozenset(), expected="unmatched", **declined)
        else:
            refund = {**common, "id": self._id("re_3Stranger"), "payment_intent": pi, "charge": charge}
            self._send("refund.updated", "refund", frozenset(), expected="waiting", **refund, status="succeeded")

    def _pi(self, story: InvoiceStory, intent: IntentStory, **changes: Any) -> dict[str, Any]:
        base = {
            "id": intent.intent,
            "amount": intent.amount,
            "amount_received": 0,
            "currency": story.currency,
            "status": "requires_payment_method",
            "latest_charge": None,
            "last_payment_error": None,
            "metadata": {"invoice_id": str(story.invoice_id)},
        }
        return {**base, **changes}

    def _charge(self, story: InvoiceStory, intent: IntentStory, **changes: Any) -> dict[str, Any]:
        base = {
            "id": intent.charge,
            "amount": intent.amount,
            "amount_captured": intent.amount,
            "amount_refunded": 0,
            "captured": True,
            "paid": True,
            "refunded": False,
            "status": "succeeded",
            "currency": story.currency,
            "payment_intent": intent.intent,
            "metadata": {"invoice_id": str(story.invoice_id)},  # Stripe copies the PaymentIntent's
        }
        return {**base, **changes}

    def _send(
        self,
        event_type: str,
        resource: str,
        reports: frozenset[str],
        *,
        intent: str | None = None,
        code: str | None = None,
        expected: str | None = None,
        **obj: Any,
    ) -> None:
        event_id = self._id("evt_3Chaos")
        self.created += self.rng.randint(0, 90)
        body = event_payload(event_type, resource, event_id=event_id, created=self.created, **obj)
        self.events.append(StripeEvent(event_id, event_type, body, intent, reports, code, expected))

    def _id(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}{self._serial:07d}"
