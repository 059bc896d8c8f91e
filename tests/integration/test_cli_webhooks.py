"""`ledger webhooks list|reprocess` as an operator runs them, on both backends."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest

from adapters.bootstrap import bootstrap
from adapters.cli import main
from adapters.clock import ManualClock
from adapters.settings import Settings
from commands.application import BillingApplication
from commands.ingestion import stripe_events
from commands.ingestion.provider_events import VerifiedEvent
from commands.messages import NewLine
from tests.stripe_payloads import verified_event


@pytest.fixture
def ledger_env(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    monkeypatch.setenv("LEDGER_DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)  # no stray .env from the developer's checkout
    return database_url


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _paid(event_id: str, intent: str, invoice_id: UUID | None) -> VerifiedEvent:
    return verified_event(
        event_id,
        "payment_intent.succeeded",
        "payment_intent",
        id=intent,
        amount=10_000,
        amount_received=10_000,
        currency="usd",
        status="succeeded",
        metadata={"invoice_id": str(invoice_id)} if invoice_id else {},
    )


def _seed(database_url: str) -> UUID:
    """An unmatched payment, an ignored event, and an applied one, a minute apart; the invoice
    the unmatched payment is for, its PaymentIntent known only afterwards."""
    clock = ManualClock(datetime.now(tz=UTC) - timedelta(hours=1))
    app: BillingApplication = bootstrap(Settings(database_url=database_url), clock=clock)
    try:
        invoice_id = app.create_draft(
            customer={"email": "ap@acme.example"}, currency="usd", lines=[NewLine("Fee", 1, 10_000)]
        ).result
        app.issue(invoice_id)
        other = app.create_draft(
            customer={"email": "ap@acme.example"}, currency="usd", lines=[NewLine("Fee", 1, 10_000)]
        ).result
        app.issue(other)
        for event in [
            _paid("evt_1Early", "pi_1Early", None),
            verified_event("evt_1Customer", "customer.created", "customer", id="cus_1"),
            _paid("evt_1Paid", "pi_1Paid", other),
        ]:
            clock.advance(timedelta(minutes=1))
            stripe_events.ingest(app, event)
        app.initiate_provider_payment(invoice_id, provider="stripe", provider_payment_id="pi_1Early")
        return invoice_id
    finally:
        app.close()


def test_webhooks_list_shows_each_event_newest_first_as_a_table_or_json(
    ledger_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _seed(ledger_env)
    code, out, _ = _run(capsys, "webhooks", "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["received", "at", "event", "type", "object", "status", "detail"]
    assert [line.split()[2] for line in lines[1:]] == ["evt_1Paid", "evt_1Customer", "evt_1Early"]
    assert "unmatched" in lines[3]
    assert "pi_1Early" in lines[3]

    code, out, _ = _run(capsys, "webhooks", "list", "--status", "unmatched", "--format", "json")
    assert code == 0
    listed = json.loads(out)
    assert [(e["id"], e["status"], e["type"]) for e in listed["data"]] == [
        ("evt_1Early", "unmatched", "payment_intent.succeeded")
    ]
    assert listed["next_cursor"] is None

    code, out, _ = _run(capsys, "webhooks", "list", "--limit", "1", "--format", "json")
    first = json.loads(out)
    assert [e["id"] for e in first["data"]] == ["evt_1Paid"]
    cursor = first["next_cursor"]
    code, out, _ = _run(capsys, "webhooks", "list", "--limit", "2", "--cursor", cursor, "--format", "json")
    assert [e["id"] for e in json.loads(out)["data"]] == ["evt_1Customer", "evt_1Early"]


def test_webhooks_reprocess_applies_an_unmatched_event_once(
    ledger_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    invoice_id = _seed(ledger_env)
    code, out, _ = _run(capsys, "webhooks", "reprocess", "evt_1Early")
    assert code == 0
    assert out.startswith("evt_1Early: unmatched -> applied (reprocessing 1): payment ")

    code, _, err = _run(capsys, "webhooks", "reprocess", "evt_1Early")
    assert code == 2
    assert "is applied and is not handled again: it was applied already" in err
    code, _, err = _run(capsys, "webhooks", "reprocess", "evt_1Never")
    assert code == 3
    assert "no stripe event evt_1Never was received" in err

    app = bootstrap(Settings(database_url=ledger_env))
    try:
        assert app.invoice(invoice_id).amount_paid == 10_000
    finally:
        app.close()
    code, out, _ = _run(capsys, "webhooks", "list", "--status", "applied", "--format", "json")
    assert [e["id"] for e in json.loads(out)["data"]] == ["evt_1Paid", "evt_1Early"]
