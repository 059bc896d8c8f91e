"""The one rounding rule: a decimal amount of minor units is rounded once, half-up.

Half-up means half away from zero (Decimal's ROUND_HALF_UP), so a credit line of -2.5 minor
units rounds to -3, the mirror image of 2.5 -> 3. Rounding happens exactly once per figure, at
the line: a line's amount and a line's tax. Totals are sums of rounded integers and are never
rounded again. docs/adr/0004-rounding.md gives the reasons.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext


def round_half_up(value: Decimal) -> int:
    """Round a decimal count of minor units to an integer, half away from zero."""
    with localcontext() as context:
        context.prec = 60  # far beyond any quantity x amount we accept: no silent truncation
        return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))
