"""Who issues the invoices: the seller's name, address and payment instructions, as printed on
every invoice PDF and email (LEDGER_SELLER_* settings, adapters/settings.py)."""

from __future__ import annotations

from dataclasses import dataclass

from ledger.errors import InvalidTextError

NAME_LIMIT = 200
LINE_LIMIT = 200
MAX_ADDRESS_LINES = 6
INSTRUCTIONS_LIMIT = 1_000


@dataclass(frozen=True)
class Seller:
    name: str = "Billing Ledger"
    address: tuple[str, ...] = ()
    email: str = ""
    tax_id: str = ""
    # Printed under the totals of every invoice with an amount due (a bank account, say).
    payment_instructions: str = ""

    def __post_init__(self) -> None:
        if not self.name.strip() or len(self.name) > NAME_LIMIT:
            raise InvalidTextError(f"the seller's name must be 1 to {NAME_LIMIT} characters", field="seller.name")
        if len(self.address) > MAX_ADDRESS_LINES or any(len(line) > LINE_LIMIT for line in self.address):
            raise InvalidTextError(
                f"the seller's address is at most {MAX_ADDRESS_LINES} lines of {LINE_LIMIT} characters",
                field="seller.address",
            )
        if len(self.payment_instructions) > INSTRUCTIONS_LIMIT:
            raise InvalidTextError(
                f"the payment instructions are at most {INSTRUCTIONS_LIMIT} characters",
                field="seller.payment_instructions",
            )
