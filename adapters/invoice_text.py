"""Plain-text views of invoices and their history, for the command line."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields, is_dataclass
from datetime import date

from ledger.invoices import Invoice
from ledger.money import Money

_BASE_FIELDS = {"originator_id", "originator_version", "timestamp", "originator_topic"}


def money(amount: int, currency: str) -> str:
    return Money(amount, currency).format()


def invoice_text(invoice: Invoice, *, today: date) -> str:
    c = invoice.currency
    status = invoice.status + (" (overdue)" if invoice.is_overdue(today) else "")
    out = [
        f"Invoice {invoice.number or '(draft, unnumbered)'}   id {invoice.id}   version {invoice.version}",
        f"  status     {status}",
        f"  customer   {invoice.customer['name']} <{invoice.customer['email']}>",
        f"  currency   {c}",
        f"  created    {invoice.created_on.isoformat()}",
        f"  issued     {invoice.issued_at.isoformat() if invoice.issued_at else '-'}",
        f"  due        {invoice.due_date or '-'}",
    ]
    if invoice.memo:
        out.append(f"  memo       {invoice.memo}")
    out.append("  lines")
    for line in invoice.lines.values():
        rate = f" + {line.tax_rate}% tax" if line.tax_rate is not None else ""
        out.append(
            f"    {line.description[:40]:<40} {line.quantity:>10} x {money(line.unit_amount, c):>16}{rate}"
            f"  = {money(line.amount, c)}"
        )
    figures = [
        ("subtotal", invoice.subtotal),
        ("tax", invoice.tax),
        ("total", invoice.total),
        ("amount paid", invoice.amount_paid),
        ("amount refunded", invoice.amount_refunded),
        ("amount due", invoice.amount_due),
    ]
    if invoice.amount_overpaid:
        figures.append(("overpaid (credit)", invoice.amount_overpaid))
    if invoice.amount_disputed:
        figures.append(("disputed (open)", invoice.amount_disputed))
    if invoice.amount_dispute_lost:
        figures.append(("disputes lost", invoice.amount_dispute_lost))
    if invoice.written_off:
        figures.append(("written off", invoice.written_off))
    out.extend(f"  {label:<18} {money(amount, c):>20}" for label, amount in figures)
    for attempt in invoice.failed_attempts:
        out.append(f"  failed attempt {attempt['at']}: {attempt['code']} {attempt['message']}")
    return "\n".join(out)


def history_text(events: Iterable[Invoice.Event]) -> str:
    rows = []
    for event in events:
        details = ""
        if is_dataclass(event):
            details = ", ".join(
                f"{f.name}={getattr(event, f.name)!r}" for f in fields(event) if f.name not in _BASE_FIELDS
            )
        topic = getattr(type(event), "TOPIC", "?")
        rows.append(f"  v{event.originator_version:<4} {event.timestamp.isoformat()}  {topic:<32} {details}")
    return "\n".join(rows)
