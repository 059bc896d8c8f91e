"""Invoice states folded from the log as a projection reads it, without replaying per event.

Read models need the invoice as it stood at each event (its currency for postings, its totals
for the status row). Folding each event onto the state kept from the previous one is O(1) per
event. A state that is missing or out of step (after a restart, or a rolled-back batch) is
reloaded from the event store at the version just before the event.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from uuid import UUID

from ledger.invoices import Invoice

LoadInvoice = Callable[[UUID, int], Invoice]


class InvoiceStates:
    def __init__(self, load: LoadInvoice, max_size: int = 50_000) -> None:
        self._load = load
        self._states: OrderedDict[UUID, Invoice] = OrderedDict()
        self._max_size = max_size

    def apply(self, event: Invoice.Event) -> Invoice:
        """The invoice right after `event`."""
        invoice_id = event.originator_id
        previous = self._states.pop(invoice_id, None)
        if event.originator_version == 1:
            previous = None
        elif previous is None or previous.version != event.originator_version - 1:
            previous = self._load(invoice_id, event.originator_version - 1)
        invoice = event.mutate(previous)
        if not isinstance(invoice, Invoice):
            raise TypeError(f"{type(event).__name__} did not yield an invoice")
        self._states[invoice_id] = invoice
        if len(self._states) > self._max_size:
            self._states.popitem(last=False)
        return invoice

    def forget(self) -> None:
        """Drop every state: after a failed batch, they may be ahead of what was committed."""
        self._states.clear()
