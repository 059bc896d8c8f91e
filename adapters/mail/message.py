"""The email of an invoice: `build_invoice_message(...) -> email.message.EmailMessage`.

Standard library only (email.message with policy.default): a plain-text part and an HTML
alternative saying the same, and the invoice's PDF attached as `<number>.pdf` (adapters/pdf's
`file_name`: safe characters only). Names go into headers encoded as RFC 2047 words when they
are not ASCII; everything the customer or the seller typed (names, memo) is escaped in the
HTML. The Message-ID is derived from the email's id, so every attempt of one email carries the
same one: a receiver that got the message before a crash kept us from recording it can drop
the second copy.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from html import escape
from uuid import UUID

from adapters.pdf.figures import file_name
from adapters.persistence import ConfigurationError
from ledger.invoices import Invoice
from ledger.mail.emails import REMINDER
from ledger.money import Money
from ledger.seller import Seller

DEFAULT_MAIL_FROM = "billing@localhost"
# Control characters (C0, DEL, C1) and Unicode's line and paragraph separators: the email
# package refuses a header holding any character str.splitlines() breaks at (U+2028, U+0085, ...).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def sender_address(mail_from: str | None, seller: Seller) -> Address:
    """LEDGER_MAIL_FROM (`billing@example.com` or `Acme Billing <billing@example.com>`) as the
    From address; without a name of its own it shows the seller's."""
    name, address = parseaddr(mail_from or DEFAULT_MAIL_FROM)
    if "@" not in address:
        raise ConfigurationError(f"LEDGER_MAIL_FROM is not an email address: {mail_from!r}")
    try:
        return Address(display_name=_one_line(name or seller.name), addr_spec=address)
    except (ValueError, IndexError):
        raise ConfigurationError(f"LEDGER_MAIL_FROM is not an email address: {mail_from!r}") from None


def message_id_for(email_id: UUID, sender: Address) -> str:
    """`<email-id@sender's domain>`: the same for every attempt of one email."""
    return f"<{email_id}@{sender.domain or 'ledger'}>"


def subject_of(invoice: Invoice, purpose: str, seller: Seller, at: datetime) -> str:
    number = invoice.number or "draft"
    if purpose == REMINDER:
        state = "is overdue" if _overdue(invoice, at) else "is due"
        return _one_line(f"Reminder: invoice {number} {state}")
    return _one_line(f"Invoice {number} from {seller.name}")


def _overdue(invoice: Invoice, at: datetime) -> bool:
    """Past its due date on the day the message is written (UTC, as the dunning counts days)."""
    return invoice.is_overdue(at.astimezone(UTC).date())


def build_invoice_message(
    invoice: Invoice,
    *,
    email_id: UUID,
    purpose: str,
    recipient: str,
    seller: Seller,
    mail_from: str | None,
    pdf: bytes,
    portal_url: str | None = None,
    at: datetime,
) -> EmailMessage:
    """The message of one invoice email (the invoice at the version it was queued with)."""
    sender = sender_address(mail_from, seller)
    message = EmailMessage()
    message["From"] = sender
    message["To"] = Address(display_name=_one_line(invoice.customer.get("name", "")), addr_spec=recipient)
    message["Subject"] = subject_of(invoice, purpose, seller, at)
    message["Date"] = format_datetime(at)
    message["Message-ID"] = message_id_for(email_id, sender)
    facts = _facts(invoice)
    message.set_content(_text(invoice, purpose, seller, facts, portal_url, at))
    message.add_alternative(_html(invoice, purpose, seller, facts, portal_url, at), subtype="html")
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename=file_name(invoice))
    return message


def _facts(invoice: Invoice) -> list[tuple[str, str]]:
    """What the message states, as (label, value)."""
    facts = [
        ("Invoice", invoice.number or "draft"),
        ("Total", Money(invoice.total, invoice.currency).format()),
        ("Amount due", Money(invoice.amount_due, invoice.currency).format()),
    ]
    if invoice.due_date:
        facts.append(("Due date", invoice.due_date))
    return facts


def _opening(invoice: Invoice, purpose: str, seller: Seller, at: datetime) -> str:
    number = invoice.number or "draft"
    if purpose == REMINDER and _overdue(invoice, at):
        return (
            f"This is a reminder that invoice {number} from {seller.name} was due on {invoice.due_date} and is overdue."
        )
    if purpose == REMINDER and invoice.due_date:
        return f"This is a reminder that invoice {number} from {seller.name} is due on {invoice.due_date}."
    if purpose == REMINDER:
        return f"This is a reminder that invoice {number} from {seller.name} is due."
    return f"Please find attached invoice {number} from {seller.name}."


def _greeting(invoice: Invoice) -> str:
    name = _one_line(invoice.customer.get("name", ""))
    return f"Hello {name}," if name else "Hello,"


def _text(
    invoice: Invoice, purpose: str, seller: Seller, facts: list[tuple[str, str]], portal: str | None, at: datetime
) -> str:
    lines = [_greeting(invoice), "", _opening(invoice, purpose, seller, at), ""]
    width = max(len(label) for label, _ in facts)
    lines += [f"{label + ':':<{width + 1}} {value}" for label, value in facts]
    if invoice.memo:
        lines += ["", invoice.memo]
    if portal:
        lines += ["", f"View and pay it online: {portal}"]
    if seller.payment_instructions and invoice.amount_due > 0:
        lines += ["", seller.payment_instructions]
    lines += ["", "The invoice is attached as a PDF.", "", "--", seller.name, *seller.address]
    if seller.email:
        lines.append(seller.email)
    return "\n".join(lines) + "\n"


def _html(
    invoice: Invoice, purpose: str, seller: Seller, facts: list[tuple[str, str]], portal: str | None, at: datetime
) -> str:
    rows = "".join(f"<tr><th align='left'>{escape(label)}</th><td>{escape(value)}</td></tr>" for label, value in facts)
    parts = [
        "<!DOCTYPE html><html><body>",
        f"<p>{escape(_greeting(invoice))}</p>",
        f"<p>{escape(_opening(invoice, purpose, seller, at))}</p>",
        f"<table>{rows}</table>",
    ]
    if invoice.memo:
        parts.append(f"<p>{escape(invoice.memo)}</p>")
    if portal:
        parts.append(f'<p><a href="{escape(portal, quote=True)}">View and pay it online</a></p>')
    if seller.payment_instructions and invoice.amount_due > 0:
        parts.append(f"<p>{escape(seller.payment_instructions)}</p>")
    signature = "<br>".join(escape(line) for line in (seller.name, *seller.address, seller.email) if line)
    parts += ["<p>The invoice is attached as a PDF.</p>", f"<p>{signature}</p>", "</body></html>"]
    return "\n".join(parts) + "\n"


def _one_line(text: str) -> str:
    """A header value: no line breaks or control characters, whatever was typed. Nor an RFC 2047
    encoded word ("=?utf-8?q?...?="): the email package writes one typed into a display name as
    it is, and the receiver decodes it into the header's syntax (a name
    "=?utf-8?q?Bcc=3A_x=40evil.example?=" would show as a group "Bcc:" holding x@evil.example)."""
    return _CONTROL.sub(" ", text).replace("=?", "= ?").strip()
