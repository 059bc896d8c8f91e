"""Money: an integer count of minor units in one currency.

No float ever becomes Money: the constructor accepts `int` only, and parsing goes through
`Decimal` from a string. Arithmetic refuses to mix currencies.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, Inexact

from ledger.currencies import exponent, require_currency
from ledger.errors import CurrencyMismatchError, InvalidAmountError
from ledger.rounding import money_context
from ledger.validation import parse_decimal

#: The largest absolute amount the ledger accepts, in minor units. It stays below 2**53, so
#: every amount survives a round trip through JSON consumers that read numbers as doubles.
MAX_MINOR_UNITS = 10**15 - 1


def require_minor_units(value: object, *, field: str = "amount", allow_negative: bool = False) -> int:
    """Return `value` if it is an integer amount of minor units within range, else raise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidAmountError(
            f"{field} must be an integer number of minor units, got {type(value).__name__} {value!r}",
            field=field,
        )
    if value < 0 and not allow_negative:
        raise InvalidAmountError(f"{field} must not be negative, got {value}", field=field)
    if abs(value) > MAX_MINOR_UNITS:
        raise InvalidAmountError(f"{field} {value} is beyond the limit of {MAX_MINOR_UNITS} minor units", field=field)
    return value


@dataclass(frozen=True, slots=True)
class Money:
    amount: int
    currency: str

    def __post_init__(self) -> None:
        require_minor_units(self.amount, allow_negative=True)
        require_currency(self.currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @classmethod
    def parse(cls, text: str, currency: str) -> Money:
        """Read a decimal string in major units ("12.34" usd -> 1234). Extra digits are refused."""
        if not isinstance(text, str):
            raise InvalidAmountError(f"expected a decimal string, got {type(text).__name__}")
        major = parse_decimal(text, signed=True)
        if major is None:
            raise InvalidAmountError(f"{text!r} is not a decimal amount")
        with money_context():  # scaleb rounds to the context's precision: the money context traps it
            try:
                minor = major.scaleb(exponent(currency))
            except Inexact:
                raise InvalidAmountError(f"{text!r} has more digits than an amount can hold") from None
        if minor != minor.to_integral_value():
            raise InvalidAmountError(f"{text!r} has more decimals than {currency} allows ({exponent(currency)})")
        return cls(int(minor), currency)

    def format(self) -> str:
        """The amount in major units with the currency's own decimals: '12.34 USD'."""
        digits = exponent(self.currency)
        with money_context():  # the thread's context could cut the digits of a large amount
            major = Decimal(self.amount).scaleb(-digits)
        return f"{major:,.{digits}f} {self.currency.upper()}"

    def __str__(self) -> str:
        return self.format()

    def _same_currency(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatchError(self.currency, other.currency)

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.amount >= other.amount

    def is_zero(self) -> bool:
        return self.amount == 0
