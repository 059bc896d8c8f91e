"""An invoice line: description, quantity x unit amount, optional tax rate, rounded once."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ledger.errors import InvalidQuantityError, InvalidTaxRateError
from ledger.money import MAX_MINOR_UNITS, require_minor_units
from ledger.rounding import money_context, round_half_up
from ledger.validation import DESCRIPTION_LIMIT, canonical_decimal, decimal_places, parse_decimal, require_text

MAX_QUANTITY = Decimal(1_000_000_000)
QUANTITY_DECIMALS = 12
TAX_RATE_DECIMALS = 4


def require_quantity(value: object, *, field: str = "quantity") -> Decimal:
    """A positive quantity as an integer or a decimal string (never a float)."""
    number = parse_decimal(value)
    if number is None:
        raise InvalidQuantityError(
            f"{field} must be an integer or a decimal string, got {type(value).__name__} {value!r}",
            field=field,
        )
    if number <= 0:
        raise InvalidQuantityError(f"{field} must be greater than zero, got {value}", field=field)
    if number > MAX_QUANTITY:
        raise InvalidQuantityError(f"{field} {value} is beyond the limit of {MAX_QUANTITY}", field=field)
    if decimal_places(number) > QUANTITY_DECIMALS:
        raise InvalidQuantityError(f"{field} {value} has more than {QUANTITY_DECIMALS} decimal places", field=field)
    return number


def require_tax_rate(value: object, *, field: str = "tax_rate") -> Decimal | None:
    """A percentage from 0 to 100 as a decimal string or integer; None means untaxed."""
    if value is None:
        return None
    number = parse_decimal(value)
    if number is None or not Decimal(0) <= number <= Decimal(100):
        raise InvalidTaxRateError(
            f"{field} must be a percentage from 0 to 100 as a decimal string, got {value!r}",
            field=field,
        )
    if decimal_places(number) > TAX_RATE_DECIMALS:
        raise InvalidTaxRateError(f"{field} {value} has more than {TAX_RATE_DECIMALS} decimal places", field=field)
    return number


@dataclass(frozen=True, slots=True)
class Line:
    """A priced line. `amount` and `tax` are derived once, at construction, and frozen."""

    line_id: str
    description: str
    quantity: str
    unit_amount: int
    tax_rate: str | None
    amount: int
    tax: int

    @classmethod
    def price(
        cls,
        *,
        line_id: str,
        description: object,
        quantity: object,
        unit_amount: object,
        tax_rate: object = None,
    ) -> Line:
        """Validate the inputs and compute amount and tax, each rounded half-up once."""
        text = require_text(description, field="description", limit=DESCRIPTION_LIMIT)
        qty = require_quantity(quantity)
        unit = require_minor_units(unit_amount, field="unit_amount", allow_negative=True)
        rate = require_tax_rate(tax_rate)
        with money_context():  # exact whatever the thread's own decimal context says
            amount = round_half_up(qty * unit)
            require_minor_units(amount, field="amount", allow_negative=True)
            tax = 0 if rate is None else round_half_up(Decimal(amount) * rate / 100)
        if abs(amount + tax) > MAX_MINOR_UNITS:
            require_minor_units(amount + tax, field="amount", allow_negative=True)
        return cls(
            line_id=line_id,
            description=text,
            quantity=canonical_decimal(qty),
            unit_amount=unit,
            tax_rate=None if rate is None else canonical_decimal(rate),
            amount=amount,
            tax=tax,
        )

    def __deepcopy__(self, memo: dict[int, object]) -> Line:
        return self  # frozen, and every field is immutable: a copy may share it

    def as_event_fields(self) -> dict[str, object]:
        return {
            "line_id": self.line_id,
            "description": self.description,
            "quantity": self.quantity,
            "unit_amount": self.unit_amount,
            "tax_rate": self.tax_rate,
            "amount": self.amount,
            "tax": self.tax,
        }
