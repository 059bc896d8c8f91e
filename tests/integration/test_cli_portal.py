"""`ledger portal` as an operator runs it, on both backends: a link for a customer, for an
invoice by id or number, listed and revoked; and a clear refusal without LEDGER_SECRET_KEY."""

from __future__ import annotations

import re
from pathlib import Path
from uuid import UUID

import pytest

from adapters.bootstrap import bootstrap
from adapters.cli import main
from adapters.settings import Settings
from commands.messages import NewLine
from commands.portal.tokens import link_id_from

SECRET = "cli-portal-secret-0123456789abcdef-0123"


@pytest.fixture
def ledger_env(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    monkeypatch.setenv("LEDGER_DATABASE_URL", database_url)
    monkeypatch.setenv("LEDGER_SECRET_KEY", SECRET)
    monkeypatch.setenv("LEDGER_PUBLIC_URL", "https://billing.example")
    monkeypatch.chdir(tmp_path)  # no stray .env from the developer's checkout
    return database_url


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _issued_invoice(database_url: str) -> tuple[UUID, str]:
    app = bootstrap(Settings(database_url=database_url))
    try:
        invoice_id = app.create_draft(
            customer={"email": "Ann@Customer.example", "name": "Ann"},
            currency="usd",
            lines=[NewLine("Plan", 1, 5_000)],
        ).result
        app.issue(invoice_id)
        number = app.invoice(invoice_id).number
        assert number is not None
        return invoice_id, number
    finally:
        app.close()


def _link_id(url: str) -> UUID:
    token = re.search(r"/portal/([^/\s]+)", url)
    assert token, url
    return link_id_from(token.group(1), SECRET)


def test_links_for_a_customer_and_an_invoice_are_printed_listed_and_revoked(
    ledger_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    invoice_id, number = _issued_invoice(ledger_env)

    code, out, err = _run(capsys, "portal", "link", "ann@customer.example", "--expires", "2w")
    assert code == 0, err
    url, about = out.splitlines()
    assert re.fullmatch(r"https://billing\.example/portal/[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}", url)
    customer_link = _link_id(url)
    assert about.startswith(f"link id {customer_link} for ann@customer.example, until ")

    for target in (str(invoice_id), number):
        code, out, err = _run(capsys, "portal", "link", target)
        assert code == 0, err
        assert out.splitlines()[0].endswith(f"/invoices/{invoice_id}")

    code, out, _ = _run(capsys, "portal", "list", "--customer", "ANN@customer.example")
    assert code == 0
    assert str(customer_link) in out
    assert out.count("active") == 3

    code, out, _ = _run(capsys, "portal", "revoke", str(customer_link), "--reason", "sent to the wrong person")
    assert (code, out.strip()) == (0, f"link {customer_link} revoked")
    code, out, _ = _run(capsys, "portal", "revoke", str(customer_link))
    assert out.strip() == f"link {customer_link} was already revoked"
    _, out, _ = _run(capsys, "portal", "list")
    assert out.count("revoked") == 1


def test_unknown_targets_exit_3(ledger_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "portal", "link", "INV-999999")
    assert code == 3
    assert "not found" in err
    code, _, err = _run(capsys, "portal", "revoke", "3f2b8a52-6f0e-4c1e-9d7a-0b5e1c2d3e4f")
    assert code == 3


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_without_a_secret_key_no_link_is_made(
    ledger_env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LEDGER_SECRET_KEY")
    monkeypatch.delenv("LEDGER_PUBLIC_URL")
    code, out, err = _run(capsys, "portal", "link", "ann@customer.example")
    assert code == 2
    assert out == ""
    assert "set LEDGER_SECRET_KEY" in err


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_demo_prints_a_portal_link_signed_with_the_key_it_names(
    ledger_env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LEDGER_SECRET_KEY")
    code, out, err = _run(capsys, "demo")
    assert code == 0, err
    secret = re.search(r"export LEDGER_SECRET_KEY=(\S+)", out)
    url = re.search(r"(https://billing\.example/portal/\S+/invoices/[0-9a-f-]{36})", out)
    assert secret, out
    assert url, out
    token = url.group(1).split("/portal/")[1].split("/")[0]
    app = bootstrap(Settings(database_url=ledger_env))
    try:
        link = app.portal.link(link_id_from(token, secret.group(1)))
        assert link is not None
        invoice = app.invoice(UUID(url.group(1).rsplit("/", 1)[1]))
        assert link.shows(invoice.customer["email"])
        assert invoice.status == "open"
    finally:
        app.close()
