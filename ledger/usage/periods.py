"""Billing periods: half-open [start, end) intervals of time, monthly in the customer's timezone.

A period starts at the first instant of its anchor date in the customer's IANA timezone (local
midnight, or the first instant after a midnight that a daylight-saving change skips) and ends
where the next one starts. The anchor day is clamped to the month's length: anchor 31 gives
Jan 31, Feb 28 (29), Mar 31, Apr 30. So a month that contains a DST change is still
midnight-to-midnight local time, 743 or 745 hours long, and consecutive periods tile time: no
gap, no overlap, every instant in exactly one period. Instants are compared in UTC.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ledger.errors import InvalidDateError, InvalidTimezoneError

MONTHLY = "monthly"
TIMEZONE_LIMIT = 64


@dataclass(frozen=True, slots=True)
class Period:
    start: datetime  # aware, UTC
    end: datetime
    key: str = field(init=False, compare=False)  # its stable name in events: the start as moment_text

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", moment_text(self.start))

    def contains(self, instant: datetime) -> bool:
        return self.start <= instant < self.end


def moment_text(instant: datetime) -> str:
    """A fixed-width UTC ISO 8601 text (2026-01-01T05:00:00.000000Z): sorts as the instants do."""
    return instant.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def parse_moment(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@cache
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def require_timezone(value: object, *, field: str = "timezone") -> str:
    """An IANA timezone name that this system's tz database knows ("Europe/Paris", "UTC")."""
    if not isinstance(value, str) or not value or len(value) > TIMEZONE_LIMIT or value.startswith(("/", ".")):
        raise InvalidTimezoneError(f"{field} must be an IANA timezone name such as 'Europe/Paris'", field=field)
    try:
        zone(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidTimezoneError(f"{field} {value!r} is not a known IANA timezone", field=field) from None
    return value


def require_anchor_day(value: object, *, field: str = "billing_anchor_day") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 31:
        raise InvalidDateError(f"{field} must be a day of the month from 1 to 31, got {value!r}", field=field)
    return value


def anchor_date(year: int, month: int, anchor_day: int) -> date:
    return date(year, month, min(anchor_day, calendar.monthrange(year, month)[1]))


def _next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def _previous_month(year: int, month: int) -> tuple[int, int]:
    return (year - 1, 12) if month == 1 else (year, month - 1)


def start_of_day(day: date, timezone: str) -> datetime:
    """The first instant whose local date is `day` or later, in UTC."""
    tz = zone(timezone)
    candidate = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    if _local_date(candidate, tz) >= day > _local_date(candidate - timedelta(seconds=1), tz):
        return candidate
    # Midnight does not exist that day (a DST change at midnight, or a skipped date): the day
    # begins at the transition. Local dates only move forward around a gap, so search for it.
    low = int((candidate - timedelta(hours=48)).timestamp())
    high = int((candidate + timedelta(hours=48)).timestamp())
    while low < high:
        middle = (low + high) // 2
        if _local_date(datetime.fromtimestamp(middle, UTC), tz) >= day:
            high = middle
        else:
            low = middle + 1
    return datetime.fromtimestamp(low, UTC)


def _local_date(instant: datetime, tz: ZoneInfo) -> date:
    return instant.astimezone(tz).date()


def period_starting(year: int, month: int, timezone: str, anchor_day: int) -> Period:
    """The period whose anchor date falls in `year`-`month`."""
    start = start_of_day(anchor_date(year, month, anchor_day), timezone)
    end = start_of_day(anchor_date(*_next_month(year, month), anchor_day), timezone)
    return Period(start, end)


def period_containing(instant: datetime, timezone: str, anchor_day: int) -> Period:
    """The one period [start, end) that holds `instant` (aware)."""
    local = instant.astimezone(zone(timezone)).date()
    year, month = local.year, local.month
    if local < anchor_date(year, month, anchor_day):
        year, month = _previous_month(year, month)
    period = period_starting(year, month, timezone, anchor_day)
    # The local date is a guess near a repeated or skipped hour: settle it on the instants.
    while instant < period.start:
        year, month = _previous_month(year, month)
        period = period_starting(year, month, timezone, anchor_day)
    while instant >= period.end:
        year, month = _next_month(year, month)
        period = period_starting(year, month, timezone, anchor_day)
    return period


def next_period(period: Period, timezone: str, anchor_day: int) -> Period:
    return period_containing(period.end, timezone, anchor_day)


def local_dates(period: Period, timezone: str) -> tuple[date, date]:
    """The period as local dates [first day, day after the last), for people to read."""
    tz = zone(timezone)
    return period.start.astimezone(tz).date(), period.end.astimezone(tz).date()
