"""`ledger serve` delivers mail itself when LEDGER_SMTP_URL is set, and `ledger demo --serve`
keeps the demo's mail in a folder: real processes, a real SMTP server."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from adapters.mail.capture import captured
from tests.e2e.conftest import INVOICE
from tests.e2e.test_serve import _env, running
from tests.mail_server import MailServer
from tests.pg_cluster import free_port

T = TypeVar("T")


def eventually(check: Callable[[], T | None], what: str, seconds: float = 60) -> T:
    """The check's first truthy answer; fails naming `what` when none comes."""
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.2)


def test_serve_mails_each_issued_invoice_once_with_its_in_process_worker(
    database_url: str, mail_server: MailServer, tmp_path: Path
) -> None:
    # On PostgreSQL two web workers each run the mail loop: the claim keeps them from sending twice.
    workers = "2" if database_url.startswith("postgresql") else "1"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = _env(
        database_url,
        LEDGER_API_TOKEN="serve-token-123",
        LEDGER_SMTP_URL=mail_server.url,
        LEDGER_MAIL_ON_ISSUE="1",
        LEDGER_SECRET_KEY="serve-mail-portal-secret-0123456789abcdef",
        LEDGER_PUBLIC_URL=base,
    )
    auth = {"Authorization": "Bearer serve-token-123"}
    with running(["serve", "--port", str(port), "--workers", workers], env, tmp_path, port):
        numbers = []
        for n in range(2):
            created = httpx.post(f"{base}/api/invoices", json=INVOICE, headers=auth, timeout=30)
            assert created.status_code == 201, created.text
            issued = httpx.post(f"{base}/api/invoices/{created.json()['id']}/issue", headers=auth, timeout=30)
            assert issued.status_code == 200, issued.text
            numbers.append(issued.json()["number"])
            eventually(lambda n=n: len(mail_server.messages) > n, f"the email of {numbers[-1]}")  # type: ignore[misc]
        # Both invoices' emails arrived, the first before the second was issued: each exactly once.
        subjects = sorted(str(m["Subject"]) for m in mail_server.messages)
        assert subjects == sorted(f"Invoice {number} from Billing Ledger" for number in numbers)
        for message in mail_server.messages:  # each with its portal link, which opens the invoice
            text = message.get_body(("plain",))
            assert text is not None
            link = re.search(r"View and pay it online: (\S+)", str(text.get_content()))
            assert link is not None
            assert link.group(1).startswith(f"{base}/portal/")
            page = httpx.get(link.group(1), timeout=30)
            assert page.status_code == 200
            assert str(message["Subject"]).split()[1] in page.text


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_demo_keeps_its_mail_in_the_folder_it_prints(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    with running(["demo", "--serve", "--port", str(port)], _env(database_url), tmp_path, port) as process:
        assert process.stdout is not None
        printed = ""
        while "Ctrl-C" not in printed:
            printed += process.stdout.readline()
        assert "keeps every email in var/demo-mail/" in printed
        assert "ledger mail list" in printed
        folder = tmp_path / "var" / "demo-mail"
        kept = eventually(lambda: len(captured(folder)) >= 2 and captured(folder), "the seeded emails captured")
        subjects = {k.subject.split(" ")[0] for k in kept}
        assert subjects == {"Invoice", "Reminder:"}
        for entry in kept:  # each file is the message as it arrived, PDF and all
            message = message_from_bytes((folder / entry.file).read_bytes(), policy=policy.default)
            assert isinstance(message, EmailMessage)
            assert message["Subject"] == entry.subject
            assert [part.get_content_type() for part in message.iter_attachments()] == ["application/pdf"]
            # LEDGER_PUBLIC_URL unset: the demo sets it to its own address, so its links open here.
            text = message.get_body(("plain",))
            assert text is not None
            link = re.search(r"View and pay it online: (\S+)", str(text.get_content()))
            assert link is not None, "the demo's mail carries a portal link"
            assert link.group(1).startswith(f"http://127.0.0.1:{port}/portal/")
            page = httpx.get(link.group(1), timeout=30)
            assert page.status_code == 200, page.text
