"""Invoice lines from a priced usage breakdown: one line per tier part, one per flat fee.

Lines are priced by `Line.price`, the one path every invoice line takes, and each line's amount
equals its part's: a part whose units and unit amount an invoice line can hold exactly (an
integer unit amount, units above 0 and within the line limits) becomes `units x unit_amount`;
otherwise (a decimal unit amount such as 0.25 cents, or more units than a line holds) it
becomes one line of quantity 1 at the part's rounded amount, with the units and the unit
amount in its description (as does a package part of more packages than a line holds).
Either way the part was rounded once, in ledger.usage.pricing, and the line does not round again.
"""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID, uuid5

from ledger.lines import MAX_QUANTITY, QUANTITY_DECIMALS, Line
from ledger.rounding import money_context
from ledger.usage.pricing import PACKAGE, VOLUME, Breakdown, PricePart
from ledger.validation import DESCRIPTION_LIMIT, canonical_decimal, decimal_places


def line_id(invoice_id: UUID, number: int) -> str:
    """Derived line ids: closing a period builds the same invoice whenever it is retried."""
    return str(uuid5(invoice_id, f"line-{number}"))


def usage_lines(meter_name: str, breakdown: Breakdown, invoice_id: UUID, first: int) -> list[Line]:
    if not breakdown.parts:
        text = f"{meter_name}: no usage"
        return [_line(invoice_id, first, text, 1, 0)]
    lines: list[Line] = []
    for part in breakdown.parts:
        for text, quantity, unit in _part_lines(meter_name, breakdown, part):
            lines.append(_line(invoice_id, first + len(lines), text, quantity, unit))
    return lines


def adjustment_line(
    meter_name: str, span: str, before: str, now: str, delta: int, invoice_id: UUID, number: int
) -> Line:
    """Late usage for a closed period: the difference in price, never an edit of that invoice."""
    text = (
        f"Adjustment for late usage, {meter_name}, period {span}: billed for {before}, now {now}; difference in price"
    )
    return _line(invoice_id, number, text, 1, delta)


def _part_lines(meter_name: str, breakdown: Breakdown, part: PricePart) -> list[tuple[str, object, int]]:
    units = canonical_decimal(part.units)
    unit = canonical_decimal(part.unit_amount)
    if breakdown.model == PACKAGE:
        text = f"{meter_name}: {units} units in {part.packages} package(s) of {part.package_size}"
        if part.packages is not None and part.packages > MAX_QUANTITY:  # more than a line's quantity holds
            return [(f"{text} x {unit}", 1, part.amount)]
        return [(text, part.packages, int(part.unit_amount))]
    label = meter_name if part.tier is None else f"{meter_name}, tier {part.tier} ({_range(part)})"
    if breakdown.model == VOLUME:
        label = f"{meter_name}, all {units} units at tier {part.tier} ({_range(part)})"
    found: list[tuple[str, object, int]] = []
    if _exact(part):
        found.append((f"{label}: {units} x {unit}", units, int(part.unit_amount)))
    else:
        with money_context():  # the shown product is exact, whatever the thread's context
            exact = canonical_decimal(part.units * part.unit_amount)
        found.append((f"{label}: {units} x {unit} = {exact}, rounded half-up", 1, part.unit_total))
    if part.flat_amount:
        found.append((f"{label}: flat fee", 1, part.flat_amount))
    return found


def _exact(part: PricePart) -> bool:
    decimals = decimal_places(part.units)
    return (
        part.unit_amount == part.unit_amount.to_integral_value()
        and Decimal(0) < part.units <= MAX_QUANTITY
        and decimals <= QUANTITY_DECIMALS
    )


def _range(part: PricePart) -> str:
    lower = canonical_decimal(part.lower or Decimal(0))
    return f"above {lower}" if part.upper is None else f"above {lower} up to {canonical_decimal(part.upper)}"


def _line(invoice_id: UUID, number: int, text: str, quantity: object, unit_amount: int) -> Line:
    return Line.price(
        line_id=line_id(invoice_id, number),
        description=text[:DESCRIPTION_LIMIT],
        quantity=quantity,
        unit_amount=unit_amount,
    )
