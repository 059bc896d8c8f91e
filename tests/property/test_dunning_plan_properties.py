"""Properties of the pure dunning plan, over any policy and any rhythm of passes.

Each example follows one invoice through passes at random intervals, folding every plan into
the progress the Dunning aggregate would keep, while failed attempts arrive and the invoice may
be paid. Retries that never report back are the worst case for the retry cap, so by default a
retry adds no failed attempt.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.dunning.plan import EXHAUST, REMIND, RETRY_PAYMENT, SKIP, START, STOP, InvoiceFacts, Planned, Progress, plan
from ledger.dunning.policy import REMINDER, RETRY, UNCOLLECTIBLE, DunningPolicy, Step
from ledger.invoices import OPEN, PAID

DUE = date(2026, 3, 10)


@st.composite
def policies(draw: st.DrawFn) -> DunningPolicy:
    days = sorted(draw(st.lists(st.integers(1, 30), min_size=1, max_size=8)))
    steps = [Step(draw(st.sampled_from([REMINDER, RETRY])), d) for d in days]
    if draw(st.booleans()):
        steps.append(Step(UNCOLLECTIBLE, days[-1] + draw(st.integers(0, 10))))
    return DunningPolicy(tuple(steps), draw(st.integers(1, 6)))


passes = st.lists(
    st.tuples(
        st.integers(0, 6),  # days until this pass
        st.integers(0, 23),  # hour of this pass
        st.booleans(),  # a failed attempt arrived before it
        st.integers(0, 30),  # 0: the invoice was paid before it
    ),
    max_size=40,
)


def fold(progress: Progress | None, planned: list[Planned], anchor: date, policy: DunningPolicy) -> Progress | None:
    """What the Dunning aggregate records of a plan, as its progress."""
    for step in planned:
        if step.kind == START:
            progress = Progress(anchor=anchor, policy=policy, settled=0, retries=0, finished=False)
            continue
        assert progress is not None, f"{step} before the dunning started"
        if step.kind in (EXHAUST, STOP):
            progress = replace(progress, finished=True)
        if step.step is not None:
            assert step.step == progress.settled, f"{step} out of order (next: {progress.settled})"
            progress = replace(progress, settled=step.step + 1)
        if step.kind == RETRY_PAYMENT:
            progress = replace(progress, retries=progress.retries + 1)
    return progress


@settings(max_examples=500)
@given(policy=policies(), first_failed=st.booleans(), passes=passes)
def test_the_plan_keeps_its_promises(
    policy: DunningPolicy, first_failed: bool, passes: list[tuple[int, int, bool, int]]
) -> None:
    now = datetime(DUE.year, DUE.month, DUE.day, tzinfo=UTC)
    invoice = InvoiceFacts(status=OPEN, anchor=DUE, failed_attempts=int(first_failed), can_retry=first_failed)
    progress: Progress | None = None
    exhausted = stopped = 0
    for days, hour, failed, pay in passes:
        now = now.replace(hour=hour) + timedelta(days=days)
        if failed:
            invoice = replace(invoice, failed_attempts=invoice.failed_attempts + 1, can_retry=True)
        if pay == 0 and invoice.status == OPEN:
            invoice = replace(invoice, status=PAID)
        was_open = invoice.status == OPEN
        planned = plan(invoice=invoice, progress=progress, policy=policy, now=now)
        progress = fold(progress, planned, DUE, policy)

        assert plan(invoice=invoice, progress=progress, policy=policy, now=now) == []  # a second pass: nothing
        if progress is not None:
            assert progress.retries <= policy.max_attempts - 1
            assert progress.policy == policy
        if not was_open:
            assert {p.kind for p in planned} <= {STOP}  # nothing but a stop once paid
        exhausted += sum(p.kind == EXHAUST for p in planned)
        stopped += sum(p.kind == STOP for p in planned)
        assert exhausted + stopped <= 1
        if exhausted:
            invoice = replace(invoice, status="uncollectible")
        ended = now.date() >= DUE + timedelta(days=policy.span_days) or invoice.failed_attempts >= policy.max_attempts
        if was_open and now.date() > DUE and ended:
            assert exhausted == 1, "the schedule ended but the invoice was not marked uncollectible"
        if now.date() <= DUE:
            assert planned == []


@given(policy=policies(), hours=st.integers(0, 23 * 60))
def test_nothing_is_planned_on_or_before_the_due_day(policy: DunningPolicy, hours: int) -> None:
    invoice = InvoiceFacts(status=OPEN, anchor=DUE, failed_attempts=policy.max_attempts, can_retry=True)
    moment = datetime(DUE.year, DUE.month, DUE.day, tzinfo=UTC) + timedelta(minutes=hours)
    assert plan(invoice=invoice, progress=None, policy=policy, now=moment) == []


@st.composite
def early_policies(draw: st.DrawFn) -> DunningPolicy:
    """A policy with one or more reminders on or before the due date, then the usual steps."""
    early = sorted(draw(st.lists(st.integers(-20, 0), min_size=1, max_size=4)))
    later = draw(policies())
    return DunningPolicy(tuple(Step(REMINDER, d) for d in early) + later.steps, later.max_attempts)


@settings(max_examples=500)
@given(
    policy=early_policies(),
    issued_before=st.integers(0, 30),
    first_failed=st.booleans(),
    passes=passes,
)
def test_reminders_before_the_due_date_are_taken_once_and_nothing_else_is(
    policy: DunningPolicy, issued_before: int, first_failed: bool, passes: list[tuple[int, int, bool, int]]
) -> None:
    issued = DUE - timedelta(days=issued_before)
    now = datetime(issued.year, issued.month, issued.day, tzinfo=UTC)
    invoice = InvoiceFacts(
        status=OPEN, anchor=DUE, failed_attempts=int(first_failed), can_retry=first_failed, issued_on=issued
    )
    progress: Progress | None = None
    for days, hour, failed, pay in passes:
        now = now.replace(hour=hour) + timedelta(days=days)
        if failed:
            invoice = replace(invoice, failed_attempts=invoice.failed_attempts + 1, can_retry=True)
        if pay == 0 and invoice.status == OPEN:
            invoice = replace(invoice, status=PAID)
        was_open = invoice.status == OPEN
        planned = plan(invoice=invoice, progress=progress, policy=policy, now=now)
        progress = fold(progress, planned, DUE, policy)

        assert plan(invoice=invoice, progress=progress, policy=policy, now=now) == []
        if not was_open:
            assert {p.kind for p in planned} <= {STOP}
        if now.date() <= DUE:  # before it is overdue: early reminders (or their skips), or a stop once paid
            assert {p.kind for p in planned} <= {START, REMIND, SKIP, STOP}
            assert all(policy.steps[p.step].days < 1 for p in planned if p.step is not None)
        for p in planned:
            if p.kind == REMIND and p.step is not None and policy.steps[p.step].days < 1:
                assert DUE + timedelta(days=policy.steps[p.step].days) > issued  # never on or before the issue day
        if any(p.kind == EXHAUST for p in planned):
            invoice = replace(invoice, status="uncollectible")
