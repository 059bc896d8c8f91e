"""Independent arithmetic for the property tests: exact fractions, no Decimal contexts.

The production code prices lines with `Decimal` and `ROUND_HALF_UP`; these helpers compute
the same figures with `fractions.Fraction` and an explicit half-away-from-zero rule, so a
property comparing the two is not the code checked against itself.
"""

from __future__ import annotations

import math
from fractions import Fraction

from ledger.money import MAX_MINOR_UNITS


def half_up(value: Fraction) -> int:
    """Round to an integer, halves away from zero (2.5 -> 3, -2.5 -> -3)."""
    rounded = math.floor(abs(value) + Fraction(1, 2))
    return rounded if value >= 0 else -rounded


def exact(number: object) -> Fraction:
    """An int or a decimal string as an exact fraction."""
    if isinstance(number, int):
        return Fraction(number)
    assert isinstance(number, str)
    return Fraction(number.strip())


def expected_line(quantity: object, unit_amount: object, tax_rate: object) -> tuple[int, int]:
    """(amount, tax) in minor units: each rounded once, half-up; tax is computed on the rounded amount."""
    assert isinstance(unit_amount, int)
    amount = half_up(exact(quantity) * unit_amount)
    tax = 0 if tax_rate is None else half_up(Fraction(amount) * exact(tax_rate) / 100)
    return amount, tax


def in_range(amount: int, tax: int) -> bool:
    """Whether a priced line stays within the ledger's limit of minor units."""
    return abs(amount) <= MAX_MINOR_UNITS and abs(amount + tax) <= MAX_MINOR_UNITS
