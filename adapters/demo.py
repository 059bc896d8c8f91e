"""A realistic demo data set, seeded through the same commands the API uses.

History is laid down over the last ten weeks with a hand-moved clock, so due dates, overdue
invoices and "as of" audits have something to show. Every write carries an idempotency key
(or a provider id) derived from the day it is seeded: running the seed twice on one day
changes nothing.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

from adapters.clock import ManualClock
from adapters.mail.capture import DEFAULT_FOLDER, CaptureServer
from adapters.settings import Settings
from commands.admin.acting import Actor, acting_as
from commands.application import BillingApplication
from commands.messages import NewLine
from ledger.admin.users import ADMIN, user_id_for
from ledger.mail.emails import INVOICE, REMINDER
from ledger.money import Money


@dataclass(frozen=True)
class Seeded:
    invoice_id: UUID
    story: str


ACME = {"email": "billing@acme.example", "name": "Acme Corporation"}
GLOBEX = {"email": "ap@globex.example", "name": "Globex GmbH"}
INITECH = {"email": "keiri@initech.example", "name": "Initech KK"}
UMBRELLA = {"email": "accounts@umbrella.example", "name": "Umbrella Ltd"}
WAYNE = {"email": "payables@wayne.example", "name": "Wayne Enterprises"}
GULF = {"email": "finance@gulf-trading.example", "name": "Gulf Trading WLL"}

# The dashboard's demo user: the void and the write-off below are its actions (the activity page).
DEMO_ADMIN = "admin@demo.example"
DEMO_ACTOR = Actor(user_id=str(user_id_for(DEMO_ADMIN)), email=DEMO_ADMIN, role=ADMIN)


def seed_demo(app: BillingApplication, clock: ManualClock, *, admin_password: str | None = None) -> list[Seeded]:
    """Seed the demo set. `clock` is the app's clock; it is moved through the last ten weeks.

    With `admin_password`, the dashboard user `admin@demo.example` (an admin) is created with it
    first, unless it exists already.
    """
    today = datetime.now(tz=UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    tag = today.date().isoformat()
    start = today - timedelta(days=70)
    clock.set(start)
    n = iter(range(1, 1000))

    def key() -> str:
        return f"demo:{tag}:{next(n)}"

    def at(days: int) -> None:
        clock.set(start + timedelta(days=days))

    def due(days: int) -> str:
        return (start + timedelta(days=days)).date().isoformat()

    seeded: list[Seeded] = []
    if admin_password is not None and app.admin.user_by_email(DEMO_ADMIN) is None:
        app.admin.create_user(DEMO_ADMIN, role=ADMIN, password=admin_password, created_by="demo")

    def draft(customer: dict[str, str], currency: str, lines: list[NewLine], due_day: int, memo: str = "") -> UUID:
        return app.create_draft(
            customer=customer,
            currency=currency,
            lines=lines,
            due_date=due(due_day),
            memo=memo,
            metadata={"source": "demo"},
            idempotency_key=key(),
        ).result

    # 1. Paid by card through the processor, with its fee.
    at(1)
    paid = draft(INITECH, "jpy", [NewLine("Annual support plan", 1, 240_000, "10")], 31)
    app.issue(paid, idempotency_key=key())
    at(5)
    app.record_provider_payment_succeeded(
        provider="stripe",
        provider_payment_id=f"pi_demo_{tag}_1",
        invoice_id=paid,
        amount_captured=Money(264_000, "jpy"),
        fee=9_500,
        charge_id=f"ch_demo_{tag}_1",
    )
    seeded.append(Seeded(paid, "paid by card"))

    # 2. Paid, then partly refunded: stays paid, the refund shows apart.
    at(8)
    refunded = draft(
        WAYNE,
        "usd",
        [
            NewLine("Consulting (hours)", "12.5", 18_000, "8.875"),
            NewLine("Travel expenses", 1, 64_250),
        ],
        38,
    )
    app.issue(refunded, idempotency_key=key())
    at(12)
    payment = app.record_provider_payment_succeeded(
        provider="stripe",
        provider_payment_id=f"pi_demo_{tag}_2",
        invoice_id=refunded,
        amount_captured=Money(app.invoice(refunded).total, "usd"),
        fee=7_203,
        charge_id=f"ch_demo_{tag}_2",
    ).result
    at(20)
    app.record_refund(payment, refund_id=f"re_demo_{tag}_2", amount=64_250)
    seeded.append(Seeded(refunded, "paid, travel refunded"))

    # 3. Partially paid by bank transfer.
    at(15)
    partial = draft(UMBRELLA, "gbp", [NewLine("Platform licence, 40 seats", 40, 2_500, "20")], 45)
    app.issue(partial, idempotency_key=key())
    at(30)
    app.record_offline_payment(partial, Money(60_000, "gbp"), reference="BACS 88213", idempotency_key=key())
    seeded.append(Seeded(partial, "partially paid by bank transfer"))

    # 4. Overdue, after a declined card.
    at(20)
    overdue = draft(GULF, "kwd", [NewLine("Data feed, quarterly", 1, 1_250_500)], 35, memo="Net 15")
    app.issue(overdue, idempotency_key=key())
    at(36)
    app.record_provider_payment_failed(
        provider="stripe",
        provider_payment_id=f"pi_demo_{tag}_4",
        invoice_id=overdue,
        attempt_id=f"ch_demo_{tag}_4",
        code="card_declined",
        message="Your card was declined.",
    )
    seeded.append(Seeded(overdue, "overdue after a declined card"))

    # 5. Voided: issued by mistake.
    at(25)
    voided = draft(ACME, "usd", [NewLine("Duplicate of an earlier order", 1, 99_900)], 55)
    app.issue(voided, idempotency_key=key())
    at(26)
    with acting_as(DEMO_ACTOR, "invoice.void", target=str(voided), detail="issued by mistake"):
        app.void(voided, idempotency_key=key())
    seeded.append(Seeded(voided, "voided"))

    # 6. Written off as uncollectible.
    at(28)
    bad = draft(GLOBEX, "eur", [NewLine("Implementation services", 3, 150_000, "19")], 40)
    app.issue(bad, idempotency_key=key())
    at(65)
    with acting_as(
        DEMO_ACTOR, "invoice.mark-uncollectible", target=str(bad), detail="written off after 25 days overdue"
    ):
        app.mark_uncollectible(bad, idempotency_key=key())
    seeded.append(Seeded(bad, "uncollectible"))

    # 7. Paid, then disputed by the cardholder.
    at(40)
    disputed = draft(ACME, "usd", [NewLine("Hardware kit", 2, 45_000, "7.25")], 54)
    app.issue(disputed, idempotency_key=key())
    at(42)
    card = app.record_provider_payment_succeeded(
        provider="stripe",
        provider_payment_id=f"pi_demo_{tag}_7",
        invoice_id=disputed,
        amount_captured=Money(app.invoice(disputed).total, "usd"),
        fee=2_910,
        charge_id=f"ch_demo_{tag}_7",
    ).result
    at(60)
    app.record_dispute_opened(card, dispute_id=f"dp_demo_{tag}_7", amount=45_000, reason="product_not_received")
    seeded.append(Seeded(disputed, "paid, then disputed"))

    # 8. Open and not yet due.
    at(62)
    current = draft(
        GLOBEX,
        "eur",
        [
            NewLine("API calls (thousands)", "1234.567", 12, "19"),
            NewLine("Premium support", 1, 49_900, "19"),
        ],
        92,
    )
    app.issue(current, idempotency_key=key())
    seeded.append(Seeded(current, "open, not yet due"))

    # 9. A draft still being edited.
    at(69)
    editing = draft(ACME, "usd", [NewLine("Design sprint", 5, 120_000)], 99, memo="Draft for review")
    seeded.append(Seeded(editing, "draft"))

    # Emails waiting for the mail worker (`make demo` delivers them to its capture server): the
    # open invoice to its customer, and a reminder of the overdue one. Their ids come from the
    # invoice's version, so seeding again the same day queues nothing more.
    app.mail.queue(current, purpose=INVOICE, trigger="cli")
    app.mail.queue(overdue, purpose=REMINDER, trigger="cli")
    return seeded


def demo_mail(settings: Settings, folder: Path = DEFAULT_FOLDER) -> tuple[Settings, CaptureServer | None]:
    """For `ledger demo --serve`: without LEDGER_SMTP_URL, a capture server on loopback keeping
    the demo's mail in `folder` (adapters/mail/capture.py), and the settings pointing at it, with
    mail on issue unless LEDGER_MAIL_ON_ISSUE says otherwise. The environment is set too: the
    server's worker reads its settings from it. With LEDGER_SMTP_URL set, nothing changes."""
    if settings.smtp_url:
        return settings, None
    capture = CaptureServer(folder).start()
    on_issue = settings.mail_on_issue if "LEDGER_MAIL_ON_ISSUE" in os.environ else True
    os.environ["LEDGER_SMTP_URL"] = capture.url
    os.environ["LEDGER_MAIL_ON_ISSUE"] = "1" if on_issue else "0"
    return dataclasses.replace(settings, smtp_url=capture.url, mail_on_issue=on_issue), capture
