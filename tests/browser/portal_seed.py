"""The data set the portal's browser tests look at, laid down through the application's own
commands with a hand-moved clock, so every figure a customer sees is known in advance.

Today is the `clock` fixture's moment, 2026-03-02 09:00 UTC. Two customers, each with invoices in
more than one currency:

Acme Corporation (billing@acme.example)
- INV-000001, 1,250.00 USD, issued 2026-01-15: paid by card through Stripe on 2026-01-20,
  250.00 USD of it refunded on 2026-02-05 (paid, a payment and a refund to show);
- INV-000002, 128,000 JPY, issued 2026-02-10, due 2026-03-12: open, nothing paid;
- INV-000003, 480.00 EUR, issued 2026-02-20, due 2026-03-22: open, 80.00 EUR paid by bank
  transfer, 400.00 EUR due (the invoice the Pay tests pay);
- a USD draft, which is not the customer's to see yet.

Globex GmbH (ap@globex.example)
- INV-000004, 900.00 USD, issued 2026-02-22: open;
- INV-000005, 5,000 JPY, issued 2026-02-24: paid by bank transfer on 2026-02-26.

Portal links (tokens signed with SECRET_KEY): one for each customer, valid thirty days; Acme's
link issued for INV-000003 (as an email's would be); one of Acme's that expired on 2026-02-15;
one of Acme's revoked this morning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

from adapters.clock import ManualClock
from commands.application import BillingApplication
from commands.ingestion.stripe_events import ingest
from commands.messages import NewLine
from ledger.money import Money
from ledger.payments import payment_id_for
from tests.stripe_payloads import verified_event

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # the `clock` fixture's moment (tests/conftest.py)
# A test's secret, at least 32 characters as LEDGER_SECRET_KEY must be.
SECRET_KEY = "browser-tests-portal-secret-0123456789abcdef"

ACME = {"email": "billing@acme.example", "name": "Acme Corporation"}
GLOBEX = {"email": "ap@globex.example", "name": "Globex GmbH"}

MEMO = "Thank you for your business.\nPlease quote the invoice number with any payment."  # shown to the customer
CARD_INTENT = "pi_1PortalAcmeCard"
CARD_CHARGE = "ch_1PortalAcmeCard"
REFUND = "re_1PortalAcmePartial"


@dataclass
class PortalSeeded:
    """Invoice ids and numbers by their role in the story, and the links' tokens."""

    invoices: dict[str, UUID] = field(default_factory=dict)
    numbers: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # acme, globex, expired, revoked
    links: dict[str, UUID] = field(default_factory=dict)


def _at(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


class _Story:
    def __init__(self, app: BillingApplication, clock: ManualClock) -> None:
        self.app = app
        self.clock = clock
        self.seeded = PortalSeeded()

    def issued(
        self, role: str, customer: dict[str, str], currency: str, lines: list[NewLine], on: date, due_in: int = 30
    ) -> UUID:
        """Created and issued on `on`, due `due_in` days later."""
        self.clock.set(_at(on))
        invoice_id = self.app.create_draft(
            customer=customer,
            currency=currency,
            lines=lines,
            due_date=(on + timedelta(days=due_in)).isoformat(),
            memo=MEMO,
        ).result
        self.seeded.invoices[role] = invoice_id
        self.seeded.numbers[role] = self.app.issue(invoice_id).result
        return invoice_id

    def paid_offline(self, role: str, amount: Money, on: datetime, reference: str) -> None:
        self.clock.set(on)
        self.app.record_offline_payment(self.seeded.invoices[role], amount, reference=reference)

    def link(self, name: str, customer: dict[str, str], *, on: datetime, expires_at: datetime, **more: object) -> None:
        self.clock.set(on)
        link_id = self.app.portal.issue(
            customer["email"],
            expires_at=expires_at,
            issued_by="cli",
            **more,  # type: ignore[arg-type]
        ).result
        self.seeded.links[name] = link_id
        self.seeded.tokens[name] = self.app.portal.token(link_id, secret=SECRET_KEY)


def seed_portal(app: BillingApplication, clock: ManualClock) -> PortalSeeded:
    """Lay the story down in the order it happened (`clock` is the app's) and leave the clock at NOW."""
    story = _Story(app, clock)
    seeded = story.seeded

    card = story.issued(
        "acme-usd-refunded",
        ACME,
        "usd",
        [NewLine("Platform subscription, January", 1, 100_000), NewLine("Support hours", 5, 5_000)],
        date(2026, 1, 15),
    )
    story.clock.set(_at(date(2026, 1, 20)))
    paid = ingest(
        app,
        verified_event(
            "evt_1PortalAcmeCard",
            "payment_intent.succeeded",
            "payment_intent",
            created=int(_at(date(2026, 1, 20)).timestamp()),
            id=CARD_INTENT,
            amount=125_000,
            amount_received=125_000,
            currency="usd",
            status="succeeded",
            latest_charge=CARD_CHARGE,
            metadata={"invoice_id": str(card)},
        ),
    )
    assert paid.outcome == "applied", paid
    story.clock.set(_at(date(2026, 2, 5)))
    app.record_refund(payment_id_for("stripe", CARD_INTENT), refund_id=REFUND, amount=25_000)

    story.issued("acme-jpy-open", ACME, "jpy", [NewLine("Tokyo office fit-out", 1, 128_000)], date(2026, 2, 10))
    story.issued(
        "acme-eur-open",
        ACME,
        "eur",
        [NewLine("Consulting days", 3, 15_000), NewLine("Travel expenses", 1, 3_000)],
        date(2026, 2, 20),
    )
    story.issued("globex-usd-open", GLOBEX, "usd", [NewLine("Globex integration", 1, 90_000)], date(2026, 2, 22))
    story.issued("globex-jpy-paid", GLOBEX, "jpy", [NewLine("Translation", 1, 5_000)], date(2026, 2, 24))
    story.paid_offline("globex-jpy-paid", Money(5_000, "jpy"), _at(date(2026, 2, 26)), "furikomi 0226")
    story.paid_offline("acme-eur-open", Money(8_000, "eur"), _at(date(2026, 2, 27)), "SEPA 2026-02-27")

    story.clock.set(_at(date(2026, 2, 28)))
    seeded.invoices["acme-draft"] = app.create_draft(
        customer=ACME, currency="usd", lines=[NewLine("Not yet agreed", 1, 77_700)], memo=MEMO
    ).result

    story.link("expired", ACME, on=_at(date(2026, 2, 1)), expires_at=_at(date(2026, 2, 15)))
    story.link("revoked", ACME, on=_at(date(2026, 3, 1)), expires_at=_at(date(2026, 3, 31)))
    story.link(
        "acme",
        ACME,
        on=NOW - timedelta(hours=1),
        expires_at=NOW + timedelta(days=30),
        invoice_id=seeded.invoices["acme-eur-open"],
    )
    story.link("globex", GLOBEX, on=NOW - timedelta(hours=1), expires_at=NOW + timedelta(days=30))
    story.clock.set(NOW - timedelta(minutes=30))
    app.portal.revoke(seeded.links["revoked"], reason="sent to the wrong person")
    story.clock.set(NOW)
    return seeded
