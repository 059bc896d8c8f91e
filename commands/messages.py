"""Command inputs that carry more than an id: what a caller asks the ledger to record.

Fields are typed `object` on purpose: callers hand over what they received (parsed JSON, CLI
arguments) and the domain validates it, so one set of rules and error messages serves all.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class NewLine:
    """A line to price: quantity (int or decimal string) x unit_amount (minor units)."""

    description: object
    quantity: object
    unit_amount: object
    tax_rate: object = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
