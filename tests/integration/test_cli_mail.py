"""`ledger invoice send` and `ledger mail run|list` as an operator runs them, on both backends,
against a real SMTP server."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import pytest

from adapters.bootstrap import bootstrap
from adapters.cli import main
from adapters.settings import Settings
from commands.messages import NewLine
from tests.mail_server import MailServer


@pytest.fixture
def ledger_env(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    monkeypatch.setenv("LEDGER_DATABASE_URL", database_url)
    monkeypatch.delenv("LEDGER_SMTP_URL", raising=False)
    monkeypatch.delenv("LEDGER_SECRET_KEY", raising=False)  # no portal link unless a test sets them
    monkeypatch.delenv("LEDGER_PUBLIC_URL", raising=False)
    monkeypatch.setenv("LEDGER_MAIL_FROM", "Acme Billing <billing@acme.example>")
    monkeypatch.chdir(tmp_path)  # no stray .env from the developer's checkout
    return database_url


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _invoices(database_url: str) -> tuple[UUID, UUID]:
    """An issued invoice and a draft."""
    app = bootstrap(Settings(database_url=database_url))
    try:
        ids = [
            app.create_draft(
                customer={"email": "ap@example.com", "name": "Example Ltd"},
                currency="eur",
                lines=[NewLine("Support plan", 1, 49_900, None)],
            ).result
            for _ in range(2)
        ]
        app.issue(ids[0])
        return ids[0], ids[1]
    finally:
        app.close()


def test_send_queues_once_and_mail_run_delivers_it(
    ledger_env: str, mail_server: MailServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    issued, _ = _invoices(ledger_env)

    code, out, _ = _run(capsys, "invoice", "send", str(issued))
    assert code == 0
    assert "queued; status queued" in out
    email_id = out.split()[1]
    code, out, _ = _run(capsys, "invoice", "send", str(issued))
    assert out.split()[1] == email_id
    assert "already queued" in out

    code, _, err = _run(capsys, "mail", "run")  # no LEDGER_SMTP_URL: says so, the email stays queued
    assert code == 2
    assert "LEDGER_SMTP_URL is unset" in err
    assert mail_server.messages == []

    monkeypatch.setenv("LEDGER_SMTP_URL", mail_server.url)
    code, out, _ = _run(capsys, "mail", "run")
    assert code == 0
    assert out.strip() == "1 sent, 0 failed (to retry), 0 bounced, 0 gave up, 0 skipped, 0 abandoned attempts"
    [message] = mail_server.messages
    assert message["From"].addresses[0].display_name == "Acme Billing"

    code, out, _ = _run(capsys, "mail", "list", "--invoice", str(issued))
    assert email_id in out
    assert " sent " in out


def test_send_deliver_with_resend_and_a_draft_refused(
    ledger_env: str, mail_server: MailServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    issued, draft = _invoices(ledger_env)
    monkeypatch.setenv("LEDGER_SMTP_URL", mail_server.url)

    code, out, _ = _run(capsys, "invoice", "send", str(issued), "--deliver")
    assert code == 0
    assert "status sent" in out
    code, out, _ = _run(capsys, "invoice", "send", str(issued), "--resend", "--deliver")
    assert "status sent" in out
    assert len(mail_server.messages) == 2

    code, _, err = _run(capsys, "invoice", "send", str(draft))
    assert code == 2
    assert "it is draft" in err


def test_the_mail_links_to_the_portal_and_an_email_of_an_invoice_voided_since_is_withdrawn(
    ledger_env: str, mail_server: MailServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    issued, _ = _invoices(ledger_env)
    monkeypatch.setenv("LEDGER_SMTP_URL", mail_server.url)
    monkeypatch.setenv("LEDGER_SECRET_KEY", "cli-mail-portal-secret-0123456789abcdefgh")
    monkeypatch.setenv("LEDGER_PUBLIC_URL", "https://billing.example.com")

    code, out, _ = _run(capsys, "invoice", "send", str(issued), "--deliver")
    assert "status sent" in out
    [message] = mail_server.messages
    text = message.get_body(("plain",))
    assert text is not None
    assert "View and pay it online: https://billing.example.com/portal/" in str(text.get_content())
    assert f"/invoices/{issued}\r\n" in str(text.get_content())  # the link opens on the invoice

    code, out, _ = _run(capsys, "invoice", "send", str(issued), "--resend")
    email_id = out.split()[1]
    app = bootstrap(Settings(database_url=ledger_env))
    try:
        app.void(issued)
    finally:
        app.close()
    code, out, _ = _run(capsys, "mail", "run")
    assert code == 0
    assert out.strip() == (
        "0 sent, 0 failed (to retry), 0 bounced, 0 gave up, 1 withdrawn, 0 skipped, 0 abandoned attempts"
    )
    assert len(mail_server.messages) == 1

    code, out, _ = _run(capsys, "mail", "list", "--status", "withdrawn")
    [line] = out.splitlines()
    assert line.startswith(email_id)
    assert " withdrawn " in line
    assert "was voided after the email was queued" in line
