"""The demo's capture server (adapters/mail/capture.py): what the mail worker sends it is kept as
.eml files with an index, across restarts."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import Engine

from adapters.mail.capture import INDEX, CaptureServer, captured
from adapters.mail.worker import mail_worker
from adapters.settings import Settings
from commands.application import BillingApplication
from commands.messages import NewLine
from ledger.mail.emails import INVOICE


def issued(app: BillingApplication, name: str) -> str:
    invoice_id = app.create_draft(
        customer={"email": "kunde@example.com", "name": name},
        currency="eur",
        lines=[NewLine(description="Beratung", quantity=2, unit_amount=45_000, tax_rate="19")],
        due_date="2026-04-01",
    ).result
    app.issue(invoice_id)
    app.mail.queue(invoice_id, purpose=INVOICE, trigger="cli")
    number = app.invoice(invoice_id).number
    assert number is not None
    return number


def test_the_worker_delivers_into_files_the_index_lists(
    app: BillingApplication, engine: Engine, database_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "demo-mail"
    with CaptureServer(folder) as server:
        assert server.url == f"smtp://127.0.0.1:{server.port}"
        assert server.port > 0
        number = issued(app, "Jürgen Müller")
        counts = mail_worker(app, engine, Settings(database_url=database_url, smtp_url=server.url)).run_once()
        assert counts.sent == 1
        [kept] = server.messages()
    assert kept.subject == f"Invoice {number} from Billing Ledger"
    assert kept.rcpt_tos == ["kunde@example.com"]
    assert kept.mail_from == "billing@localhost"
    assert sorted(p.name for p in folder.iterdir()) == sorted([kept.file, INDEX])
    message = message_from_bytes((folder / kept.file).read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    assert message["Message-ID"] == kept.message_id
    assert str(message["To"]) == "Jürgen Müller <kunde@example.com>"
    [pdf] = list(message.iter_attachments())
    assert pdf.get_content().startswith(b"%PDF")


def test_a_restarted_server_adds_to_what_it_kept(
    app: BillingApplication, engine: Engine, database_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "mail"
    for name in ("Ada", "Grace"):
        with CaptureServer(folder) as server:
            issued(app, name)
            mail_worker(app, engine, Settings(database_url=database_url, smtp_url=server.url)).run_once()
    kept = captured(folder)
    assert len(kept) == 2
    assert len({k.file for k in kept}) == 2  # numbered on from the index: nothing overwritten
    assert all((folder / k.file).exists() for k in kept)
    assert captured(tmp_path / "nothing-here") == []
