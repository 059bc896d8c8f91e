"""What the triggers queue reaches a real SMTP server (aiosmtpd, tests/mail_server.py), once, on
SQLite and PostgreSQL: the invoice on its issue, the dunning pass's reminders (after and before
the due date), through the same commands an operator runs."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from email.message import EmailMessage
from pathlib import Path
from uuid import UUID

import pytest
from sqlalchemy import Engine

from adapters.bootstrap import bootstrap
from adapters.cli import main
from adapters.clock import ManualClock
from adapters.mail.triggers import MailLoop, mail_triggers
from adapters.mail.worker import mail_worker
from adapters.settings import Settings
from commands.application import BillingApplication
from commands.messages import NewLine
from ledger.money import Money
from projections.runner import ProjectionRunner
from tests.mail_server import MailServer


def issue(app: BillingApplication, *, due_date: str, email: str = "ap@example.com") -> UUID:
    invoice_id = app.create_draft(
        customer={"email": email, "name": "Example Ltd"},
        currency="usd",
        lines=[NewLine(description="Support plan", quantity=1, unit_amount=49_900)],
        due_date=due_date,
    ).result
    app.issue(invoice_id)
    return invoice_id


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def test_an_invoice_issued_with_mail_on_issue_reaches_the_server_once(
    app: BillingApplication, engine: Engine, runner: ProjectionRunner, database_url: str, mail_server: MailServer
) -> None:
    settings = Settings(database_url=database_url, smtp_url=mail_server.url, mail_on_issue=True)
    triggers = mail_triggers(app, engine, on_issue=True)
    loop = MailLoop(triggers.run_once, mail_worker(app, engine, settings).run_once)
    loop.run_once()  # the first pass: from here on
    invoice_id = issue(app, due_date="2026-04-01")
    loop.run_once()
    loop.run_once()
    mail_triggers(app, engine, on_issue=True).run_once()  # another process's triggers: nothing new
    loop.run_once()
    [message] = mail_server.messages
    number = app.invoice(invoice_id).number
    assert message["Subject"] == f"Invoice {number} from Billing Ledger"
    assert message["To"] == "Example Ltd <ap@example.com>"
    assert "499.00 USD" in text_of(message)


@pytest.fixture
def mail_env(database_url: str, mail_server: MailServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    monkeypatch.setenv("LEDGER_DATABASE_URL", database_url)
    monkeypatch.setenv("LEDGER_SMTP_URL", mail_server.url)
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    monkeypatch.delenv("LEDGER_MAIL_ON_ISSUE", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env from the developer's checkout
    return database_url


def seeded(database_url: str, *, issued: datetime, due: datetime) -> UUID:
    app = bootstrap(Settings(database_url=database_url), clock=ManualClock(issued))
    try:
        return issue(app, due_date=due.date().isoformat())
    finally:
        app.close()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_a_dunning_pass_reminder_reaches_the_server_with_the_amount_due_and_due_date(
    mail_env: str, mail_server: MailServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEDGER_DUNNING_SCHEDULE", "reminder:1,uncollectible:30")
    due = datetime.combine(datetime.now(tz=UTC).date() - timedelta(days=2), time(9), tzinfo=UTC)
    invoice_id = seeded(mail_env, issued=due - timedelta(days=14), due=due)
    out = run(capsys, "dunning", "run")
    assert "reminder requested" in out
    assert "mail: emails 1 queued" in out
    assert "mail: emails 0 queued" in run(capsys, "dunning", "run")  # the same pass again: nothing new
    run(capsys, "mail", "run")
    run(capsys, "mail", "run")
    [message] = mail_server.messages
    assert message["Subject"].startswith("Reminder: invoice INV-")
    assert message["To"] == "Example Ltd <ap@example.com>"
    text = text_of(message)
    assert "499.00 USD" in text
    assert due.date().isoformat() in text
    reminder = run(capsys, "mail", "list", "--invoice", str(invoice_id))
    assert "reminder" in reminder
    assert "sent" in reminder


def test_a_reminder_before_the_due_date_is_mailed_and_a_paid_invoice_gets_none(
    mail_env: str, mail_server: MailServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEDGER_DUNNING_SCHEDULE", "reminder:-3,reminder:1,uncollectible:30")
    due = datetime.combine(datetime.now(tz=UTC).date() + timedelta(days=2), time(9), tzinfo=UTC)
    unpaid = seeded(mail_env, issued=due - timedelta(days=20), due=due)
    paid = seeded(mail_env, issued=due - timedelta(days=20), due=due)
    app = bootstrap(Settings(database_url=mail_env))
    try:
        app.record_offline_payment(paid, Money(49_900, "usd"), reference="wire 12")
        number = app.invoice(unpaid).number
    finally:
        app.close()
    out = run(capsys, "dunning", "run")
    assert "step 1 (reminder:-3) reminder requested" in out
    run(capsys, "dunning", "run")
    run(capsys, "mail", "run")
    [message] = mail_server.messages
    assert message["Subject"] == f"Reminder: invoice {number} is due"
    assert due.date().isoformat() in text_of(message)
    assert "no emails" in run(capsys, "mail", "list", "--invoice", str(paid))
