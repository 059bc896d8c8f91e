"""The double-entry journal: every posting, with the event it came from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table, insert

from ledger.accounting import postings_for
from ledger.invoices import Invoice
from projections.invoice_states import InvoiceStates, LoadInvoice
from projections.tables import journal
from projections.tracked import Positioned


class JournalProjection:
    name = "journal"
    tables: tuple[Table, ...] = (journal,)

    def __init__(self, load: LoadInvoice) -> None:
        self.states = InvoiceStates(load)

    def process(self, conn: Connection, batch: Sequence[Positioned]) -> None:
        rows: list[dict[str, Any]] = []
        for position, event in batch:
            if not isinstance(event, Invoice.Event):
                continue
            invoice = self.states.apply(event)
            for line, posting in enumerate(postings_for(event, invoice.currency)):
                rows.append(
                    {
                        "position": position,
                        "line": line,
                        "invoice_id": str(invoice.id),
                        "event_topic": getattr(type(event), "TOPIC", type(event).__name__),
                        "event_version": event.originator_version,
                        "occurred_at": event.timestamp,
                        "account": posting.account,
                        "currency": posting.currency,
                        "debit": posting.debit,
                        "credit": posting.credit,
                    }
                )
        if rows:
            conn.execute(insert(journal), rows)

    def reset(self) -> None:
        self.states.forget()
