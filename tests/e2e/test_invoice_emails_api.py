"""`POST /api/invoices/{id}/send` through the served app, then the mail worker, then the message at
a real SMTP server; the portal link in it, opened; the email resources and the refusals."""

from __future__ import annotations

import re
from typing import Any

import httpx

from adapters.mail.smtp import SmtpSender
from adapters.mail.smtp_url import parse_smtp_url
from adapters.mail.worker import MailCounts, MailWorker, mail_worker
from adapters.settings import Settings
from ledger.seller import Seller
from tests.e2e.conftest import INVOICE, SECRET_KEY, Api
from tests.e2e.test_openapi import conforms
from tests.mail_server import MailServer


def _issued(api: Api) -> dict[str, Any]:
    created = api.client.post("/api/invoices", json=INVOICE)
    issued = api.client.post(f"/api/invoices/{created.json()['id']}/issue")
    assert issued.status_code == 200
    body: dict[str, Any] = issued.json()
    return body


def _worker(api: Api, server: MailServer) -> MailWorker:
    sender = SmtpSender(parse_smtp_url(server.url))
    return MailWorker(api.app, api.engine, sender, seller=Seller(name="Acme Billing"), clock=api.clock)


def test_a_sent_invoice_reaches_the_server_and_the_invoice_does_not_move(api: Api, mail_server: MailServer) -> None:
    invoice = _issued(api)
    invoice_id = invoice["id"]

    sent = api.client.post(f"/api/invoices/{invoice_id}/send")

    assert sent.status_code == 202
    email = sent.json()
    assert sent.headers["Location"] == f"/api/invoices/{invoice_id}/emails/{email['id']}"
    assert {k: email[k] for k in ("object", "invoice_id", "purpose", "recipient", "status", "attempts")} == {
        "object": "invoice_email",
        "invoice_id": invoice_id,
        "purpose": "invoice",
        "recipient": INVOICE["customer"]["email"],
        "status": "queued",
        "attempts": 0,
    }
    assert email["invoice_version"] == invoice["version"]
    assert (email["sent_at"], email["message_id"], email["last_error"]) == (None, None, None)

    assert _worker(api, mail_server).run_once() == MailCounts(sent=1)

    [message] = mail_server.messages
    assert message["Subject"] == f"Invoice {invoice['number']} from Acme Billing"
    assert message["To"].addresses[0].addr_spec == INVOICE["customer"]["email"]
    followed = api.client.get(f"/api/invoices/{invoice_id}/emails/{email['id']}").json()
    assert followed["status"] == "sent"
    assert followed["message_id"] == message["Message-ID"]
    assert followed["sent_at"] is not None
    listed = api.client.get(f"/api/invoices/{invoice_id}/emails").json()
    assert [e["id"] for e in listed["data"]] == [email["id"]]
    assert listed["data"][0]["status"] == "sent"
    after = api.client.get(f"/api/invoices/{invoice_id}")
    assert after.headers["ETag"] == f'"{invoice["version"]}"'


def test_sending_again_is_the_same_email_unless_a_resend_is_asked_for(api: Api) -> None:
    invoice_id = _issued(api)["id"]
    first = api.client.post(f"/api/invoices/{invoice_id}/send").json()
    again = api.client.post(f"/api/invoices/{invoice_id}/send", json={"resend": False}).json()
    assert again["id"] == first["id"]

    headers = {"Idempotency-Key": "resend-1"}
    resent = api.client.post(f"/api/invoices/{invoice_id}/send", json={"resend": True}, headers=headers)
    retried = api.client.post(f"/api/invoices/{invoice_id}/send", json={"resend": True}, headers=headers)
    assert resent.status_code == retried.status_code == 202
    assert resent.json()["id"] == retried.json()["id"] != first["id"]
    listed = api.client.get(f"/api/invoices/{invoice_id}/emails").json()["data"]
    assert len(listed) == 2


def test_a_draft_is_refused_and_an_unknown_invoice_or_email_is_not_found(api: Api) -> None:
    draft = api.client.post("/api/invoices", json=INVOICE).json()

    refused = api.client.post(f"/api/invoices/{draft['id']}/send")
    assert refused.status_code == 409
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert refused.json()["type"] == "urn:ledger:problem:invoice-not-sendable"
    assert "draft" in refused.json()["detail"]

    unknown = "00000000-0000-4000-8000-000000000000"
    assert api.client.post(f"/api/invoices/{unknown}/send").status_code == 404
    assert api.client.get(f"/api/invoices/{unknown}/emails").status_code == 404
    assert api.client.get(f"/api/invoices/{draft['id']}/emails").json()["data"] == []
    assert api.client.get(f"/api/invoices/{draft['id']}/emails/{unknown}").status_code == 404
    assert api.client.get(f"/api/invoices/{draft['id']}/emails/not-a-uuid").status_code == 404


def test_a_bad_body_is_refused(api: Api) -> None:
    invoice_id = _issued(api)["id"]
    bad = api.client.post(f"/api/invoices/{invoice_id}/send", json={"resend": "yes"})
    assert bad.status_code == 422
    unknown = api.client.post(f"/api/invoices/{invoice_id}/send", json={"to": "x@example.com"})
    assert unknown.status_code == 422
    assert api.client.get(f"/api/invoices/{invoice_id}/emails").json()["data"] == []


def test_the_portal_link_in_the_email_opens_the_invoice_for_its_customer(
    api: Api, mail_server: MailServer, database_url: str
) -> None:
    invoice = _issued(api)
    api.client.post(f"/api/invoices/{invoice['id']}/send")
    # The worker `ledger serve` runs, with the server's secret and its address as the public URL.
    settings = Settings(
        database_url=database_url, smtp_url=mail_server.url, secret_key=SECRET_KEY, public_url=api.base_url
    )
    assert mail_worker(api.app, api.engine, settings).run_once() == MailCounts(sent=1)

    [message] = mail_server.messages
    text = message.get_body(("plain",))
    assert text is not None
    found = re.search(r"View and pay it online: (\S+)", str(text.get_content()))
    assert found is not None
    url = found.group(1)
    assert url.startswith(f"{api.base_url.rstrip('/')}/portal/")
    assert url.endswith(f"/invoices/{invoice['id']}")

    with httpx.Client() as customer:  # no API token: the link is all the customer has
        page = customer.get(url)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert invoice["number"] in page.text
    assert page.headers["Referrer-Policy"] == "no-referrer"


def test_an_email_withdrawn_before_delivery_shows_why(api: Api, mail_server: MailServer) -> None:
    invoice_id = _issued(api)["id"]
    email = api.client.post(f"/api/invoices/{invoice_id}/send").json()
    assert api.client.post(f"/api/invoices/{invoice_id}/void").status_code == 200

    assert _worker(api, mail_server).run_once() == MailCounts(withdrawn=1)

    assert mail_server.messages == []
    followed = api.client.get(f"/api/invoices/{invoice_id}/emails/{email['id']}").json()
    assert (followed["status"], followed["next_attempt_at"], followed["sent_at"]) == ("withdrawn", None, None)
    assert "was voided after the email was queued" in followed["last_error"]
    conforms(followed, "InvoiceEmailResource")
    [listed] = api.client.get(f"/api/invoices/{invoice_id}/emails").json()["data"]
    assert listed == followed
