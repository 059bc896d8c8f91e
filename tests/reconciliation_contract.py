"""The reconciliation item's fixed JSON shape, as the design brief and issue 12 state it: the tests hold
the code to this list, written here once rather than read from the code under test."""

from __future__ import annotations

ITEM_FIELDS = (
    "id",
    "class",
    "status",
    "currency",
    "amount_ledger",
    "amount_stripe",
    "stripe_id",
    "invoice_id",
    "payment_id",
    "explanation",
    "events",
    "detected_at",
    "resolution",
)
