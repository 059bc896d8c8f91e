"""The dunning policy is read from its written form, and refused at start when it cannot work."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.settings import Settings
from ledger.dunning.policy import DEFAULT_MAX_ATTEMPTS, DEFAULT_SCHEDULE, DunningPolicy, Step
from ledger.errors import InvalidDunningPolicyError, InvalidInputError


def test_a_schedule_reads_as_steps_in_order() -> None:
    policy = DunningPolicy.parse("reminder:1, retry:3,reminder:7,retry:14", "5")
    assert policy.steps == (Step("reminder", 1), Step("retry", 3), Step("reminder", 7), Step("retry", 14))
    assert policy.max_attempts == 5
    assert policy.max_retries == 4
    assert policy.span_days == 14
    assert policy.schedule == "reminder:1,retry:3,reminder:7,retry:14"


def test_the_defaults_are_like_stripe_billing_and_end_with_uncollectible() -> None:
    policy = DunningPolicy.parse()
    assert policy.schedule == DEFAULT_SCHEDULE
    assert policy.max_attempts == DEFAULT_MAX_ATTEMPTS == 4
    assert policy.steps[-1] == Step("uncollectible", 30)
    assert [s.action for s in policy.steps].count("retry") == 2


def test_reminders_may_come_before_and_on_the_due_date() -> None:
    policy = DunningPolicy.parse("reminder:-7,reminder:-1,reminder:0,retry:3,uncollectible:30", 4)
    assert policy.steps[:3] == (Step("reminder", -7), Step("reminder", -1), Step("reminder", 0))
    assert policy.schedule == "reminder:-7,reminder:-1,reminder:0,retry:3,uncollectible:30"
    assert policy.first_day == -7
    assert policy.span_days == 30
    assert DunningPolicy.parse().first_day == 1  # the default starts the day after the due date
    assert DunningPolicy.parse("reminder:0,uncollectible:9").first_day == 0


def test_a_policy_survives_its_stored_form() -> None:
    policy = DunningPolicy.parse("retry:2,retry:2,uncollectible:9", 3)
    assert DunningPolicy.from_state(policy.schedule_state(), policy.max_attempts) == policy


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("", "is not action:days"),
        ("reminder", "is not action:days"),
        ("email:3", "is not action:days"),
        ("reminder:x", "whole number of days"),
        ("reminder:--1", "whole number of days"),
        ("reminder:1.5", "whole number of days"),
        ("retry:0", "only reminders may come on or before the due date"),
        ("reminder:-3,retry:-1,uncollectible:30", "only reminders may come on or before the due date"),
        ("reminder:-3650,uncollectible:-1", "only reminders may come on or before the due date"),
        ("reminder:-4000,retry:3", "between -3650 and 3650"),
        ("reminder:-3,reminder:0", "is the last one but comes on or before the due date"),
        ("reminder:-1", "is the last one but comes on or before the due date"),
        ("reminder:1,reminder:-3,retry:5", "comes before day 1"),
        ("retry:4000", "between 1 and 3650"),
        ("reminder:7,retry:3", "comes before day 7"),
        ("uncollectible:10,reminder:12", "only be the last step"),
        ("reminder:1,,retry:3", "is not action:days"),
        (",".join(["reminder:1"] * 51), "at most 50"),
    ],
)
def test_a_schedule_that_cannot_be_followed_is_refused(schedule: str, message: str) -> None:
    with pytest.raises(InvalidDunningPolicyError, match=message) as raised:
        DunningPolicy.parse(schedule)
    assert isinstance(raised.value, InvalidInputError)


@pytest.mark.parametrize("attempts", [0, -1, 101, "0", "x", "2.5", True, None, 3.0])
def test_max_attempts_must_be_a_whole_number_from_1_to_100(attempts: object) -> None:
    with pytest.raises(InvalidDunningPolicyError, match="max attempts"):
        DunningPolicy.parse(DEFAULT_SCHEDULE, attempts)


def test_settings_read_the_policy_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_environment(
        {"LEDGER_DUNNING_SCHEDULE": "retry:2,uncollectible:5", "LEDGER_DUNNING_MAX_ATTEMPTS": "2"},
        dotenv_path=tmp_path / "missing.env",
    )
    assert settings.dunning == DunningPolicy((Step("retry", 2), Step("uncollectible", 5)), 2)
    assert Settings.from_environment({}, dotenv_path=None).dunning == DunningPolicy.parse()


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"LEDGER_DUNNING_SCHEDULE": "retry:soon"}, "LEDGER_DUNNING_SCHEDULE"),
        ({"LEDGER_DUNNING_MAX_ATTEMPTS": "zero"}, "LEDGER_DUNNING_MAX_ATTEMPTS"),
    ],
)
def test_bad_settings_are_refused_at_start_naming_the_variable(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(InvalidDunningPolicyError, match=f"^{variable}: "):
        Settings.from_environment(environ, dotenv_path=None)
