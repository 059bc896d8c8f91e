"""The invoice and payment state machine on the in-memory event store (see machine.py)."""

from __future__ import annotations

from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from tests.property.machine import LedgerMachine

# The loaded profile ("dev", or "ci" when CI is set) decides derandomisation and printing.
MACHINE_SETTINGS = settings(max_examples=300, stateful_step_count=50)


def test_invoices_and_payments_keep_their_invariants() -> None:
    run_state_machine_as_test(LedgerMachine, settings=MACHINE_SETTINGS)
