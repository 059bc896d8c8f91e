"""Properties of usage pricing and billing periods.

Pricing, for random tiers, unit amounts (decimal strings of minor units) and quantities:
- the total is the sum of the parts, and each part is its units x unit amount rounded once,
  half-up, plus its flat fee (checked against exact fractions);
- graduated: the parts' units add up to the quantity, and the total never decreases as the
  quantity grows;
- volume: one part, holding the whole quantity; the total is non-decreasing within a tier (it
  may drop when the quantity crosses into a cheaper tier: that is what a volume discount is),
  and never exceeds the price of the same units at the dearest tier's rates;
- package: packages x package amount, with packages the quantity over the size, rounded up.

Periods, for several timezones with DST changes (at 02:00, at midnight, of 30 minutes, a
skipped date) and every anchor day:
- consecutive periods tile time: each ends where the next starts, with no gap or overlap;
- every instant lies in exactly the period `period_containing` returns;
- each period starts at the first instant of its anchor date (clamped) in local time:
  local midnight, or the transition where midnight does not exist.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from ledger.usage.periods import next_period, period_containing
from ledger.usage.pricing import price, require_terms
from tests.property.oracle import half_up

ZONES = [
    "UTC",
    "America/New_York",
    "Europe/Paris",
    "Australia/Sydney",
    "Australia/Lord_Howe",  # 30-minute DST
    "America/Santiago",  # DST at midnight
    "America/Havana",  # DST at midnight
    "Asia/Beirut",  # DST at midnight
    "Pacific/Apia",  # skipped 2011-12-30
    "Asia/Kolkata",  # no DST, +05:30
]

unit_amounts = st.one_of(
    st.integers(0, 10_000).map(str),
    st.decimals(min_value=0, max_value=1000, places=4, allow_nan=False, allow_infinity=False).map(str),
)
quantities = st.decimals(min_value=0, max_value=10**7, places=3, allow_nan=False, allow_infinity=False)


@st.composite
def tiers(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(1, 6))
    bounds = sorted(draw(st.sets(st.integers(1, 10**6), min_size=count - 1, max_size=count - 1)))
    return [
        {
            "up_to": bound,
            "unit_amount": draw(unit_amounts),
            "flat_amount": draw(st.sampled_from([0, 0, 100, 2500])),
        }
        for bound in [*bounds, None]
    ]


def _exact_part(units: Decimal, unit: Decimal, flat: int) -> int:
    return half_up(Fraction(units) * Fraction(unit)) + flat


@given(tiers(), quantities, st.sampled_from(["graduated", "volume"]))
def test_the_total_is_the_sum_of_the_parts_each_rounded_once(
    given_tiers: list[dict[str, Any]], quantity: Decimal, model: str
) -> None:
    breakdown = price(require_terms(model, {"tiers": given_tiers}), quantity)
    assert breakdown.total == sum(part.amount for part in breakdown.parts)
    for part in breakdown.parts:
        assert part.amount == _exact_part(part.units, part.unit_amount, part.flat_amount)


@given(tiers(), quantities, quantities)
def test_graduated_is_monotonic_and_its_parts_add_up_to_the_quantity(
    given_tiers: list[dict[str, Any]], first: Decimal, second: Decimal
) -> None:
    terms = require_terms("graduated", {"tiers": given_tiers})
    low, high = sorted([first, second])
    assert price(terms, low).total <= price(terms, high).total
    assert sum((part.units for part in price(terms, high).parts), Decimal(0)) == high


@given(tiers(), quantities, quantities)
def test_volume_prices_the_whole_quantity_at_one_tier_monotonic_within_it(
    given_tiers: list[dict[str, Any]], first: Decimal, second: Decimal
) -> None:
    terms = require_terms("volume", {"tiers": given_tiers})
    low, high = sorted([first, second])
    low_parts, high_parts = price(terms, low).parts, price(terms, high).parts
    assert len(high_parts) == (1 if high > 0 else 0)
    if high > 0:
        assert high_parts[0].units == high
    if low > 0 and low_parts[0].tier == high_parts[0].tier:
        assert price(terms, low).total <= price(terms, high).total
    dearest = max(Decimal(t["unit_amount"]) for t in terms["tiers"])
    flats = max(t["flat_amount"] for t in terms["tiers"])
    assert price(terms, high).total <= _exact_part(high, dearest, flats)


@given(st.integers(1, 10**6), st.integers(0, 10**6), quantities)
def test_package_counts_whole_packages_rounded_up(size: int, amount: int, quantity: Decimal) -> None:
    breakdown = price(require_terms("package", {"package_size": size, "package_amount": amount}), quantity)
    packages = -(-Fraction(quantity) // size)
    assert breakdown.total == packages * amount


# ------------------------------------------------------------------------------ periods

instants = st.datetimes(min_value=datetime(2005, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC))


@given(st.sampled_from(ZONES), st.integers(1, 31), instants)
def test_periods_tile_time_and_start_on_the_local_anchor_date(zone: str, anchor: int, instant: datetime) -> None:
    tz = ZoneInfo(zone)
    period = period_containing(instant, zone, anchor)
    assert period.start <= instant < period.end
    for _ in range(3):
        following = next_period(period, zone, anchor)
        assert following.start == period.end  # no gap, no overlap
        assert following.start > period.start
        local = period.start.astimezone(tz)
        before = (period.start - timedelta(microseconds=1)).astimezone(tz)
        due = min(anchor, calendar.monthrange(local.year, local.month)[1])
        assert before.date() < local.date()  # the first instant of its local date
        if local.day != due:  # only where the anchor date itself was skipped (Apia, 2011-12-30)
            assert local.date() - timedelta(days=1) > before.date()
        elif local.hour or local.minute:  # only where midnight itself does not exist
            assert (period.start - timedelta(hours=1)).astimezone(tz).date() < local.date()
        period = following


@given(st.sampled_from(ZONES), st.integers(1, 31), instants, st.integers(-40 * 86400, 40 * 86400))
def test_every_instant_is_in_exactly_one_period(zone: str, anchor: int, instant: datetime, offset: int) -> None:
    period = period_containing(instant, zone, anchor)
    other = instant + timedelta(seconds=offset)
    neighbour = period_containing(other, zone, anchor)
    assert (neighbour == period) == period.contains(other)
    if neighbour != period:
        assert neighbour.end <= period.start or neighbour.start >= period.end
