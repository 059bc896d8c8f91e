"""Usage prices: what a quantity of a meter costs, with the breakdown an invoice shows.

Four models, as Stripe Billing and Lago name them:

- `per_unit`: quantity x unit_amount;
- `package`: whole packages of `package_size` units at `package_amount` each, a partial package
  counted as a whole one (2,001 units in packages of 1,000 is 3 packages);
- `graduated`: each tier prices the units that fall inside it (tier 1 the first `up_to` units,
  tier 2 the next ones, ...), plus the tier's flat fee once any unit reaches it;
- `volume`: the tier the whole quantity falls in prices every unit, plus that tier's flat fee.

Unit amounts are minor units and may be decimal strings ("0.25" cents). A part's amount is
`round_half_up(units x unit_amount) + flat_amount`: rounded once, per part, never re-rounded;
the total is the sum of the parts (docs/adr/0012-usage-pricing-and-periods.md). Terms are kept
as plain JSON (canonical decimal strings), so they can be stored in events as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ledger.errors import InvalidAmountError, InvalidPriceError, InvalidQuantityError
from ledger.money import MAX_MINOR_UNITS, require_minor_units
from ledger.rounding import money_context, round_half_up
from ledger.validation import canonical_decimal, decimal_places, parse_decimal

PER_UNIT = "per_unit"
PACKAGE = "package"
GRADUATED = "graduated"
VOLUME = "volume"
MODELS = (PER_UNIT, PACKAGE, GRADUATED, VOLUME)

MAX_TIERS = 10
UNIT_AMOUNT_DECIMALS = 12
USAGE_DECIMALS = 12
MAX_PACKAGE_SIZE = 1_000_000_000
MAX_TIER_BOUND = Decimal(10**15)

Terms = dict[str, Any]


@dataclass(frozen=True, slots=True)
class PricePart:
    """One tier (or the single part of a per-unit or package price) of a priced quantity."""

    tier: int | None  # 1-based tier number; None for per_unit and package
    units: Decimal  # the units this part prices
    unit_amount: Decimal  # minor units per unit (per package, for `package`)
    flat_amount: int
    amount: int  # round_half_up(units x unit_amount) + flat_amount (packages x amount for `package`)
    lower: Decimal | None = None  # the tier's range (lower, upper]; upper None is unbounded
    upper: Decimal | None = None
    packages: int | None = None  # `package` only: how many packages were billed, of what size
    package_size: int | None = None

    @property
    def unit_total(self) -> int:
        """The amount without the flat fee."""
        return self.amount - self.flat_amount

    def as_json(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "units": canonical_decimal(self.units),
            "unit_amount": canonical_decimal(self.unit_amount),
            "flat_amount": self.flat_amount,
            "amount": self.amount,
            "packages": self.packages,
            "package_size": self.package_size,
        }


@dataclass(frozen=True, slots=True)
class Breakdown:
    """A priced quantity: the parts and their sum."""

    model: str
    quantity: Decimal
    parts: tuple[PricePart, ...]

    @property
    def total(self) -> int:
        return sum(part.amount for part in self.parts)

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "quantity": canonical_decimal(self.quantity),
            "parts": [part.as_json() for part in self.parts],
            "total": self.total,
        }


# ------------------------------------------------------------------------------ terms


def require_terms(model: object, terms: dict[str, Any]) -> Terms:
    """Validated, canonical terms for `model` (fields named as the API names them)."""
    if model == PER_UNIT:
        _only(terms, {"unit_amount"})
        return {"model": PER_UNIT, "unit_amount": _unit_amount(terms.get("unit_amount"), "unit_amount")}
    if model == PACKAGE:
        _only(terms, {"package_size", "package_amount"})
        size = terms.get("package_size")
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_PACKAGE_SIZE:
            raise InvalidPriceError(
                f"package_size must be an integer from 1 to {MAX_PACKAGE_SIZE}, got {size!r}", field="package_size"
            )
        amount = require_minor_units(terms.get("package_amount"), field="package_amount")
        return {"model": PACKAGE, "package_size": size, "package_amount": amount}
    if model in (GRADUATED, VOLUME):
        _only(terms, {"tiers"})
        return {"model": model, "tiers": _tiers(terms.get("tiers"))}
    raise InvalidPriceError(f"model must be one of {', '.join(MODELS)}, got {model!r}", field="model")


def _only(terms: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(terms) - allowed)
    if extra:
        raise InvalidPriceError(f"{extra[0]} does not belong to this price model", field=extra[0])


def _unit_amount(value: object, field: str) -> str:
    number = parse_decimal(value)
    if number is None or number < 0 or number > MAX_MINOR_UNITS:
        raise InvalidAmountError(
            f"{field} must be minor units from 0 to {MAX_MINOR_UNITS}, as an integer or a decimal string "
            f'such as "0.25", got {value!r}',
            field=field,
        )
    if _decimals(number) > UNIT_AMOUNT_DECIMALS:
        raise InvalidAmountError(f"{field} has more than {UNIT_AMOUNT_DECIMALS} decimal places", field=field)
    return canonical_decimal(number)


def _tiers(value: object) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_TIERS:
        raise InvalidPriceError(f"tiers must be a list of 1 to {MAX_TIERS} tiers", field="tiers")
    tiers: list[dict[str, Any]] = []
    previous = Decimal(0)
    for index, tier in enumerate(value):
        path = f"tiers[{index}]"
        if not isinstance(tier, dict):
            raise InvalidPriceError(f"{path} must be an object", field=path)
        _only_tier(tier, path)
        last = index == len(value) - 1
        up_to = tier.get("up_to")
        bound: Decimal | None = None
        if last:
            if up_to is not None:
                raise InvalidPriceError(f"{path}.up_to must be null: the last tier is unbounded", field=f"{path}.up_to")
        else:
            bound = parse_decimal(up_to)
            if bound is None or bound <= previous or bound > MAX_TIER_BOUND or _decimals(bound) > USAGE_DECIMALS:
                raise InvalidPriceError(
                    f"{path}.up_to must be a quantity above the previous tier's ({canonical_decimal(previous)}), "
                    f"as an integer or a decimal string; only the last tier has null",
                    field=f"{path}.up_to",
                )
            previous = bound
        tiers.append(
            {
                "up_to": None if bound is None else canonical_decimal(bound),
                "unit_amount": _unit_amount(tier.get("unit_amount", 0), f"{path}.unit_amount"),
                "flat_amount": require_minor_units(tier.get("flat_amount", 0), field=f"{path}.flat_amount"),
            }
        )
    return tiers


def _only_tier(tier: dict[str, Any], path: str) -> None:
    extra = sorted(set(tier) - {"up_to", "unit_amount", "flat_amount"})
    if extra:
        raise InvalidPriceError(f"{path}.{extra[0]} is not a tier field", field=f"{path}.{extra[0]}")


def _decimals(number: Decimal) -> int:
    return decimal_places(number)


# ------------------------------------------------------------------------------ pricing


def price(terms: Terms, quantity: Decimal) -> Breakdown:
    """Price `quantity` (>= 0) under `terms` (as `require_terms` returned them)."""
    if quantity < 0:
        raise InvalidQuantityError(f"a usage quantity cannot be negative, got {quantity}", field="quantity")
    model = terms["model"]
    with money_context():  # exact, whatever the thread's context: a product that would round raises
        if model == PER_UNIT:
            parts = _per_unit(terms, quantity)
        elif model == PACKAGE:
            parts = _package(terms, quantity)
        elif model == GRADUATED:
            parts = _graduated(terms["tiers"], quantity)
        else:
            parts = _volume(terms["tiers"], quantity)
    return Breakdown(model=model, quantity=quantity, parts=tuple(parts))


def _per_unit(terms: Terms, quantity: Decimal) -> list[PricePart]:
    if quantity == 0:
        return []
    unit = Decimal(terms["unit_amount"])
    return [PricePart(None, quantity, unit, 0, round_half_up(quantity * unit))]


def _package(terms: Terms, quantity: Decimal) -> list[PricePart]:
    if quantity == 0:
        return []
    size, amount = terms["package_size"], terms["package_amount"]
    whole, part = divmod(quantity, size)  # exact, where quantity / size may not be (1 / 3)
    packages = int(whole) + (1 if part else 0)
    return [PricePart(None, quantity, Decimal(amount), 0, packages * amount, packages=packages, package_size=size)]


def _graduated(tiers: list[dict[str, Any]], quantity: Decimal) -> list[PricePart]:
    parts: list[PricePart] = []
    lower = Decimal(0)
    for number, tier in enumerate(tiers, start=1):
        if quantity <= lower:
            break
        upper = None if tier["up_to"] is None else Decimal(tier["up_to"])
        units = quantity - lower if upper is None else min(quantity, upper) - lower
        unit = Decimal(tier["unit_amount"])
        flat = tier["flat_amount"]
        parts.append(PricePart(number, units, unit, flat, round_half_up(units * unit) + flat, lower, upper))
        if upper is None:
            break
        lower = upper
    return parts


def _volume(tiers: list[dict[str, Any]], quantity: Decimal) -> list[PricePart]:
    if quantity == 0:
        return []
    lower = Decimal(0)
    for number, tier in enumerate(tiers, start=1):
        upper = None if tier["up_to"] is None else Decimal(tier["up_to"])
        if upper is None or quantity <= upper:
            unit = Decimal(tier["unit_amount"])
            flat = tier["flat_amount"]
            return [PricePart(number, quantity, unit, flat, round_half_up(quantity * unit) + flat, lower, upper)]
        lower = upper
    raise AssertionError("the last tier is unbounded")  # require_terms guarantees it
