"""Meters: what is counted, and how a period's usage records become one billable quantity.

A meter has a key, a display name, the `event_name` of its Stripe Billing Meter, and an
aggregation: `sum` (of quantities), `count` (of records), `max` (largest quantity) or `last`
(the quantity of the latest record by timestamp; on a tie, the one recorded later). A period's
records are summarised as `Stats`, which hold all four at once and merge associatively, so a
batch of records, or a late one, is folded in without reading the records again. Stats are
plain JSON (decimals as canonical strings) so they can live in events.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from ledger.errors import InvalidMeterError, InvalidQuantityError, InvalidTextError
from ledger.rounding import money_context
from ledger.usage.pricing import USAGE_DECIMALS
from ledger.validation import NAME_LIMIT, canonical_decimal, decimal_places, parse_decimal, require_text

SUM = "sum"
COUNT = "count"
MAX = "max"
LAST = "last"
AGGREGATIONS = (SUM, COUNT, MAX, LAST)

KEY_LIMIT = 64
EVENT_NAME_LIMIT = 100  # Stripe's limit on a meter's event_name
MAX_RECORD_QUANTITY = Decimal(10**12)
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")

Stats = dict[str, Any]


def key_matches(value: str) -> bool:
    return _KEY.fullmatch(value) is not None


def require_key(value: object, *, field: str) -> str:
    """A key chosen by the integrator: 1 to 64 of letters, digits and `_ . : -`, URL-safe."""
    if not isinstance(value, str) or not _KEY.fullmatch(value):
        raise InvalidTextError(
            f"{field} must be 1 to {KEY_LIMIT} letters, digits, '_', '.', ':' or '-', starting with a letter "
            f"or digit, got {value!r}",
            field=field,
        )
    return value


def require_meter(key: object, name: object, event_name: object, aggregation: object) -> dict[str, str]:
    """A meter definition as stored: {key, name, event_name, aggregation}."""
    checked_key = require_key(key, field="key")
    if aggregation not in AGGREGATIONS:
        raise InvalidMeterError(
            f"aggregation must be one of {', '.join(AGGREGATIONS)}, got {aggregation!r}", field="aggregation"
        )
    event = checked_key if event_name is None else require_text(event_name, field="event_name", limit=EVENT_NAME_LIMIT)
    if not re.fullmatch(r"[A-Za-z0-9_.:-]+", event):
        raise InvalidMeterError("event_name may hold letters, digits and '_ . : -' only", field="event_name")
    return {
        "key": checked_key,
        "name": require_text(name, field="name", limit=NAME_LIMIT),
        "event_name": event,
        "aggregation": str(aggregation),
    }


def require_usage_quantity(value: object, *, field: str = "quantity") -> Decimal:
    """A record's quantity: 0 or more, an integer or a decimal string, at most 10**12."""
    number = parse_decimal(value)
    if number is None:
        raise InvalidQuantityError(
            f"{field} must be an integer or a decimal string, got {type(value).__name__} {value!r}", field=field
        )
    if number < 0 or number > MAX_RECORD_QUANTITY:
        raise InvalidQuantityError(f"{field} must be from 0 to {MAX_RECORD_QUANTITY}, got {value}", field=field)
    if decimal_places(number) > USAGE_DECIMALS:
        raise InvalidQuantityError(f"{field} has more than {USAGE_DECIMALS} decimal places", field=field)
    return number


# ------------------------------------------------------------------------------ stats


def empty_stats() -> Stats:
    return {"sum": "0", "count": 0, "max": None, "last": None, "last_at": None}


class BatchStats:
    """The stats of one batch, per period and meter, kept as Decimals until the batch is done
    (a batch of 500 records is one conversion to text per period and meter, not 500)."""

    def __init__(self) -> None:
        self._held: dict[tuple[str, str], list[Any]] = {}  # [sum, count, max, last, last_at]

    def add(self, period: str, meter: str, quantity: Decimal, at: str) -> None:
        held = self._held.get((period, meter))
        if held is None:
            self._held[(period, meter)] = [quantity, 1, quantity, quantity, at]
            return
        with money_context():  # exact whatever the calling thread's context (a sum can outgrow 28 digits)
            held[0] += quantity
        held[1] += 1
        if quantity > held[2]:
            held[2] = quantity
        if at >= held[4]:
            held[3], held[4] = quantity, at

    def as_json(self) -> dict[str, dict[str, Stats]]:
        usage: dict[str, dict[str, Stats]] = {}
        for (period, meter), (total, count, largest, last, last_at) in self._held.items():
            usage.setdefault(period, {})[meter] = {
                "sum": canonical_decimal(total),
                "count": count,
                "max": canonical_decimal(largest),
                "last": canonical_decimal(last),
                "last_at": last_at,
            }
        return usage


def merge(into: Stats, other: Stats) -> None:
    """Fold `other` into `into`. Associative; `last` prefers the later timestamp, then `other`."""
    with money_context():  # a sum that would round raises instead
        into["sum"] = canonical_decimal(Decimal(into["sum"]) + Decimal(other["sum"]))
    into["count"] += other["count"]
    if other["max"] is not None and (into["max"] is None or Decimal(other["max"]) > Decimal(into["max"])):
        into["max"] = other["max"]
    if other["last_at"] is not None and (into["last_at"] is None or other["last_at"] >= into["last_at"]):
        into["last"] = other["last"]
        into["last_at"] = other["last_at"]


def quantity_of(stats: Stats | None, aggregation: str) -> Decimal:
    """The billable quantity of a period's stats under the meter's aggregation (0 for no usage)."""
    if stats is None:
        return Decimal(0)
    if aggregation == SUM:
        return Decimal(stats["sum"])
    if aggregation == COUNT:
        return Decimal(stats["count"])
    value = stats["max"] if aggregation == MAX else stats["last"]
    return Decimal(0) if value is None else Decimal(value)
