"""The one rounding rule and the one arithmetic context for money.

Half-up means half away from zero (Decimal's ROUND_HALF_UP), so a credit line of -2.5 minor
units rounds to -3, the mirror image of 2.5 -> 3. Rounding happens exactly once per figure, at
the line: a line's amount and a line's tax. Totals are sums of rounded integers and are never
rounded again. docs/adr/0004-rounding.md gives the reasons.

Every other step (quantity x unit amount, amount x rate / 100, sums of usage) must be exact.
Decimal arithmetic otherwise runs in the calling thread's context, which any library or
request handler may have changed (a precision of 12 turns 123456.789123 x 987654321 into
121932631234000). `money_context()` is the explicit context money is computed in, whatever the
thread has: precision far beyond any product we accept, and Inexact trapped, so a result that
would have to be rounded raises instead of losing digits.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from decimal import (
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    localcontext,
)

#: Digits kept by money arithmetic. Our largest product, a quantity of 10^9 with 12 decimals
#: times a unit amount of 10^15 with 12 decimals, has under 50 significant digits.
PRECISION = 60

MONEY_CONTEXT = Context(
    prec=PRECISION,
    rounding=ROUND_HALF_UP,
    Emax=999_999,
    Emin=-999_999,
    traps=[Inexact, InvalidOperation, DivisionByZero, Overflow],
)


def money_context() -> AbstractContextManager[Context]:
    """Run the block in the money context (a copy of it: the block may not change the shared one)."""
    return localcontext(MONEY_CONTEXT)


#: The money context without the Inexact trap: for `round_half_up` alone. Passed to `quantize`
#: as an argument rather than installed (installing a context costs a copy per call); nothing
#: reads its flags, so sharing it between threads is harmless.
_ROUNDING_CONTEXT = MONEY_CONTEXT.copy()
_ROUNDING_CONTEXT.traps[Inexact] = False


def round_half_up(value: Decimal) -> int:
    """Round a decimal count of minor units to an integer, half away from zero.

    The one place rounding is meant, and the only one whose context does not trap Inexact.
    """
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP, context=_ROUNDING_CONTEXT))
