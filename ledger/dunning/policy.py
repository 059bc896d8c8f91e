"""The dunning policy: what happens to an unpaid invoice, and on which day after it fell due.

A schedule is written as `action:days` steps, comma-separated, in the order they are taken:
`reminder:1,retry:3,reminder:7,retry:14,reminder:21,uncollectible:30`. `days` counts whole
days after the invoice's due date (UTC); a reminder may also come before it (`reminder:-3`,
three days before) or on it (`reminder:0`). Actions:

- `reminder`: ask the customer to pay (the mail triggers email each one);
- `retry`: ask the payment provider to charge the failed payment again;
- `uncollectible`: give up and mark the invoice uncollectible. Only as the last step; a
  schedule without it gives up as soon as its last step is taken, so the last step of any
  schedule comes after the due date.

`max_attempts` bounds the failed payment attempts: once an invoice has that many, it is marked
uncollectible, and no more than `max_attempts - 1` retries are ever requested (the first
attempt is the customer's own).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.errors import InvalidDunningPolicyError

REMINDER = "reminder"
RETRY = "retry"
UNCOLLECTIBLE = "uncollectible"
ACTIONS = (REMINDER, RETRY, UNCOLLECTIBLE)

# Like Stripe Billing's defaults: a reminder the day after the due date, retries a few days
# apart, then give up a month after the due date; four attempts in all.
DEFAULT_SCHEDULE = "reminder:1,retry:3,reminder:7,retry:14,reminder:21,uncollectible:30"
DEFAULT_MAX_ATTEMPTS = 4

MAX_STEPS = 50
MAX_DAYS = 3_650
MAX_ATTEMPTS_LIMIT = 100


@dataclass(frozen=True)
class Step:
    action: str
    days: int

    def as_state(self) -> dict[str, Any]:
        return {"action": self.action, "days": self.days}

    def __str__(self) -> str:
        return f"{self.action}:{self.days}"


@dataclass(frozen=True)
class DunningPolicy:
    steps: tuple[Step, ...]
    max_attempts: int

    def __post_init__(self) -> None:
        _require_steps(self.steps)
        _require_max_attempts(self.max_attempts)

    @classmethod
    def parse(cls, schedule: object = DEFAULT_SCHEDULE, max_attempts: object = DEFAULT_MAX_ATTEMPTS) -> DunningPolicy:
        """The policy from its written form; InvalidDunningPolicyError says what is wrong."""
        return cls(parse_schedule(schedule), parse_max_attempts(max_attempts))

    @classmethod
    def from_state(cls, schedule: list[dict[str, Any]], max_attempts: int) -> DunningPolicy:
        return cls(tuple(Step(str(s["action"]), int(s["days"])) for s in schedule), max_attempts)

    @property
    def schedule(self) -> str:
        return ",".join(str(step) for step in self.steps)

    @property
    def max_retries(self) -> int:
        return self.max_attempts - 1

    @property
    def span_days(self) -> int:
        """Days after the due date at which the last step falls."""
        return self.steps[-1].days

    @property
    def first_day(self) -> int:
        """The day, counted from the due date, on which a dunning may start: its first step's when
        that is a reminder on or before the due date (0 or less), else the day after the due date."""
        return min(self.steps[0].days, 1)

    def schedule_state(self) -> list[dict[str, Any]]:
        return [step.as_state() for step in self.steps]


def parse_schedule(text: object) -> tuple[Step, ...]:
    """`reminder:1,retry:3,...` as steps, checked."""
    if not isinstance(text, str):
        raise InvalidDunningPolicyError("the dunning schedule must be text like 'reminder:1,retry:3'")
    steps = tuple(_step(part.strip()) for part in text.split(","))
    _require_steps(steps)
    return steps


def parse_max_attempts(value: object) -> int:
    """A whole number from 1 to MAX_ATTEMPTS_LIMIT, as an int or its decimal text."""
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidDunningPolicyError(f"max attempts must be a whole number, got {value!r}")
    _require_max_attempts(value)
    return value


def _step(text: str) -> Step:
    action, sep, days = text.partition(":")
    if not sep or action not in ACTIONS:
        raise InvalidDunningPolicyError(
            f"dunning step {text!r} is not action:days with action one of {', '.join(ACTIONS)}"
        )
    digits = days.removeprefix("-")
    if not digits.isascii() or not digits.isdigit():
        raise InvalidDunningPolicyError(
            f"dunning step {text!r}: days must be a whole number of days, e.g. retry:3 or reminder:-3"
        )
    return Step(action, int(days))


def _require_steps(steps: tuple[Step, ...]) -> None:
    if not steps:
        raise InvalidDunningPolicyError("the dunning schedule needs at least one step")
    if len(steps) > MAX_STEPS:
        raise InvalidDunningPolicyError(f"the dunning schedule has {len(steps)} steps; at most {MAX_STEPS}")
    previous = -MAX_DAYS
    for index, step in enumerate(steps):
        if step.action not in ACTIONS:
            raise InvalidDunningPolicyError(f"unknown dunning action {step.action!r}")
        _require_days(step)
        if step.days < previous:
            raise InvalidDunningPolicyError(
                f"dunning step {step} comes before day {previous}: list the steps in the order of their days"
            )
        if step.action == UNCOLLECTIBLE and index != len(steps) - 1:
            raise InvalidDunningPolicyError(f"dunning step {step}: uncollectible can only be the last step")
        previous = step.days
    if steps[-1].days < 1:
        # The last step gives up on the invoice (plan rule 7): never before it is even due.
        raise InvalidDunningPolicyError(
            f"dunning step {steps[-1]} is the last one but comes on or before the due date: "
            "the last step gives up on the invoice, so end with a step after it, e.g. uncollectible:30"
        )


def _require_days(step: Step) -> None:
    if isinstance(step.days, bool) or not isinstance(step.days, int):
        raise InvalidDunningPolicyError(f"dunning step {step}: days must be a whole number")
    if step.action == REMINDER and not -MAX_DAYS <= step.days <= MAX_DAYS:
        raise InvalidDunningPolicyError(
            f"dunning step {step}: a reminder's days must be between -{MAX_DAYS} and {MAX_DAYS}"
        )
    if step.action != REMINDER and step.days < 1:
        raise InvalidDunningPolicyError(
            f"dunning step {step}: only reminders may come on or before the due date; "
            f"{step.action} days must be between 1 and {MAX_DAYS}"
        )
    if step.days > MAX_DAYS:
        raise InvalidDunningPolicyError(f"dunning step {step}: days must be between 1 and {MAX_DAYS}")


def _require_max_attempts(value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ATTEMPTS_LIMIT:
        raise InvalidDunningPolicyError(f"max attempts must be between 1 and {MAX_ATTEMPTS_LIMIT}, got {value!r}")
