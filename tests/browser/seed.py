"""The data set the browser tests look at, laid down through the application's own commands with
a hand-moved clock, so every figure on the dashboard is known in advance.

Today is the `clock` fixture's moment, 2026-03-02 09:00 UTC. In USD and EUR: drafts, open
invoices (one overdue in each currency, one partly paid with a history to step back through), a
paid one in each, a card payment that failed, a Stripe webhook that came while its invoice was
still a draft (refused, so there is something to reprocess), and a payment Stripe collected
whose webhook never arrived (found by the reconciliation run seeded here: one open item).

What the overview must show for it is worked out by hand in tests/browser/test_admin_dashboard.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

from adapters.clock import ManualClock
from commands.application import BillingApplication
from commands.ingestion.stripe_events import ingest
from commands.messages import NewLine
from commands.reconciliation.facts import Period
from ledger.money import Money
from projections.reconciliation.engine import ReadModels, reconcile
from tests.stripe_payloads import verified_event
from tests.stripe_world import FakeRecords, StripeWorld

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # the `clock` fixture's moment (tests/conftest.py)

ADMIN_EMAIL = "finance@ledger.example"
AUDITOR_EMAIL = "auditor@ledger.example"
PASSWORD = "correct horse battery staple"  # a test account's, in a throwaway store

ACME = {"email": "billing@acme.example", "name": "Acme Corporation"}
GLOBEX = {"email": "ap@globex.example", "name": "Globex GmbH"}
INITECH = {"email": "keiri@initech.example", "name": "Initech KK"}
UMBRELLA = {"email": "accounts@umbrella.example", "name": "Umbrella Ltd"}
WAYNE = {"email": "payables@wayne.example", "name": "Wayne Enterprises"}
GULF = {"email": "finance@gulf-trading.example", "name": "Gulf Trading WLL"}
HOOLI = {"email": "ar@hooli.example", "name": "Hooli Inc"}

WEBHOOK_EVENT = "evt_1SeededOnDraft"  # refused: it paid an invoice that was still a draft
WEBHOOK_INTENT = "pi_1SeededOnDraft"
FAILED_INTENT = "pi_1SeededDeclined"
RECONCILED_FROM = datetime(2026, 2, 1, tzinfo=UTC)


@dataclass
class Seeded:
    """Invoice ids by their role in the story, and the rest a test needs to find things."""

    invoices: dict[str, UUID] = field(default_factory=dict)
    numbers: dict[str, str] = field(default_factory=dict)
    records: FakeRecords = field(default_factory=lambda: FakeRecords(StripeWorld()))
    reconciliation_item: UUID | None = None
    # the partly paid invoice: before and after its payment on account
    partial_paid_at: datetime = datetime(2026, 2, 24, 15, 0, tzinfo=UTC)


def _at(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


class _Story:
    def __init__(self, app: BillingApplication, clock: ManualClock) -> None:
        self.app = app
        self.set = clock.set
        self.seeded = Seeded()

    def draft(self, role: str, customer: dict[str, str], currency: str, amount: int, due: date | None = None) -> UUID:
        invoice_id = self.app.create_draft(
            customer=customer,
            currency=currency,
            lines=[NewLine(f"{customer['name']} services", 1, amount)],
            due_date=due.isoformat() if due else None,
            memo=f"browser test: {role}",
        ).result
        self.seeded.invoices[role] = invoice_id
        return invoice_id

    def issued(self, role: str, customer: dict[str, str], currency: str, amount: int, on: date) -> UUID:
        """Created and issued on `on`, due thirty days later."""
        self.set(_at(on))
        invoice_id = self.draft(role, customer, currency, amount, on + timedelta(days=30))
        self.seeded.numbers[role] = self.app.issue(invoice_id).result
        return invoice_id

    def paid_offline(self, role: str, amount: Money, on: datetime) -> None:
        self.set(on)
        self.app.record_offline_payment(self.seeded.invoices[role], amount, reference=f"bank transfer {role}")


def seed(app: BillingApplication, clock: ManualClock, read_models: ReadModels) -> Seeded:
    """Lay the story down, in the order it happened (`clock` is the app's), and leave the clock
    at NOW. `read_models` are caught up by the reconciliation run seeded at the end."""
    story = _Story(app, clock)
    set_clock = clock.set
    seeded = story.seeded
    world = StripeWorld(currency="usd", clock=int(datetime(2026, 2, 28, 12, tzinfo=UTC).timestamp()))
    seeded.records = FakeRecords(world)

    story.issued("eur-overdue", INITECH, "eur", 64_000, date(2025, 12, 20))  # due 2026-01-19: 42 days late
    story.issued("usd-overdue", INITECH, "usd", 120_000, date(2026, 1, 10))  # due 2026-02-09: 21 days late
    story.issued("usd-partial", ACME, "usd", 200_000, date(2026, 2, 1))
    story.issued("eur-paid", UMBRELLA, "eur", 9_900, date(2026, 2, 3))
    story.issued("usd-paid", UMBRELLA, "usd", 50_000, date(2026, 2, 10))
    failed = story.issued("usd-failed", WAYNE, "usd", 75_000, date(2026, 2, 15))
    story.issued("eur-open", GLOBEX, "eur", 150_000, date(2026, 2, 18))
    story.issued("usd-open", GLOBEX, "usd", 90_000, date(2026, 2, 20))
    recon = story.issued("usd-reconciled", HOOLI, "usd", 40_000, date(2026, 2, 22))
    story.paid_offline("usd-partial", Money(80_000, "usd"), seeded.partial_paid_at)

    set_clock(_at(date(2026, 2, 25)))
    story.draft("usd-draft", ACME, "usd", 10_000)
    story.draft("eur-draft", GLOBEX, "eur", 5_000)

    # Stripe's payment for a draft is refused; once the invoice is issued, reprocessing applies it.
    set_clock(_at(date(2026, 2, 26)))
    webhook = story.draft("usd-webhook", GULF, "usd", 30_000)
    refused = ingest(
        app,
        verified_event(
            WEBHOOK_EVENT,
            "payment_intent.succeeded",
            "payment_intent",
            created=int(_at(date(2026, 2, 26)).timestamp()),
            id=WEBHOOK_INTENT,
            amount=30_000,
            amount_received=30_000,
            currency="usd",
            status="succeeded",
            metadata={"invoice_id": str(webhook)},
        ),
    )
    assert refused.outcome == "refused", refused
    set_clock(_at(date(2026, 2, 27)))
    seeded.numbers["usd-webhook"] = app.issue(webhook, due_date="2026-03-29").result

    set_clock(_at(date(2026, 2, 28)))
    app.initiate_provider_payment(failed, provider="stripe", provider_payment_id=FAILED_INTENT)
    app.record_provider_payment_failed(
        provider="stripe",
        provider_payment_id=FAILED_INTENT,
        attempt_id="ch_1SeededDeclined",
        code="card_declined",
        message="Your card was declined.",
        invoice_id=failed,
    )
    world.pay(recon, 40_000, 1_190)  # collected by Stripe; its webhook never came

    story.paid_offline("usd-paid", Money(50_000, "usd"), _at(date(2026, 3, 1)))
    story.paid_offline("eur-paid", Money(9_900, "eur"), _at(date(2026, 3, 1), 11))

    set_clock(NOW - timedelta(hours=1))
    report = reconcile(
        app,
        read_models,
        period=Period(RECONCILED_FROM, NOW - timedelta(minutes=30)),
        records=seeded.records,
        requested_by="seed",
    )
    [item] = report.items
    assert item["class"] == "missing_in_ledger", report.items
    seeded.reconciliation_item = UUID(item["id"])
    set_clock(NOW)
    return seeded
