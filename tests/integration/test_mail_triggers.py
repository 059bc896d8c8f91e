"""The mail triggers on the real backends: what is issued and reminded is queued, once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Engine

from adapters.clock import ManualClock
from adapters.mail.triggers import POSITION, mail_triggers
from commands.application import BillingApplication
from commands.mail.triggers import DASHBOARD, DUNNING, ON_ISSUE, MailTriggers, reminder_key
from commands.messages import NewLine
from ledger.dunning.aggregate import dunning_id_for
from ledger.dunning.policy import DunningPolicy
from ledger.mail.emails import INVOICE, REMINDER, email_id_for, version_key
from ledger.money import Money
from projections.mail.emails import invoice_emails_of
from projections.positions import TrackedPosition
from projections.runner import ProjectionRunner

POLICY = DunningPolicy.parse("reminder:1,retry:3,uncollectible:30", 4)
DUE = "2026-03-10"


def issued(app: BillingApplication, *, email: str = "ap@example.com") -> UUID:
    invoice_id = app.create_draft(
        customer={"email": email, "name": "Example Ltd"},
        currency="usd",
        lines=[NewLine(description="Consulting", quantity=1, unit_amount=12_000)],
        due_date=DUE,
    ).result
    app.issue(invoice_id)
    return invoice_id


def begun(app: BillingApplication, engine: Engine, *, on_issue: bool) -> MailTriggers:
    """The triggers with their position fixed at the head of the log: what comes after is theirs."""
    triggers = mail_triggers(app, engine, on_issue=on_issue)
    triggers.begin()
    return triggers


def emails(runner: ProjectionRunner, engine: Engine, invoice_id: UUID) -> list[dict[str, Any]]:
    runner.catch_up()
    return invoice_emails_of(engine, invoice_id)


class Forgetful:
    """A position that is never saved: every pass reads the log from where it began."""

    def __init__(self, position: int) -> None:
        self.position = position

    def read(self) -> int | None:
        return self.position

    def begin(self, position: int) -> int:
        return self.position

    def advance(self, position: int) -> None:
        pass


def test_the_first_run_starts_at_the_head_so_the_past_is_not_mailed(
    app: BillingApplication, runner: ProjectionRunner, engine: Engine
) -> None:
    before = issued(app)
    triggers = mail_triggers(app, engine, on_issue=True)
    assert triggers.run_once().queued == 0
    assert emails(runner, engine, before) == []
    after = issued(app)
    head = app.head()
    done = triggers.run_once()
    assert (done.queued, done.position) == (1, head)  # the email it queued is after it
    [email] = emails(runner, engine, after)
    assert (email["purpose"], email["trigger"], email["recipient"]) == (INVOICE, ON_ISSUE, "ap@example.com")
    assert email["status"] == "queued"


def test_an_issued_invoice_is_queued_once_however_often_the_log_is_read(
    app: BillingApplication, runner: ProjectionRunner, engine: Engine
) -> None:
    triggers = begun(app, engine, on_issue=True)
    invoice_id = issued(app)
    assert triggers.run_once().queued == 1
    assert triggers.run_once().queued == 0  # the position moved past it
    restarted = mail_triggers(app, engine, on_issue=True)  # a new process: the position was kept
    assert restarted.run_once().queued == 0
    unsaved = MailTriggers(app, Forgetful(0), on_issue=True)  # the position lost: the same email
    assert unsaved.run_once().queued >= 1
    [email] = emails(runner, engine, invoice_id)
    issued_version = app.invoice(invoice_id).version
    assert email["email_id"] == str(email_id_for(invoice_id, INVOICE, version_key(issued_version)))


def test_a_send_of_the_unchanged_invoice_after_its_issue_is_the_same_email(
    app: BillingApplication, runner: ProjectionRunner, engine: Engine
) -> None:
    triggers = begun(app, engine, on_issue=True)
    invoice_id = issued(app)
    triggers.run_once()
    by_hand = app.mail.queue(invoice_id, purpose=INVOICE, trigger="api").result
    [email] = emails(runner, engine, invoice_id)
    assert email["email_id"] == str(by_hand)


def test_with_mail_on_issue_off_nothing_is_queued_and_the_triggers_move_on(
    app: BillingApplication, runner: ProjectionRunner, engine: Engine
) -> None:
    off = begun(app, engine, on_issue=False)
    invoice_id = issued(app)
    done = off.run_once()
    assert (done.queued, done.passed_over, done.position) == (0, 1, app.head())  # nothing written
    assert mail_triggers(app, engine, on_issue=True).run_once().queued == 0  # turned on later: not the past
    assert emails(runner, engine, invoice_id) == []


def test_an_invoice_voided_before_its_email_was_queued_is_not_mailed(
    app: BillingApplication, runner: ProjectionRunner, engine: Engine
) -> None:
    triggers = begun(app, engine, on_issue=True)
    invoice_id = issued(app)
    app.void(invoice_id)
    assert triggers.run_once().passed_over == 1
    assert emails(runner, engine, invoice_id) == []


def test_each_reminder_event_is_one_reminder_email(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    invoice_id = issued(app)
    triggers = begun(app, engine, on_issue=False)
    clock.set(datetime(2026, 3, 11, 9, tzinfo=UTC))
    app.dunning.advance(invoice_id, policy=POLICY)  # started, then reminder:1
    clock.advance(timedelta(hours=2))
    app.dunning.remind_by_hand(invoice_id, policy=POLICY)  # the dashboard's "send reminder"
    assert triggers.run_once().queued == 2
    clock.set(datetime(2026, 3, 12, 9, tzinfo=UTC))
    app.dunning.advance(invoice_id, policy=POLICY)  # nothing due: no new reminder event
    assert triggers.run_once().queued == 0
    found = {e["email_id"]: (e["purpose"], e["trigger"]) for e in emails(runner, engine, invoice_id)}
    dunning = dunning_id_for(invoice_id)  # its v1 is dunning.started
    assert found == {
        str(email_id_for(invoice_id, REMINDER, f"dunning-{dunning}-v2")): (REMINDER, DUNNING),
        str(email_id_for(invoice_id, REMINDER, f"dunning-{dunning}-v3")): (REMINDER, DASHBOARD),
    }
    assert MailTriggers(app, Forgetful(0), on_issue=False).run_once().queued == 2  # the same two again
    assert len(emails(runner, engine, invoice_id)) == 2


def test_a_reminder_for_an_invoice_paid_since_is_passed_over(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    invoice_id = issued(app)
    triggers = begun(app, engine, on_issue=False)
    clock.set(datetime(2026, 3, 11, 9, tzinfo=UTC))
    app.dunning.advance(invoice_id, policy=POLICY)
    app.record_offline_payment(invoice_id, Money(12_000, "usd"), reference="wire 5")
    assert triggers.run_once().passed_over == 1
    assert emails(runner, engine, invoice_id) == []


def test_the_reminder_key_names_the_dunning_event() -> None:
    class Event:
        originator_id = UUID(int=7)
        originator_version = 4

    assert reminder_key(Event()) == f"dunning-{UUID(int=7)}-v4"  # type: ignore[arg-type]


def test_the_position_only_moves_forward_and_a_rebuild_leaves_it(
    app: BillingApplication, runner: ProjectionRunner, engine: Engine
) -> None:
    position = TrackedPosition(engine, POSITION)
    assert position.read() is None
    assert position.begin(5) == 5
    assert position.begin(9) == 5  # begun already: kept
    position.advance(8)
    position.advance(6)
    assert position.read() == 8
    issued(app)
    runner.rebuild()
    assert position.read() == 8
