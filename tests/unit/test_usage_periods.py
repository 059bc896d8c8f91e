"""Billing periods: monthly, anchored, clamped, midnight to midnight local time across DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ledger.errors import InvalidDateError, InvalidTimezoneError
from ledger.usage.periods import local_dates, next_period, period_containing, require_anchor_day, require_timezone


def test_a_month_with_a_dst_change_runs_midnight_to_midnight_local_time() -> None:
    period = period_containing(datetime(2026, 3, 15, tzinfo=UTC), "America/New_York", 1)
    assert period.start == datetime(2026, 3, 1, 5, tzinfo=UTC)  # EST
    assert period.end == datetime(2026, 4, 1, 4, tzinfo=UTC)  # EDT
    assert period.end - period.start == timedelta(days=31) - timedelta(hours=1)
    november = period_containing(datetime(2026, 11, 15, tzinfo=UTC), "Europe/Paris", 1)
    assert november.end - november.start == timedelta(days=30)
    october = period_containing(datetime(2026, 10, 15, tzinfo=UTC), "Europe/Paris", 1)
    assert october.end - october.start == timedelta(days=31, hours=1)


def test_an_instant_belongs_to_the_period_of_its_local_date() -> None:
    # 03:30 UTC on March 1st is still February 28th in New York.
    period = period_containing(datetime(2026, 3, 1, 3, 30, tzinfo=UTC), "America/New_York", 1)
    assert local_dates(period, "America/New_York") == (date(2026, 2, 1), date(2026, 3, 1))


def test_the_anchor_day_is_clamped_to_the_months_length() -> None:
    period = period_containing(datetime(2026, 1, 31, 12, tzinfo=UTC), "UTC", 31)
    dates = []
    for _ in range(4):
        dates.append(local_dates(period, "UTC")[0])
        period = next_period(period, "UTC", 31)
    assert dates == [date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31), date(2026, 4, 30)]


def test_a_midnight_that_dst_skips_starts_the_period_at_the_transition() -> None:
    # Santiago springs forward at midnight: 2026-09-06 00:00 does not exist, the day starts at 01:00.
    period = period_containing(datetime(2026, 9, 10, tzinfo=UTC), "America/Santiago", 6)
    local = period.start.astimezone(ZoneInfo("America/Santiago"))
    assert (local.date(), local.hour) == (date(2026, 9, 6), 1)
    assert (period.start - timedelta(seconds=1)).astimezone(ZoneInfo("America/Santiago")).date() == date(2026, 9, 5)


def test_a_skipped_date_starts_the_period_on_the_next_day() -> None:
    # Samoa skipped 2011-12-30 altogether.
    period = period_containing(datetime(2012, 1, 5, tzinfo=UTC), "Pacific/Apia", 30)
    assert period.start.astimezone(ZoneInfo("Pacific/Apia")).date() == date(2011, 12, 31)


@pytest.mark.parametrize("name", ["", "Mars/Olympus", "../etc/passwd", "/etc/localtime", 3])
def test_an_unknown_timezone_is_refused(name: object) -> None:
    with pytest.raises(InvalidTimezoneError):
        require_timezone(name)


@pytest.mark.parametrize("day", [0, 32, True, "1"])
def test_an_anchor_day_is_a_day_of_the_month(day: object) -> None:
    with pytest.raises(InvalidDateError):
        require_anchor_day(day)
