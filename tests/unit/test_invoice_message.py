"""The invoice email's message: headers, escaped HTML, the portal link, the attachment."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from uuid import UUID

import pytest

from adapters.mail.message import build_invoice_message
from adapters.persistence import ConfigurationError
from ledger.invoices import Invoice
from ledger.lines import Line
from ledger.seller import Seller
from tests.unit.given import T0, at

EMAIL_ID = UUID("6f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0")
SELLER = Seller(name="Acme Billing", payment_instructions="IBAN DE00 <b>0000</b>")
PDF = b"%PDF-1.7 not really\n"


def invoice(name: str = "Zoë <script>alert(1)</script>", currency: str = "kwd") -> Invoice:
    draft = Invoice.create_draft(
        invoice_id=UUID(int=1),
        customer={"email": "zoe@example.com", "name": name},
        currency=currency,
        due_date="2026-04-01",
        memo="Thanks <img src=x onerror=alert(2)>",
        at=T0,
    )
    draft.add_line(Line.price(line_id="l1", description="Work", quantity=1, unit_amount=1_250_500), at=at(1))
    draft.issue(sequence=42, at=at(2))
    return draft


def build(inv: Invoice, **options: object) -> EmailMessage:
    given: dict[str, object] = {
        "email_id": EMAIL_ID,
        "purpose": "invoice",
        "recipient": "zoe@example.com",
        "seller": SELLER,
        "mail_from": None,
        "pdf": PDF,
        "at": at(3),
        **options,
    }
    message = build_invoice_message(inv, **given)  # type: ignore[arg-type]
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)  # as a receiver reads it
    assert isinstance(parsed, EmailMessage)
    return parsed


def parts(message: EmailMessage) -> tuple[str, str]:
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None
    assert html is not None
    return str(text.get_content()), str(html.get_content())


def test_the_html_escapes_what_the_customer_typed_and_the_text_keeps_it() -> None:
    text, html = parts(build(invoice(), portal_url="https://pay.example/portal/t0k?a=1&b=2"))
    assert "<script>" not in html
    assert "<img" not in html
    assert "&lt;script&gt;" in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html
    assert "&lt;b&gt;0000&lt;/b&gt;" in html
    assert 'href="https://pay.example/portal/t0k?a=1&amp;b=2"' in html
    assert "Zoë <script>alert(1)</script>" in text
    assert "https://pay.example/portal/t0k?a=1&b=2" in text
    for body in (text, html):
        assert "1,250.500 KWD" in body
        assert "INV-000042" in body
        assert "2026-04-01" in body


def test_without_a_portal_link_the_message_has_none() -> None:
    text, html = parts(build(invoice()))
    assert "online" not in text
    assert "<a " not in html


def test_headers_subject_sender_and_a_message_id_stable_per_email() -> None:
    message = build(invoice())
    assert message["Subject"] == "Invoice INV-000042 from Acme Billing"
    assert str(message["From"]) == "Acme Billing <billing@localhost>"
    assert message["Message-ID"] == f"<{EMAIL_ID}@localhost>"
    assert build(invoice(), at=at(60))["Message-ID"] == message["Message-ID"]
    own = build(invoice(), mail_from="Billing Team <billing@acme.example>", purpose="reminder")
    assert str(own["From"]) == "Billing Team <billing@acme.example>"
    assert own["Message-ID"] == f"<{EMAIL_ID}@acme.example>"
    assert own["Subject"] == "Reminder: invoice INV-000042 is due"


def test_a_reminder_says_when_the_invoice_is_due_or_that_it_is_overdue() -> None:
    before = build(invoice(), purpose="reminder", at=datetime(2026, 3, 29, 9, tzinfo=UTC))
    on_the_day = build(invoice(), purpose="reminder", at=datetime(2026, 4, 1, 23, tzinfo=UTC))
    after = build(invoice(), purpose="reminder", at=datetime(2026, 4, 2, 0, 30, tzinfo=UTC))
    for message in (before, on_the_day):
        assert message["Subject"] == "Reminder: invoice INV-000042 is due"
        assert "is due on 2026-04-01." in parts(message)[0]
    assert after["Subject"] == "Reminder: invoice INV-000042 is overdue"
    text, html = parts(after)
    assert "was due on 2026-04-01 and is overdue." in text
    assert "was due on 2026-04-01 and is overdue." in html


def test_a_name_cannot_add_headers() -> None:
    message = build(invoice(name="Eve\r\nBcc: everyone@example.com"))
    assert message["Bcc"] is None
    assert message["To"].addresses[0].addr_spec == "zoe@example.com"


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85", "\x0b", "\x1c"])
def test_a_unicode_line_break_in_a_name_neither_breaks_the_message_nor_adds_headers(separator: str) -> None:
    seller = Seller(name=f"Acme{separator}Bcc: everyone@example.com")
    message = build(invoice(name=f"Eve{separator}Bcc: everyone@example.com"), seller=seller)
    assert message["Bcc"] is None
    assert message["Subject"] == "Invoice INV-000042 from Acme Bcc: everyone@example.com"
    assert [address.addr_spec for address in message["To"].addresses] == ["zoe@example.com"]


def test_an_encoded_word_typed_as_a_name_stays_text() -> None:
    # Written as it is, the receiver would read `To: Bcc: x@evil <zoe@example.com>`: a group.
    message = build(invoice(name="=?utf-8?q?Bcc=3A_x=40evil?="))
    [address] = message["To"].addresses
    assert address.addr_spec == "zoe@example.com"
    assert "x=40evil" in address.display_name  # shown as typed, not decoded into an address
    assert message["To"].groups[0].display_name is None


def test_the_pdf_is_attached_under_the_invoice_number() -> None:
    [attachment] = list(build(invoice()).iter_attachments())
    assert (attachment.get_content_type(), attachment.get_filename()) == ("application/pdf", "INV-000042.pdf")
    assert attachment.get_content() == PDF


@pytest.mark.parametrize("mail_from", ["billing", "not an address", "<>"])
def test_a_sender_that_is_no_address_is_a_configuration_error(mail_from: str) -> None:
    with pytest.raises(ConfigurationError, match="LEDGER_MAIL_FROM"):
        build(invoice(), mail_from=mail_from)
