"""Usage prices: each model, the breakdown, rounding once per part, and the validation of terms."""

from __future__ import annotations

import decimal
import threading
from decimal import Decimal

import pytest

from ledger.errors import InvalidAmountError, InvalidPriceError, InvalidQuantityError
from ledger.usage.meters import BatchStats
from ledger.usage.pricing import price as priced
from ledger.usage.pricing import require_terms

GRADUATED = require_terms(
    "graduated",
    {
        "tiers": [
            {"up_to": 1000, "unit_amount": 0},
            {"up_to": "10000", "unit_amount": "0.25"},
            {"up_to": None, "unit_amount": "0.1", "flat_amount": 500},
        ]
    },
)
VOLUME = require_terms(
    "volume",
    {
        "tiers": [
            {"up_to": 100, "unit_amount": 10},
            {"up_to": 1000, "unit_amount": 8},
            {"up_to": None, "unit_amount": 5},
        ]
    },
)


def test_per_unit_with_a_quarter_cent_rounds_the_product_once_half_up() -> None:
    terms = require_terms("per_unit", {"unit_amount": "0.25"})
    assert priced(terms, Decimal(10)).total == 3  # 2.5 -> 3
    assert priced(terms, Decimal(9)).total == 2  # 2.25 -> 2
    assert priced(terms, Decimal(0)).parts == ()


def test_a_partial_package_is_billed_as_a_whole_one() -> None:
    terms = require_terms("package", {"package_size": 1000, "package_amount": 500})
    breakdown = priced(terms, Decimal(2001))
    assert breakdown.total == 1500
    assert breakdown.parts[0].packages == 3
    assert priced(terms, Decimal(2000)).total == 1000
    assert priced(terms, Decimal("0.5")).total == 500


def test_graduated_prices_each_tier_on_its_own_units_with_its_flat_fee_once_reached() -> None:
    breakdown = priced(GRADUATED, Decimal(12345))
    assert [(p.tier, p.units, p.amount) for p in breakdown.parts] == [
        (1, Decimal(1000), 0),
        (2, Decimal(9000), 2250),
        (3, Decimal(2345), 735),  # 234.5 -> 235, + 500 flat
    ]
    assert breakdown.total == 2985
    assert [p.tier for p in priced(GRADUATED, Decimal(1000)).parts] == [1]  # up_to is inclusive
    assert priced(GRADUATED, Decimal(10001)).parts[-1].amount == 500  # 0.1 -> 0, and the flat fee


def test_volume_prices_every_unit_at_the_tier_the_quantity_falls_in() -> None:
    assert priced(VOLUME, Decimal(100)).total == 1000
    assert priced(VOLUME, Decimal(101)).total == 808  # a volume discount: cheaper than 100 units
    only = priced(VOLUME, Decimal(5000)).parts
    assert [(p.tier, p.units, p.amount) for p in only] == [(3, Decimal(5000), 25000)]


def test_the_breakdown_is_plain_json_with_canonical_decimals() -> None:
    assert priced(GRADUATED, Decimal("1500.50")).as_json()["parts"][1] == {
        "tier": 2,
        "units": "500.5",
        "unit_amount": "0.25",
        "flat_amount": 0,
        "amount": 125,  # 125.125
        "packages": None,
        "package_size": None,
    }


@pytest.mark.parametrize(
    ("model", "terms", "field"),
    [
        ("per_unit", {"unit_amount": 1.5}, "unit_amount"),
        ("per_unit", {"unit_amount": "-1"}, "unit_amount"),
        ("per_unit", {"unit_amount": "0.0000000000001"}, "unit_amount"),
        ("per_unit", {"unit_amount": 1, "tiers": []}, "tiers"),
        ("package", {"package_size": 0, "package_amount": 5}, "package_size"),
        ("package", {"package_size": 10, "package_amount": "5"}, "package_amount"),
        ("graduated", {"tiers": []}, "tiers"),
        ("graduated", {"tiers": [{"up_to": 10, "unit_amount": 1}]}, "tiers[0].up_to"),
        (
            "graduated",
            {"tiers": [{"up_to": None, "unit_amount": 1}, {"up_to": None, "unit_amount": 1}]},
            "tiers[0].up_to",
        ),
        ("volume", {"tiers": [{"up_to": 10}, {"up_to": 5}, {"up_to": None}]}, "tiers[1].up_to"),
        ("volume", {"tiers": [{"up_to": None, "colour": "red"}]}, "tiers[0].colour"),
        ("stairs", {}, "model"),
    ],
)
def test_malformed_terms_are_refused_naming_the_field(model: str, terms: dict[str, object], field: str) -> None:
    with pytest.raises((InvalidPriceError, InvalidAmountError)) as refused:
        require_terms(model, terms)
    assert refused.value.field == field


def test_a_negative_quantity_cannot_be_priced() -> None:
    with pytest.raises(InvalidQuantityError):
        priced(GRADUATED, Decimal(-1))


def test_usage_is_priced_exactly_whatever_the_threads_decimal_precision() -> None:
    terms = require_terms("per_unit", {"unit_amount": "987.654321"})
    totals: list[int] = []

    def run() -> None:
        decimal.getcontext().prec = 12
        totals.append(priced(terms, Decimal("987654321.123456789")).total)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    # 987654321.123456789 x 987.654321 = 975461057911.903672112635269: 27 significant digits
    assert totals == [975_461_057_912]


def test_a_package_count_is_exact_when_the_size_does_not_divide_the_quantity() -> None:
    terms = require_terms("package", {"package_size": 3, "package_amount": 100})
    assert priced(terms, Decimal(1)).total == 100
    assert priced(terms, Decimal("3.000000000001")).total == 200
    assert priced(terms, Decimal(6)).total == 200


def test_a_batch_sums_usage_exactly_whatever_the_threads_decimal_precision() -> None:
    # At precision 12, 999999999999.123456 + 1.000001 was kept as 1000000000000: digits lost.
    sums: list[str] = []

    def run() -> None:
        decimal.getcontext().prec = 12
        stats = BatchStats()
        stats.add("2026-01", "bytes", Decimal("999999999999.123456"), "2026-01-02T00:00:00Z")
        stats.add("2026-01", "bytes", Decimal("1.000001"), "2026-01-03T00:00:00Z")
        sums.append(stats.as_json()["2026-01"]["bytes"]["sum"])

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert sums == ["1000000000000.123457"]
