"""Properties of money and invoice lines, checked against exact arithmetic (tests/property/oracle.py).

- a line's amount is quantity x unit amount rounded once, half away from zero; its tax is the
  rounded amount x rate / 100, rounded once the same way; a credit line mirrors a debit line;
- Money.format writes what Money.parse reads back, in every currency's exponent;
- an invoice's subtotal, tax and total are the exact sums of its rounded lines, never
  rounded again, and issuing freezes exactly those figures.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from uuid import uuid4

import pytest
from hypothesis import assume, event, given
from hypothesis import strategies as st

from ledger.currencies import EXPONENTS
from ledger.errors import InvalidAmountError, InvalidQuantityError, InvalidTaxRateError
from ledger.invoices import Invoice
from ledger.lines import MAX_QUANTITY, QUANTITY_DECIMALS, TAX_RATE_DECIMALS, Line
from ledger.money import MAX_MINOR_UNITS, Money
from ledger.rounding import round_half_up
from tests.property.oracle import exact, expected_line, half_up, in_range

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CURRENCIES = sorted(EXPONENTS)

minor_units = st.one_of(
    st.integers(-MAX_MINOR_UNITS, MAX_MINOR_UNITS),
    st.integers(MAX_MINOR_UNITS - 10**6, MAX_MINOR_UNITS),  # near the limit, where rounding can cross it
    st.integers(-MAX_MINOR_UNITS, -MAX_MINOR_UNITS + 10**6),
)


@st.composite
def decimal_texts(draw: st.DrawFn, *, max_places: int, min_value: Decimal, max_value: Decimal) -> str:
    """A plain decimal as a caller may write it: '2.5', '2.50', '2' (padding is refused: ' 2.5 ')."""
    places = draw(st.integers(0, max_places))
    number = draw(
        st.decimals(min_value=min_value, max_value=max_value, places=places, allow_nan=False, allow_infinity=False)
    )
    assume(number >= min_value)
    text = format(number, "f")
    style = draw(st.sampled_from(["plain", "trailing-zeros"]))
    if style == "trailing-zeros":
        return text + ("0" if "." in text else ".00")
    return text


quantities = st.one_of(
    st.integers(1, int(MAX_QUANTITY)),
    decimal_texts(max_places=QUANTITY_DECIMALS, min_value=Decimal("1E-12"), max_value=MAX_QUANTITY),
)
small_quantities = st.one_of(
    st.integers(1, 1_000),
    decimal_texts(max_places=4, min_value=Decimal("0.0001"), max_value=Decimal(1_000)),
)
tax_rates = st.one_of(
    st.none(),
    st.integers(0, 100),
    decimal_texts(max_places=TAX_RATE_DECIMALS, min_value=Decimal(0), max_value=Decimal(100)),
)


def price(quantity: object, unit_amount: int, tax_rate: object) -> Line:
    return Line.price(line_id="l1", description="x", quantity=quantity, unit_amount=unit_amount, tax_rate=tax_rate)


# ------------------------------------------------------------------------------ rounding and lines


@given(st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**20), max_value=10**20))
def test_round_half_up_agrees_with_exact_rounding(value: Decimal) -> None:
    assert round_half_up(value) == half_up(Fraction(value))


@given(quantity=quantities, unit_amount=minor_units, tax_rate=tax_rates)
def test_a_line_is_priced_exactly_and_rounded_once(quantity: object, unit_amount: int, tax_rate: object) -> None:
    amount, tax = expected_line(quantity, unit_amount, tax_rate)
    event("in range" if in_range(amount, tax) else "beyond the limit")
    if not in_range(amount, tax):
        with pytest.raises(InvalidAmountError):
            price(quantity, unit_amount, tax_rate)
        return
    line = price(quantity, unit_amount, tax_rate)
    assert (line.amount, line.tax) == (amount, tax)
    # The inputs are kept as canonical text that reads back to the same numbers.
    assert exact(line.quantity) == exact(quantity)
    assert "E" not in line.quantity.upper()
    assert line.unit_amount == unit_amount
    if tax_rate is None:
        assert line.tax_rate is None
        assert line.tax == 0
    else:
        assert line.tax_rate is not None
        assert exact(line.tax_rate) == exact(tax_rate)


@given(quantity=quantities, unit_amount=st.integers(1, MAX_MINOR_UNITS), tax_rate=tax_rates)
def test_a_credit_line_mirrors_the_debit_line(quantity: object, unit_amount: int, tax_rate: object) -> None:
    assume(in_range(*expected_line(quantity, unit_amount, tax_rate)))
    debit = price(quantity, unit_amount, tax_rate)
    credit = price(quantity, -unit_amount, tax_rate)
    assert (credit.amount, credit.tax) == (-debit.amount, -debit.tax)


@given(quantity=small_quantities, unit_amount=st.integers(-10_000, 10_000), tax_rate=tax_rates)
def test_a_line_amount_is_within_half_a_minor_unit_of_the_exact_product(
    quantity: object, unit_amount: int, tax_rate: object
) -> None:
    line = price(quantity, unit_amount, tax_rate)
    assert abs(line.amount - exact(quantity) * unit_amount) <= Fraction(1, 2)
    assert abs(line.tax - Fraction(line.amount) * exact(tax_rate or 0) / 100) <= Fraction(1, 2)


@given(
    number=st.decimals(min_value=Decimal("1E-12"), max_value=MAX_QUANTITY, allow_nan=False, allow_infinity=False),
    unit_amount=st.integers(-1_000, 1_000),
)
def test_exponent_notation_is_refused_plain_decimals_only(number: Decimal, unit_amount: int) -> None:
    """'25E-1' is not how a quantity or an amount is written: refused rather than guessed."""
    text = format(number, "E")
    with pytest.raises(InvalidQuantityError):
        price(text, unit_amount, None)
    with pytest.raises(InvalidTaxRateError):
        price(1, unit_amount, format(Decimal(min(number, Decimal(100))), "E"))
    with pytest.raises(InvalidAmountError):
        Money.parse(text, "usd")


# ------------------------------------------------------------------------------ money


def plain(money: Money) -> str:
    """Money.format without its thousands separators and currency code: '-1234.56'."""
    text, code = money.format().rsplit(" ", 1)
    assert code == money.currency.upper()
    return text.replace(",", "")


@given(amount=minor_units, currency=st.sampled_from(CURRENCIES))
def test_parse_reads_back_what_format_writes_in_every_currency(amount: int, currency: str) -> None:
    money = Money(amount, currency)
    text = plain(money)
    digits = EXPONENTS[currency]
    # Exactly the currency's decimals, and the same value as the minor units say.
    assert len(text.partition(".")[2]) == digits
    assert Fraction(text) * 10**digits == amount
    assert Money.parse(text, currency) == money
    with pytest.raises(InvalidAmountError):  # a decimal string is its digits, unpadded
        Money.parse(f"  {text}  ", currency)
    padded = text + ("000" if digits else ".000")  # trailing zeros change nothing
    assert Money.parse(padded, currency) == money


@given(amount=minor_units, currency=st.sampled_from(CURRENCIES), digit=st.integers(1, 9))
def test_parse_refuses_one_decimal_more_than_the_currency_has(amount: int, currency: str, digit: int) -> None:
    text = plain(Money(amount, currency))
    finer = f"{text}{digit}" if EXPONENTS[currency] else f"{text}.{digit}"
    with pytest.raises(InvalidAmountError):
        Money.parse(finer, currency)


@given(
    amounts=st.lists(st.integers(-(10**12), 10**12), min_size=1, max_size=10),
    currency=st.sampled_from(CURRENCIES),
)
def test_money_sums_are_exact_integer_sums(amounts: list[int], currency: str) -> None:
    total = Money.zero(currency)
    for amount in amounts:
        total = total + Money(amount, currency)
    assert total == Money(sum(amounts), currency)
    assert (total - total).is_zero()


# ------------------------------------------------------------------------------ invoice totals

lines = st.lists(
    st.tuples(small_quantities, st.integers(-(10**6), 10**7), tax_rates),
    min_size=1,
    max_size=12,
)


@given(lines=lines, currency=st.sampled_from(["usd", "jpy", "kwd", "eur"]))
def test_invoice_totals_are_the_exact_sums_of_the_rounded_lines(
    lines: list[tuple[object, int, object]], currency: str
) -> None:
    invoice = Invoice.create_draft(invoice_id=uuid4(), customer={"email": "a@b.co"}, currency=currency, at=AT)
    for n, (quantity, unit_amount, tax_rate) in enumerate(lines):
        line = Line.price(
            line_id=f"l{n}", description="x", quantity=quantity, unit_amount=unit_amount, tax_rate=tax_rate
        )
        invoice.add_line(line, at=AT)
    expected = [expected_line(q, u, r) for q, u, r in lines]
    subtotal = sum(amount for amount, _ in expected)
    tax = sum(tax for _, tax in expected)
    assert (invoice.subtotal, invoice.tax, invoice.total) == (subtotal, tax, subtotal + tax)
    if invoice.total < 0:
        return
    invoice.issue(sequence=1, at=AT)
    issued = next(e for e in invoice.collect_events() if isinstance(e, Invoice.Issued))
    assert (issued.subtotal, issued.tax, issued.total) == (subtotal, tax, subtotal + tax)
    assert (invoice.subtotal, invoice.tax, invoice.total) == (subtotal, tax, subtotal + tax)
    if subtotal + tax == 0:  # nothing to collect: paid on issue
        assert (invoice.status, invoice.amount_due) == ("paid", 0)
    else:
        assert (invoice.status, invoice.amount_due) == ("open", subtotal + tax)


@given(unit_amounts=st.lists(st.integers(-MAX_MINOR_UNITS, MAX_MINOR_UNITS), min_size=1, max_size=6))
def test_a_line_that_would_take_the_total_out_of_range_is_refused_and_changes_nothing(
    unit_amounts: list[int],
) -> None:
    invoice = Invoice.create_draft(invoice_id=uuid4(), customer={"email": "a@b.co"}, currency="usd", at=AT)
    running = 0
    for n, unit_amount in enumerate(unit_amounts):
        line = Line.price(line_id=f"l{n}", description="x", quantity=1, unit_amount=unit_amount)
        version = invoice.version
        if abs(running + unit_amount) > MAX_MINOR_UNITS:
            with pytest.raises(InvalidAmountError):
                invoice.add_line(line, at=AT)
            assert invoice.version == version
        else:
            invoice.add_line(line, at=AT)
            running += unit_amount
        assert invoice.total == running
