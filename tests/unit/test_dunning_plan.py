"""The dunning plan: which steps are due for an invoice at a moment, from facts alone."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from ledger.dunning.plan import (
    EXHAUST,
    ISSUED_LATER,
    MAX_ATTEMPTS,
    NO_DUE_DATE,
    NOTHING_TO_RETRY,
    REMIND,
    RETRIES_USED_UP,
    RETRY_PAYMENT,
    SCHEDULE_DONE,
    SCHEDULED,
    SKIP,
    START,
    STOP,
    InvoiceFacts,
    Planned,
    Progress,
    anchor_of,
    plan,
)
from ledger.dunning.policy import DunningPolicy
from ledger.invoices import OPEN, PAID, UNCOLLECTIBLE, VOID

DUE = date(2026, 3, 10)
POLICY = DunningPolicy.parse("reminder:1,retry:3,reminder:7,retry:14,uncollectible:30", 4)
OVERDUE = InvoiceFacts(status=OPEN, anchor=DUE, failed_attempts=1, can_retry=True)


def day(n: int, hour: int = 9) -> datetime:
    """`n` days after the due date, at `hour` UTC."""
    return datetime(DUE.year, DUE.month, DUE.day, hour, tzinfo=UTC) + timedelta(days=n)


def started(settled: int = 0, retries: int = 0, policy: DunningPolicy = POLICY, finished: bool = False) -> Progress:
    return Progress(anchor=DUE, policy=policy, settled=settled, retries=retries, finished=finished)


def test_nothing_happens_on_or_before_the_due_date() -> None:
    assert plan(invoice=OVERDUE, progress=None, policy=POLICY, now=day(0, hour=23)) == []
    assert plan(invoice=OVERDUE, progress=None, policy=POLICY, now=day(-5)) == []


def test_the_first_overdue_day_starts_the_dunning_with_its_first_step() -> None:
    assert plan(invoice=OVERDUE, progress=None, policy=POLICY, now=day(1)) == [
        Planned(START),
        Planned(REMIND, 0, SCHEDULED),
    ]


def test_days_are_counted_in_utc() -> None:
    late_evening_in_new_york = datetime(2026, 3, 10, 22, tzinfo=timezone(timedelta(hours=-5)))  # 03:00 UTC on the 11th
    assert plan(invoice=OVERDUE, progress=None, policy=POLICY, now=late_evening_in_new_york)[-1] == Planned(
        REMIND, 0, SCHEDULED
    )


def test_a_started_dunning_waits_for_its_next_step_day() -> None:
    assert plan(invoice=OVERDUE, progress=started(settled=1), policy=POLICY, now=day(2)) == []
    assert plan(invoice=OVERDUE, progress=started(settled=1), policy=POLICY, now=day(3)) == [
        Planned(RETRY_PAYMENT, 1, SCHEDULED)
    ]


def test_an_overdue_invoice_before_its_first_step_is_only_started() -> None:
    policy = DunningPolicy.parse("retry:3,uncollectible:9", 4)
    assert plan(invoice=OVERDUE, progress=None, policy=policy, now=day(1)) == [Planned(START)]
    assert plan(invoice=OVERDUE, progress=started(policy=policy), policy=policy, now=day(2)) == []


def test_a_late_pass_takes_only_the_latest_due_step_and_skips_the_others() -> None:
    assert plan(invoice=OVERDUE, progress=None, policy=POLICY, now=day(8)) == [
        Planned(START),
        Planned(SKIP, 0, "superseded by reminder:7"),
        Planned(SKIP, 1, "superseded by reminder:7"),
        Planned(REMIND, 2, SCHEDULED),
    ]


def test_a_retry_without_a_failed_payment_is_a_reminder() -> None:
    nothing_to_retry = replace(OVERDUE, failed_attempts=0, can_retry=False)
    assert plan(invoice=nothing_to_retry, progress=started(settled=1), policy=POLICY, now=day(3)) == [
        Planned(REMIND, 1, NOTHING_TO_RETRY)
    ]


def test_retries_stop_at_max_attempts_minus_one() -> None:
    policy = DunningPolicy.parse("retry:1,retry:2,retry:3,uncollectible:9", 3)
    assert plan(invoice=OVERDUE, progress=started(2, retries=2, policy=policy), policy=policy, now=day(3)) == [
        Planned(REMIND, 2, RETRIES_USED_UP)
    ]


def test_max_failed_attempts_exhaust_the_dunning_whatever_the_schedule_says() -> None:
    worn_out = replace(OVERDUE, failed_attempts=4)
    assert plan(invoice=worn_out, progress=started(settled=1), policy=POLICY, now=day(3)) == [
        Planned(EXHAUST, reason=MAX_ATTEMPTS)
    ]
    assert plan(invoice=worn_out, progress=None, policy=POLICY, now=day(1)) == [
        Planned(START),
        Planned(EXHAUST, reason=MAX_ATTEMPTS),
    ]


def test_the_uncollectible_step_exhausts_the_dunning() -> None:
    assert plan(invoice=OVERDUE, progress=started(settled=4, retries=2), policy=POLICY, now=day(30)) == [
        Planned(EXHAUST, 4, SCHEDULE_DONE)
    ]


def test_without_an_uncollectible_step_the_last_step_exhausts_the_dunning() -> None:
    policy = DunningPolicy.parse("reminder:1,retry:3", 4)
    assert plan(invoice=OVERDUE, progress=started(settled=1, policy=policy), policy=policy, now=day(3)) == [
        Planned(RETRY_PAYMENT, 1, SCHEDULED),
        Planned(EXHAUST, reason=SCHEDULE_DONE),
    ]


@pytest.mark.parametrize("status", [PAID, VOID, UNCOLLECTIBLE])
def test_an_invoice_no_longer_open_stops_its_dunning(status: str) -> None:
    closed = replace(OVERDUE, status=status)
    assert plan(invoice=closed, progress=started(settled=1), policy=POLICY, now=day(3)) == [
        Planned(STOP, reason=f"invoice {status}")
    ]
    assert plan(invoice=closed, progress=None, policy=POLICY, now=day(3)) == []


def test_a_finished_dunning_plans_nothing() -> None:
    assert plan(invoice=OVERDUE, progress=started(settled=2, finished=True), policy=POLICY, now=day(40)) == []


def test_a_started_dunning_follows_its_own_policy_not_the_current_one() -> None:
    shorter = DunningPolicy.parse("uncollectible:2", 4)
    assert plan(invoice=OVERDUE, progress=started(settled=1), policy=shorter, now=day(3)) == [
        Planned(RETRY_PAYMENT, 1, SCHEDULED)
    ]


def test_an_invoice_without_a_due_date_counts_from_its_first_failed_attempt() -> None:
    assert anchor_of("2026-03-10", ["2026-02-01T10:00:00+00:00"]) == DUE
    assert anchor_of(None, ["2026-03-09T23:30:00-02:00", "2026-03-12T10:00:00+00:00"]) == date(2026, 3, 10)
    assert anchor_of(None, []) is None
    nothing_to_dun = replace(OVERDUE, anchor=None)
    assert plan(invoice=nothing_to_dun, progress=None, policy=POLICY, now=day(100)) == []


def test_the_moment_must_have_a_timezone() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        plan(invoice=OVERDUE, progress=None, policy=POLICY, now=datetime(2026, 3, 20))


def test_a_planned_retry_can_become_a_reminder_or_a_skip() -> None:
    retry = Planned(RETRY_PAYMENT, 1, SCHEDULED)
    assert retry.instead_remind("no card") == Planned(REMIND, 1, "no card")
    assert retry.instead_skip("paid already") == Planned(SKIP, 1, "paid already")


EARLY = DunningPolicy.parse("reminder:-3,reminder:1,retry:3,uncollectible:30", 4)
ISSUED_EARLY = replace(OVERDUE, failed_attempts=0, can_retry=False, issued_on=DUE - timedelta(days=20))


def test_a_reminder_before_the_due_date_starts_the_dunning_on_its_day() -> None:
    assert plan(invoice=ISSUED_EARLY, progress=None, policy=EARLY, now=day(-4, hour=23)) == []
    assert plan(invoice=ISSUED_EARLY, progress=None, policy=EARLY, now=day(-3)) == [
        Planned(START),
        Planned(REMIND, 0, SCHEDULED),
    ]


def test_after_an_early_reminder_nothing_happens_until_the_first_overdue_step() -> None:
    reminded = started(settled=1, policy=EARLY)
    for n in (-2, -1, 0):
        assert plan(invoice=ISSUED_EARLY, progress=reminded, policy=EARLY, now=day(n, hour=23)) == []
    assert plan(invoice=ISSUED_EARLY, progress=reminded, policy=EARLY, now=day(1)) == [Planned(REMIND, 1, SCHEDULED)]


def test_before_the_due_date_max_attempts_do_not_write_the_invoice_off() -> None:
    worn_out = replace(ISSUED_EARLY, failed_attempts=4, can_retry=True)
    assert plan(invoice=worn_out, progress=None, policy=EARLY, now=day(-3)) == [
        Planned(START),
        Planned(REMIND, 0, SCHEDULED),
    ]
    assert plan(invoice=worn_out, progress=started(settled=1, policy=EARLY), policy=EARLY, now=day(1)) == [
        Planned(EXHAUST, reason=MAX_ATTEMPTS)
    ]


def test_a_paid_invoice_gets_no_early_reminder_and_its_early_dunning_stops() -> None:
    paid = replace(ISSUED_EARLY, status=PAID)
    assert plan(invoice=paid, progress=None, policy=EARLY, now=day(-3)) == []
    assert plan(invoice=paid, progress=started(settled=1, policy=EARLY), policy=EARLY, now=day(-1)) == [
        Planned(STOP, reason="invoice paid")
    ]


def test_an_early_reminder_whose_day_is_not_after_the_issue_is_skipped() -> None:
    issued_late = replace(ISSUED_EARLY, issued_on=DUE - timedelta(days=2))
    assert plan(invoice=issued_late, progress=None, policy=EARLY, now=day(-2)) == [
        Planned(START),
        Planned(SKIP, 0, ISSUED_LATER),
    ]
    on_the_day = replace(ISSUED_EARLY, issued_on=DUE - timedelta(days=3))
    assert plan(invoice=on_the_day, progress=None, policy=EARLY, now=day(-3))[-1] == Planned(SKIP, 0, ISSUED_LATER)
    day_before = replace(ISSUED_EARLY, issued_on=DUE - timedelta(days=4))
    assert plan(invoice=day_before, progress=None, policy=EARLY, now=day(-3))[-1] == Planned(REMIND, 0, SCHEDULED)


def test_a_late_first_pass_still_reminds_once() -> None:
    assert plan(invoice=ISSUED_EARLY, progress=None, policy=EARLY, now=day(2)) == [
        Planned(START),
        Planned(SKIP, 0, "superseded by reminder:1"),
        Planned(REMIND, 1, SCHEDULED),
    ]


def test_an_invoice_without_a_due_date_skips_the_early_reminders() -> None:
    no_due_date = replace(OVERDUE, has_due_date=False)  # the anchor is its first failed attempt's day
    assert plan(invoice=no_due_date, progress=None, policy=EARLY, now=day(-3)) == []
    assert plan(invoice=no_due_date, progress=None, policy=EARLY, now=day(0, hour=23)) == []
    assert plan(invoice=no_due_date, progress=None, policy=EARLY, now=day(1)) == [
        Planned(START),
        Planned(SKIP, 0, NO_DUE_DATE),
        Planned(REMIND, 1, SCHEDULED),
    ]


def test_a_reminder_on_the_due_date() -> None:
    on_due = DunningPolicy.parse("reminder:0,retry:3,uncollectible:30", 4)
    assert plan(invoice=ISSUED_EARLY, progress=None, policy=on_due, now=day(-1, hour=23)) == []
    assert plan(invoice=ISSUED_EARLY, progress=None, policy=on_due, now=day(0)) == [
        Planned(START),
        Planned(REMIND, 0, SCHEDULED),
    ]
