"""Rounding and line pricing: quantity x unit amount, then tax, each rounded once, half-up."""

from __future__ import annotations

import decimal
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import TypeVar

import pytest

from ledger.errors import InvalidAmountError, InvalidQuantityError, InvalidTaxRateError, InvalidTextError
from ledger.lines import Line, require_quantity, require_tax_rate
from ledger.money import MAX_MINOR_UNITS
from ledger.rounding import round_half_up
from ledger.usage.meters import require_usage_quantity
from ledger.validation import parse_decimal

T = TypeVar("T")


def priced(
    quantity: object = 1,
    unit_amount: object = 1000,
    tax_rate: object = None,
    description: object = "Consulting",
) -> Line:
    return Line.price(
        line_id="line_1",
        description=description,
        quantity=quantity,
        unit_amount=unit_amount,
        tax_rate=tax_rate,
    )


# ------------------------------------------------------------------------------ rounding


@pytest.mark.parametrize(
    ("value", "rounded"),
    [
        ("0.5", 1),
        ("1.5", 2),
        ("2.5", 3),
        ("-0.5", -1),
        ("-2.5", -3),
        ("2.4999", 2),
        ("-2.4999", -2),
        ("2.5001", 3),
        ("0.4", 0),
        ("-0.4", 0),
        ("3", 3),
        ("999999999999999.5", 1_000_000_000_000_000),
    ],
)
def test_round_half_up_rounds_halves_away_from_zero(value: str, rounded: int) -> None:
    result = round_half_up(Decimal(value))
    assert result == rounded
    assert type(result) is int


# ------------------------------------------------------------------------------ pricing


def test_a_line_amount_is_quantity_times_unit_amount_rounded_half_up_once() -> None:
    line = priced(quantity="2.5", unit_amount=333)  # 832.5
    assert line.amount == 833
    assert line.tax == 0


def test_a_line_tax_is_its_amount_times_the_rate_rounded_half_up_once() -> None:
    line = priced(quantity="2.5", unit_amount=333, tax_rate="10")  # 833 x 10% = 83.3
    assert (line.amount, line.tax) == (833, 83)


def test_tax_is_computed_on_the_rounded_line_amount() -> None:
    # 0.5 x 3 = 1.5 -> 2; 25% of 2 = 0.5 -> 1 (25% of the unrounded 1.5 would round to 0).
    line = priced(quantity="0.5", unit_amount=3, tax_rate="25")
    assert (line.amount, line.tax) == (2, 1)


def test_a_fractional_tax_rate_is_applied_exactly() -> None:
    line = priced(quantity=3, unit_amount=1999, tax_rate="8.875")  # 5997 x 8.875% = 532.23...
    assert (line.amount, line.tax) == (5997, 532)


def test_a_line_keeps_its_inputs_in_canonical_text() -> None:
    line = priced(quantity="1.50", unit_amount=1000, tax_rate="20.00", description="Support")
    assert line == Line(
        line_id="line_1",
        description="Support",
        quantity="1.5",
        unit_amount=1000,
        tax_rate="20",
        amount=1500,
        tax=300,
    )


def test_an_integer_quantity_is_kept_as_text() -> None:
    line = priced(quantity=3, unit_amount=250)
    assert (line.quantity, line.amount) == ("3", 750)


def test_an_untaxed_line_has_no_rate_and_no_tax() -> None:
    line = priced(quantity=1, unit_amount=1000, tax_rate=None)
    assert (line.tax_rate, line.tax) == (None, 0)


def test_a_zero_tax_rate_is_kept_and_yields_no_tax() -> None:
    line = priced(tax_rate="0")
    assert (line.tax_rate, line.tax) == ("0", 0)


def test_an_integer_tax_rate_is_accepted() -> None:
    line = priced(unit_amount=1000, tax_rate=20)
    assert (line.tax_rate, line.tax) == ("20", 200)


def test_a_negative_unit_amount_makes_a_credit_line() -> None:
    line = priced(quantity=2, unit_amount=-500, tax_rate="20")
    assert (line.amount, line.tax) == (-1000, -200)


def test_a_credit_line_rounds_half_away_from_zero() -> None:
    assert priced(quantity="2.5", unit_amount=-1).amount == -3
    assert priced(quantity="0.5", unit_amount=-3, tax_rate="25").tax == -1


def test_as_event_fields_carries_every_field_as_plain_values() -> None:
    line = priced(quantity="1.5", unit_amount=1000, tax_rate="20")
    assert line.as_event_fields() == {
        "line_id": "line_1",
        "description": "Consulting",
        "quantity": "1.5",
        "unit_amount": 1000,
        "tax_rate": "20",
        "amount": 1500,
        "tax": 300,
    }


# ------------------------------------------------------------------------------ quantity


@pytest.mark.parametrize(
    ("quantity", "text"),
    [
        (1, "1"),
        ("1", "1"),
        ("0.000000000001", "0.000000000001"),
        ("1000000000", "1000000000"),
        (1_000_000_000, "1000000000"),
    ],
)
def test_a_quantity_within_limits_is_accepted_and_kept_in_canonical_text(quantity: object, text: str) -> None:
    assert priced(quantity=quantity, unit_amount=1).quantity == text


@pytest.mark.parametrize("quantity", [1.5, 2.0, True, None, Decimal("1.5"), [1], "abc", "", "1,5", "NaN", "Infinity"])
def test_a_quantity_that_is_not_an_int_or_decimal_string_is_refused(quantity: object) -> None:
    with pytest.raises(InvalidQuantityError) as info:
        priced(quantity=quantity)
    assert info.value.field == "quantity"


@pytest.mark.parametrize("quantity", [0, "0", "0.0", "-0", -1, "-0.5"])
def test_a_zero_or_negative_quantity_is_refused(quantity: object) -> None:
    with pytest.raises(InvalidQuantityError):
        priced(quantity=quantity)


@pytest.mark.parametrize("quantity", [1_000_000_001, "1000000000.000000000001", "1e10", "1" + "0" * 39])
def test_an_absurd_quantity_is_refused(quantity: object) -> None:
    with pytest.raises(InvalidQuantityError):
        priced(quantity=quantity)


def test_a_quantity_with_more_than_twelve_decimals_is_refused() -> None:
    with pytest.raises(InvalidQuantityError):
        priced(quantity="0.0000000000001")


def test_trailing_zeros_do_not_count_as_decimals() -> None:
    assert priced(quantity="2.00000000000000", unit_amount=10).quantity == "2"


# ------------------------------------------------------------------------------ tax rate


@pytest.mark.parametrize("rate", ["-1", "-0.01", "100.01", "101", 101, "abc", "", "20%", 20.0, 12.5, True, "NaN"])
def test_a_tax_rate_outside_zero_to_a_hundred_or_not_a_decimal_string_is_refused(rate: object) -> None:
    with pytest.raises(InvalidTaxRateError) as info:
        priced(tax_rate=rate)
    assert info.value.field == "tax_rate"


def test_a_tax_rate_with_more_than_four_decimals_is_refused() -> None:
    with pytest.raises(InvalidTaxRateError):
        priced(tax_rate="12.34567")


def test_a_hundred_percent_tax_is_accepted() -> None:
    assert priced(unit_amount=1000, tax_rate="100").tax == 1000


# ------------------------------------------------------------------------------ description and amounts


def test_a_description_of_500_characters_is_accepted() -> None:
    assert priced(description="x" * 500).description == "x" * 500


@pytest.mark.parametrize("description", ["x" * 501, "", "   ", None, 42, "nul\x00byte"])
def test_an_oversized_empty_or_non_text_description_is_refused(description: object) -> None:
    with pytest.raises(InvalidTextError) as info:
        priced(description=description)
    assert info.value.field == "description"


@pytest.mark.parametrize("unit_amount", [10.0, "1000", Decimal(1000), None, True, MAX_MINOR_UNITS + 1])
def test_a_unit_amount_that_is_not_an_int_within_range_is_refused(unit_amount: object) -> None:
    with pytest.raises(InvalidAmountError) as info:
        priced(unit_amount=unit_amount)
    assert info.value.field == "unit_amount"


def test_a_line_amount_beyond_the_limit_is_refused() -> None:
    with pytest.raises(InvalidAmountError):
        priced(quantity=1_000_000_000, unit_amount=10**7)


def test_a_line_whose_amount_plus_tax_is_beyond_the_limit_is_refused() -> None:
    with pytest.raises(InvalidAmountError):
        priced(quantity=1, unit_amount=MAX_MINOR_UNITS, tax_rate="1")


@pytest.mark.parametrize("text", ["1E+3", "1e2", "1_000", "0x10", "1,5", " ", "NaN", "Infinity"])
def test_a_quantity_must_be_a_plain_decimal_string(text: str) -> None:
    with pytest.raises(InvalidQuantityError):
        require_quantity(text)


# ------------------------------------------------------------------------------ the thread's context


def _in_a_thread_of_precision(digits: int, work: Callable[[], T]) -> T:
    """Run `work` in a fresh thread whose decimal context keeps `digits` significant digits."""
    results: list[T] = []

    def run() -> None:
        decimal.getcontext().prec = digits
        results.append(work())

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return results[0]


def test_a_large_line_is_priced_exactly_whatever_the_threads_decimal_precision() -> None:
    # 123456.789123456 x 987654321 = 121932631234567.120853376 minor units: 24 significant digits.
    line = _in_a_thread_of_precision(12, lambda: priced(quantity="123456.789123456", unit_amount=987_654_321))
    assert line.amount == 121_932_631_234_567
    assert line.quantity == "123456.789123456"  # its canonical text is not cut to 12 digits either
    assert line == priced(quantity="123456.789123456", unit_amount=987_654_321)


def test_a_large_lines_tax_is_exact_whatever_the_threads_decimal_precision() -> None:
    line = _in_a_thread_of_precision(6, lambda: priced(quantity=1, unit_amount=987_654_321_987, tax_rate="7.125"))
    assert line.tax == 70_370_370_442  # 987654321987 x 7.125 / 100 = 70370370441.57375, exact before rounding
    assert line.tax == round_half_up(Decimal(987_654_321_987) * Decimal("0.07125"))


@pytest.mark.parametrize("text", ["٣", "１", "3\u0663", " 1 ", "1 ", "\t1", "1\n", "+1", "²"])
def test_a_quantity_is_ascii_digits_without_padding_or_sign(text: str) -> None:
    # "٣" was stored as 3 and " 1 " as 1: a decimal string is ASCII digits and a point, nothing else.
    with pytest.raises(InvalidQuantityError):
        require_quantity(text)
    with pytest.raises(InvalidQuantityError):
        require_usage_quantity(text)
    with pytest.raises(InvalidTaxRateError):
        require_tax_rate(text)


def test_a_negative_decimal_string_is_read_only_where_negatives_are_allowed() -> None:
    assert parse_decimal("-1.5", signed=True) == Decimal("-1.5")
    assert parse_decimal("-1.5") is None
    assert parse_decimal("+1.5", signed=True) is None
    assert parse_decimal("٣", signed=True) is None
