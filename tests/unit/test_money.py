"""Money: integer minor units in one lowercase ISO 4217 currency; parse, format, arithmetic."""

from __future__ import annotations

import dataclasses
import decimal
import threading
from decimal import Decimal

import pytest

from ledger.currencies import EXPONENTS, exponent, require_currency
from ledger.errors import CurrencyMismatchError, InvalidAmountError, UnknownCurrencyError
from ledger.money import MAX_MINOR_UNITS, Money, require_minor_units


def usd(amount: int) -> Money:
    return Money(amount, "usd")


def eur(amount: int) -> Money:
    return Money(amount, "eur")


# ------------------------------------------------------------------------------ construction


def test_money_is_built_from_an_integer_count_of_minor_units() -> None:
    money = Money(1234, "usd")
    assert (money.amount, money.currency) == (1234, "usd")


def test_money_may_be_negative_or_zero() -> None:
    assert Money(-1, "usd").amount == -1
    assert Money.zero("jpy") == Money(0, "jpy")
    assert Money.zero("jpy").is_zero()
    assert not usd(1).is_zero()


@pytest.mark.parametrize("amount", [12.0, 12.5, True, False, Decimal("12"), "12", None, [12]])
def test_money_refuses_anything_but_an_int(amount: object) -> None:
    with pytest.raises(InvalidAmountError):
        Money(amount, "usd")  # type: ignore[arg-type]


def test_the_limit_is_below_two_to_the_53rd_so_json_doubles_keep_every_amount() -> None:
    assert MAX_MINOR_UNITS == 10**15 - 1
    assert MAX_MINOR_UNITS < 2**53


@pytest.mark.parametrize("amount", [MAX_MINOR_UNITS, -MAX_MINOR_UNITS])
def test_money_accepts_amounts_up_to_the_limit(amount: int) -> None:
    assert Money(amount, "usd").amount == amount


@pytest.mark.parametrize("amount", [MAX_MINOR_UNITS + 1, -MAX_MINOR_UNITS - 1, 10**30])
def test_money_refuses_amounts_beyond_the_limit(amount: int) -> None:
    with pytest.raises(InvalidAmountError):
        Money(amount, "usd")


def test_require_minor_units_refuses_negatives_unless_allowed_and_names_the_field() -> None:
    with pytest.raises(InvalidAmountError) as info:
        require_minor_units(-1, field="fee")
    assert info.value.field == "fee"
    assert require_minor_units(-1, field="fee", allow_negative=True) == -1
    assert require_minor_units(0) == 0


@pytest.mark.parametrize("currency", ["USD", "Usd", "xyz", "", "us", " usd", None, 840])
def test_an_unknown_or_uppercase_currency_is_refused(currency: object) -> None:
    with pytest.raises(UnknownCurrencyError) as info:
        Money(1, currency)  # type: ignore[arg-type]
    assert info.value.field == "currency"


def test_money_is_immutable() -> None:
    money = usd(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        money.amount = 2  # type: ignore[misc]


# ------------------------------------------------------------------------------ currencies


@pytest.mark.parametrize(
    ("currency", "digits"),
    [("jpy", 0), ("krw", 0), ("usd", 2), ("eur", 2), ("gbp", 2), ("kwd", 3), ("bhd", 3), ("clf", 4)],
)
def test_each_currency_has_its_iso_4217_exponent(currency: str, digits: int) -> None:
    assert exponent(currency) == digits


def test_every_known_currency_code_is_three_lowercase_letters() -> None:
    assert all(len(code) == 3 and code.isascii() and code.isalpha() and code.islower() for code in EXPONENTS)


def test_exponent_of_an_unknown_currency_is_refused() -> None:
    with pytest.raises(UnknownCurrencyError):
        exponent("USD")


def test_require_currency_names_the_field_it_checked() -> None:
    assert require_currency("usd") == "usd"
    with pytest.raises(UnknownCurrencyError) as info:
        require_currency("EUR", field="lines.0.currency")
    assert info.value.field == "lines.0.currency"


# ------------------------------------------------------------------------------ parse


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("12.34", "usd", 1234),
        ("12.3", "usd", 1230),
        ("12.30", "usd", 1230),
        ("12", "usd", 1200),
        ("0.01", "usd", 1),
        ("-5.25", "usd", -525),
        ("1000", "jpy", 1000),
        ("1.234", "kwd", 1234),
        ("0.001", "kwd", 1),
        ("9999999999999.99", "usd", MAX_MINOR_UNITS),
    ],
)
def test_parse_reads_major_units_into_minor_units(text: str, currency: str, minor: int) -> None:
    assert Money.parse(text, currency) == Money(minor, currency)


@pytest.mark.parametrize(
    ("text", "currency"),
    [("12.345", "usd"), ("0.001", "usd"), ("1.5", "jpy"), ("1000.1", "jpy"), ("1.2345", "kwd")],
)
def test_parse_refuses_more_decimals_than_the_currency_has(text: str, currency: str) -> None:
    with pytest.raises(InvalidAmountError, match="more decimals"):
        Money.parse(text, currency)


def test_parse_refuses_extra_decimals_even_past_the_default_decimal_precision() -> None:
    # 29 significant digits: Decimal's default 28-digit context must not round them away.
    with pytest.raises(InvalidAmountError):
        Money.parse("1.0000000000000000000000000001", "usd")


@pytest.mark.parametrize(
    "text",
    ["abc", "", "   ", "1,000.00", "12.3.4", "12 usd", "$12", "NaN", "Infinity", "-inf", " 12.34 ", "١٢", "+5", "5\n"],
)
def test_parse_refuses_text_that_is_not_a_finite_decimal(text: str) -> None:
    with pytest.raises(InvalidAmountError):
        Money.parse(text, "usd")


@pytest.mark.parametrize("value", [12.34, 12, Decimal("12.34"), None])
def test_parse_refuses_anything_but_a_string(value: object) -> None:
    with pytest.raises(InvalidAmountError):
        Money.parse(value, "usd")  # type: ignore[arg-type]


def test_parse_refuses_an_amount_beyond_the_limit() -> None:
    with pytest.raises(InvalidAmountError):
        Money.parse("10000000000000.00", "usd")


def test_parse_refuses_an_unknown_currency() -> None:
    with pytest.raises(UnknownCurrencyError):
        Money.parse("12.34", "USD")


# ------------------------------------------------------------------------------ format


@pytest.mark.parametrize(
    ("money", "text"),
    [
        (Money(123456, "usd"), "1,234.56 USD"),
        (Money(5, "usd"), "0.05 USD"),
        (Money(0, "usd"), "0.00 USD"),
        (Money(-123456, "usd"), "-1,234.56 USD"),
        (Money(264000, "jpy"), "264,000 JPY"),
        (Money(1250, "kwd"), "1.250 KWD"),
        (Money(MAX_MINOR_UNITS, "usd"), "9,999,999,999,999.99 USD"),
    ],
)
def test_format_shows_major_units_with_the_currency_decimals(money: Money, text: str) -> None:
    assert money.format() == text
    assert str(money) == text


@pytest.mark.parametrize(("text", "currency"), [("1234.56", "usd"), ("264000", "jpy"), ("1.250", "kwd")])
def test_parse_reads_back_what_format_wrote(text: str, currency: str) -> None:
    money = Money.parse(text, currency)
    assert Money.parse(money.format().split()[0].replace(",", ""), currency) == money


# ------------------------------------------------------------------------------ arithmetic


def test_money_adds_subtracts_and_negates_in_one_currency() -> None:
    assert usd(1000) + usd(234) == usd(1234)
    assert usd(1000) - usd(1234) == usd(-234)
    assert -usd(5) == usd(-5)


def test_money_compares_in_one_currency() -> None:
    assert usd(1) < usd(2)
    assert usd(2) <= usd(2)
    assert usd(3) > usd(2)
    assert usd(2) >= usd(2)
    assert not usd(2) < usd(2)


def test_a_sum_beyond_the_limit_is_refused() -> None:
    with pytest.raises(InvalidAmountError):
        usd(MAX_MINOR_UNITS) + usd(1)


@pytest.mark.parametrize(
    "operation",
    [
        lambda a, b: a + b,
        lambda a, b: a - b,
        lambda a, b: a < b,
        lambda a, b: a <= b,
        lambda a, b: a > b,
        lambda a, b: a >= b,
    ],
    ids=["add", "sub", "lt", "le", "gt", "ge"],
)
def test_mixing_currencies_is_refused(operation: object) -> None:
    with pytest.raises(CurrencyMismatchError) as info:
        operation(usd(100), eur(100))  # type: ignore[operator]
    assert (info.value.expected, info.value.actual) == ("usd", "eur")


def test_equal_counts_in_different_currencies_are_not_equal() -> None:
    assert usd(100) != eur(100)


def test_money_does_not_combine_with_a_bare_number() -> None:
    with pytest.raises(TypeError):
        usd(100) + 1  # type: ignore[operator]


@pytest.mark.parametrize("text", ["1_000", "1e3", "12.5.1", ""])
def test_parse_accepts_only_plain_decimal_text(text: str) -> None:
    with pytest.raises(InvalidAmountError):
        Money.parse(text, "usd")


def test_format_and_parse_are_exact_whatever_the_threads_decimal_precision() -> None:
    shown: list[str] = []
    read: list[Money] = []

    def run() -> None:
        decimal.getcontext().prec = 6
        shown.append(Money(987_654_321_987_654, "usd").format())
        read.append(Money.parse("9876543219876.54", "usd"))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert shown == ["9,876,543,219,876.54 USD"]
    assert read == [Money(987_654_321_987_654, "usd")]
