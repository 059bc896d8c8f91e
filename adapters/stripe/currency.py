"""Amounts across the Stripe boundary: one codec per currency, used both ways for every amount.

The ledger counts ISO 4217 minor units (ledger/currencies.py); Stripe counts its own units,
which differ where Stripe's currency documentation ("Supported currencies", special cases) says so:

- Stripe's zero-decimal list (bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf)
  is sent in whole units even where ISO 4217 has decimals: mga has 2 in ISO, none in Stripe, so
  1 ariary is 100 of our minor units and `1` in Stripe;
- isk is zero-decimal in ISO 4217 but stays two-decimal in Stripe's API, and Stripe accepts only
  whole krónur: 5 kr is `500`, and an amount from Stripe that is not a multiple of 100 is not
  one the ledger can hold;
- huf and twd are two-decimal in both; Stripe wants whole units (multiples of 100) only for
  payouts, which the ledger never creates, so charges, refunds and reports convert 1:1;
- three-decimal currencies (bhd jod kwd omr tnd) keep their 3 decimals, but Stripe's card
  partners take only amounts whose last digit is 0: 5.124 KWD cannot be charged;
- what Stripe does not list (four-decimal units, fund codes, iqd, lyd) is refused.

An amount Stripe cannot represent is refused with `StripeAmountError` (an InvalidAmountError:
422) before any request is sent; one Stripe sends that the ledger cannot hold is refused the
same way, and the webhook is recorded as refused with the field named.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from ledger.currencies import exponent, require_currency
from ledger.errors import InvalidAmountError
from ledger.money import Money

STRIPE_ZERO_DECIMAL = frozenset("bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split())
STRIPE_THREE_DECIMAL = frozenset("bhd jod kwd omr tnd".split())
# Two-decimal in Stripe's API although ISO 4217 has none; whole units only.
STRIPE_TWO_DECIMAL_WHOLE = frozenset({"isk"})
# ISO 4217 codes Stripe does not charge in: fund codes, four-decimal units, unlisted three-decimals.
STRIPE_UNSUPPORTED = frozenset("bov che chw clf cou iqd lyd mxv usn uyi uyw".split())


class StripeAmountError(InvalidAmountError):
    """An amount Stripe cannot represent in its units, or one from Stripe the ledger cannot hold."""


@dataclass(frozen=True)
class StripeCurrencyCodec:
    """How one currency's amounts cross: `stripe = ledger * 10**shift`, in multiples of `step`
    of Stripe's units."""

    currency: str
    shift: int  # Stripe's decimals minus ISO 4217's
    step: int  # Stripe takes only multiples of this (its own units)

    def to_stripe(self, money: Money, *, field: str = "amount") -> int:
        if money.currency != self.currency:
            raise StripeAmountError(f"a {money.currency} amount given to the {self.currency} codec", field=field)
        if self.shift >= 0:
            units = money.amount * int(10**self.shift)
        else:
            divisor = int(10**-self.shift)
            if money.amount % divisor:
                raise StripeAmountError(
                    f"Stripe charges {self.currency} in whole units: {money.amount} minor units is not a multiple of "
                    f"{divisor}",
                    field=field,
                )
            units = money.amount // divisor
        if units % self.step:
            raise StripeAmountError(
                f"Stripe takes {self.currency} amounts only in multiples of {self.step} of its units; "
                f"{money.amount} minor units would be {units}",
                field=field,
            )
        return units

    def from_stripe(self, amount: int, *, field: str = "amount") -> Money:
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise StripeAmountError(f"expected an integer amount, got {type(amount).__name__}", field=field)
        if self.shift <= 0:
            return Money(amount * int(10**-self.shift), self.currency)
        divisor = int(10**self.shift)
        if amount % divisor:
            raise StripeAmountError(
                f"Stripe's {amount} {self.currency} is not a whole number of the ledger's minor units", field=field
            )
        return Money(amount // divisor, self.currency)


@cache
def codec(currency: str) -> StripeCurrencyCodec:
    """The codec for `currency` (a lowercase ISO 4217 code Stripe charges in)."""
    code = require_currency(currency)
    if code in STRIPE_UNSUPPORTED:
        raise StripeAmountError(f"Stripe does not take payments in {code}", field="currency")
    iso = exponent(code)
    if code in STRIPE_ZERO_DECIMAL:
        return StripeCurrencyCodec(code, -iso, 1)
    if code in STRIPE_TWO_DECIMAL_WHOLE:
        return StripeCurrencyCodec(code, 2 - iso, 100)
    if code in STRIPE_THREE_DECIMAL:
        return StripeCurrencyCodec(code, 0, 10)
    return StripeCurrencyCodec(code, 0, 1)


def to_stripe(money: Money, *, field: str = "amount") -> int:
    """`money` in Stripe's units for its currency; StripeAmountError if Stripe cannot take it."""
    return codec(money.currency).to_stripe(money, field=field)


def from_stripe(amount: int, currency: str, *, field: str = "amount") -> Money:
    """Stripe's `amount` of `currency` as the ledger's Money."""
    return codec(currency).from_stripe(amount, field=field)
