"""Reminders before the due date (`reminder:-3`), on the real backends: taken once, on their day,
never for a paid invoice, and the pass finds the invoices they are for."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import UUID

from sqlalchemy import Engine

from adapters.clock import ManualClock
from commands.application import BillingApplication
from commands.dunning import DunningAction
from commands.messages import NewLine
from ledger.dunning.aggregate import STOPPED, Dunning
from ledger.dunning.plan import ISSUED_LATER
from ledger.dunning.policy import DunningPolicy
from ledger.money import Money
from projections.overdue import dunning_candidates
from projections.runner import ProjectionRunner

EARLY = DunningPolicy.parse("reminder:-3,reminder:1,retry:3,uncollectible:30", 4)
DUE = date(2026, 3, 20)


def at_day(clock: ManualClock, days: int, hour: int = 9) -> datetime:
    """`days` after the due date (negative: before it)."""
    moment = datetime(DUE.year, DUE.month, DUE.day, hour, tzinfo=UTC) + timedelta(days=days)
    clock.set(moment)
    return moment


def issued_invoice(app: BillingApplication, clock: ManualClock, *, issued_day: int) -> UUID:
    at_day(clock, issued_day)
    invoice_id = app.create_draft(
        customer={"email": "ap@example.com", "name": "Example Ltd"},
        currency="usd",
        lines=[NewLine(description="Consulting", quantity=1, unit_amount=12_000)],
        due_date=DUE.isoformat(),
    ).result
    app.issue(invoice_id)
    return invoice_id


def kinds(actions: list[DunningAction]) -> list[tuple[str, int | None]]:
    return [(a.kind, a.step) for a in actions]


def reminders(app: BillingApplication, invoice_id: UUID) -> list[Dunning.ReminderRequested]:
    dunning = app.dunning.get(invoice_id)
    if dunning is None:
        return []
    events = app.repository.event_store.get(dunning.id)  # type: ignore[attr-defined]
    return [e for e in events if isinstance(e, Dunning.ReminderRequested)]


def test_a_reminder_three_days_before_the_due_date_is_taken_on_its_day_once(
    app: BillingApplication, clock: ManualClock
) -> None:
    invoice_id = issued_invoice(app, clock, issued_day=-15)
    at_day(clock, -4, hour=23)
    assert app.dunning.advance(invoice_id, policy=EARLY).result == []
    assert app.dunning.get(invoice_id) is None
    at_day(clock, -3)
    assert kinds(app.dunning.advance(invoice_id, policy=EARLY).result) == [("start", None), ("remind", 0)]
    for day in (-3, -2, -1, 0):
        at_day(clock, day, hour=20)
        assert app.dunning.advance(invoice_id, policy=EARLY).result == []  # not sent twice
    [early] = reminders(app, invoice_id)
    assert (early.step, early.days, early.amount_due, early.currency) == (0, -3, 12_000, "usd")
    at_day(clock, 1)
    assert kinds(app.dunning.advance(invoice_id, policy=EARLY).result) == [("remind", 1)]
    assert [r.days for r in reminders(app, invoice_id)] == [-3, 1]


def test_a_paid_invoice_gets_no_reminder_before_its_due_date(app: BillingApplication, clock: ManualClock) -> None:
    invoice_id = issued_invoice(app, clock, issued_day=-15)
    at_day(clock, -5)
    app.record_offline_payment(invoice_id, Money(12_000, "usd"), reference="wire 7")
    for day in (-3, -1, 1, 3):
        at_day(clock, day)
        assert app.dunning.advance(invoice_id, policy=EARLY).result == []
    assert app.dunning.get(invoice_id) is None


def test_paid_after_the_early_reminder_the_dunning_stops_before_the_due_date(
    app: BillingApplication, clock: ManualClock
) -> None:
    invoice_id = issued_invoice(app, clock, issued_day=-15)
    at_day(clock, -3)
    app.dunning.advance(invoice_id, policy=EARLY)
    at_day(clock, -2)
    app.record_offline_payment(invoice_id, Money(12_000, "usd"), reference="wire 8")
    at_day(clock, -1)
    assert kinds(app.dunning.advance(invoice_id, policy=EARLY).result) == [("stop", None)]
    dunning = app.dunning.get(invoice_id)
    assert dunning is not None
    assert dunning.status == STOPPED
    assert len(reminders(app, invoice_id)) == 1


def test_an_invoice_issued_after_the_reminder_day_is_not_reminded_early(
    app: BillingApplication, clock: ManualClock
) -> None:
    invoice_id = issued_invoice(app, clock, issued_day=-2)
    at_day(clock, -2, hour=12)
    [start, skip] = app.dunning.advance(invoice_id, policy=EARLY).result
    assert (start.kind, skip.kind, skip.step, skip.reason) == ("start", "skip", 0, ISSUED_LATER)
    assert reminders(app, invoice_id) == []
    at_day(clock, 1)
    assert kinds(app.dunning.advance(invoice_id, policy=EARLY).result) == [("remind", 1)]


def test_the_pass_looks_at_invoices_within_the_early_reminders_reach(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    due_in_three_days = issued_invoice(app, clock, issued_day=-15)
    paid_early = issued_invoice(app, clock, issued_day=-15)
    app.record_offline_payment(paid_early, Money(12_000, "usd"), reference="wire 9")
    runner.catch_up()
    three_before, four_before = DUE - timedelta(days=3), DUE - timedelta(days=4)
    found = dunning_candidates(engine, today=three_before, lookback_days=30, first_day=EARLY.first_day)
    assert str(due_in_three_days) in found
    assert str(paid_early) in found  # closed: a dunning it started early is stopped
    assert dunning_candidates(engine, today=four_before, lookback_days=30, first_day=EARLY.first_day) == []
    assert dunning_candidates(engine, today=three_before, lookback_days=30) == []  # the default: overdue only
