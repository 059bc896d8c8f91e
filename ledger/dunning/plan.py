"""What the dunning of one invoice should do next: a pure function of facts and a moment.

`plan(invoice, progress, policy, now)` looks at the invoice (its status, the day its dunning
counts from, its failed attempts, whether there is a failed payment to charge again), at what
its dunning has done already (`Progress`, from the Dunning aggregate; None before it started)
and at `now`, and returns the steps to take, in order. It reads no clock and keeps no state:
the same facts at the same moment give the same plan, and once the plan has been recorded the
next `plan` at that moment is empty. That is what makes a second dunning pass change nothing.

The rules, in order:

1. A finished dunning (exhausted or stopped) plans nothing more.
2. An invoice that is no longer open (paid, void, uncollectible by hand) stops its dunning.
3. Nothing happens until the day after the anchor (the due date, or for an invoice without
   one, the day of its first failed attempt): the due day itself is not overdue. A schedule
   whose first step is a reminder on or before the due date (`reminder:-3`) starts on that
   step's day instead; before the due date only such reminders are taken.
4. An overdue invoice with `max_attempts` failed attempts is exhausted (marked uncollectible).
5. A reminder on or before the due date is skipped when its day is not after the day the
   invoice was issued (the invoice's own email is the notice then), and for an invoice without
   a due date (there is no "before" to remind in).
6. Of the other steps whose day has come and that were not taken yet, only the latest is taken;
   the earlier ones are skipped (a pass that runs late sends one reminder, not three). A retry
   becomes a reminder when there is nothing to retry or the retries are used up
   (`max_attempts - 1`: the first attempt is the customer's own).
7. An `uncollectible` step, or the last step of a schedule without one, exhausts the dunning.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

from ledger.dunning.policy import RETRY, UNCOLLECTIBLE, DunningPolicy
from ledger.invoices import OPEN

START = "start"
SKIP = "skip"
REMIND = "remind"
RETRY_PAYMENT = "retry"
EXHAUST = "exhaust"
STOP = "stop"

SCHEDULED = "scheduled"
NOTHING_TO_RETRY = "nothing to retry"
RETRIES_USED_UP = "retries used up"
SCHEDULE_DONE = "schedule"
MAX_ATTEMPTS = "max-attempts"
ISSUED_LATER = "not after the day the invoice was issued"
NO_DUE_DATE = "the invoice has no due date"


@dataclass(frozen=True)
class InvoiceFacts:
    """What dunning needs to know about an invoice."""

    status: str
    anchor: date | None  # the day the schedule counts from; None: nothing to dun
    failed_attempts: int
    can_retry: bool  # a failed provider payment exists that could be charged again
    has_due_date: bool = True  # False: the anchor is the first failed attempt's day
    issued_on: date | None = None  # the UTC day the invoice was issued, when known


@dataclass(frozen=True)
class Progress:
    """What a dunning has done so far."""

    anchor: date
    policy: DunningPolicy  # as it was when the dunning started
    settled: int  # schedule steps taken or skipped, always the first ones
    retries: int  # retries requested
    finished: bool


@dataclass(frozen=True)
class Planned:
    kind: str  # START, SKIP, REMIND, RETRY_PAYMENT, EXHAUST or STOP
    step: int | None = None  # the index of the schedule step, when it is one
    reason: str = ""

    def instead_remind(self, reason: str) -> Planned:
        """A retry the provider cannot make: the customer is reminded instead."""
        return replace(self, kind=REMIND, reason=reason)

    def instead_skip(self, reason: str) -> Planned:
        return replace(self, kind=SKIP, reason=reason)


def plan(*, invoice: InvoiceFacts, progress: Progress | None, policy: DunningPolicy, now: datetime) -> list[Planned]:
    """The next steps for the invoice at `now` (timezone-aware; days are counted in UTC)."""
    if now.tzinfo is None:
        raise ValueError("plan needs a timezone-aware moment")
    if progress is not None and progress.finished:
        return []
    if invoice.status != OPEN:
        return [Planned(STOP, reason=f"invoice {invoice.status}")] if progress is not None else []
    anchor = progress.anchor if progress is not None else invoice.anchor
    if anchor is None:
        return []
    if progress is not None:
        policy = progress.policy
    today = now.astimezone(UTC).date()
    first_day = policy.first_day if invoice.has_due_date else 1
    if today < anchor + timedelta(days=first_day):
        return []
    planned = [] if progress is not None else [Planned(START)]
    if today > anchor and invoice.failed_attempts >= policy.max_attempts:
        return [*planned, Planned(EXHAUST, reason=MAX_ATTEMPTS)]
    settled = progress.settled if progress is not None else 0
    retries = progress.retries if progress is not None else 0
    due = [i for i in range(settled, len(policy.steps)) if anchor + timedelta(days=policy.steps[i].days) <= today]
    unsent = _early_reminders_not_sent(due, invoice, policy, anchor)
    planned += [Planned(SKIP, i, reason) for i, reason in unsent]
    due = due[len(unsent) :]
    if not due:
        return planned
    taken = due[-1]
    planned += [Planned(SKIP, i, f"superseded by {policy.steps[taken]}") for i in due[:-1]]
    action = policy.steps[taken].action
    if action == UNCOLLECTIBLE:
        return [*planned, Planned(EXHAUST, taken, SCHEDULE_DONE)]
    if action == RETRY and retries >= policy.max_retries:
        planned.append(Planned(REMIND, taken, RETRIES_USED_UP))
    elif action == RETRY and not invoice.can_retry:
        planned.append(Planned(REMIND, taken, NOTHING_TO_RETRY))
    elif action == RETRY:
        planned.append(Planned(RETRY_PAYMENT, taken, SCHEDULED))
    else:
        planned.append(Planned(REMIND, taken, SCHEDULED))
    if taken == len(policy.steps) - 1:
        planned.append(Planned(EXHAUST, reason=SCHEDULE_DONE))
    return planned


def _early_reminders_not_sent(
    due: list[int], invoice: InvoiceFacts, policy: DunningPolicy, anchor: date
) -> list[tuple[int, str]]:
    """The due steps, from the first, that are reminders on or before the due date and must not
    be sent (rule 5), each with why. Steps are in the order of their days, so they lead `due`."""
    unsent: list[tuple[int, str]] = []
    for i in due:
        days = policy.steps[i].days
        if days >= 1:
            break
        if not invoice.has_due_date:
            unsent.append((i, NO_DUE_DATE))
        elif invoice.issued_on is not None and anchor + timedelta(days=days) <= invoice.issued_on:
            unsent.append((i, ISSUED_LATER))
        else:
            break
    return unsent


def anchor_of(due_date: str | None, failed_attempt_moments: list[str]) -> date | None:
    """The due date; without one, the UTC day of the first failed attempt; else None."""
    if due_date is not None:
        return date.fromisoformat(due_date)
    if failed_attempt_moments:
        return datetime.fromisoformat(failed_attempt_moments[0]).astimezone(UTC).date()
    return None
