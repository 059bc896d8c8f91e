"""`ledger reconcile` as an operator runs it, on both backends, against Stripe's stand-in over HTTP:
the report in each format, the exit statuses, resolving items, and reading past runs back."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from adapters.bootstrap import bootstrap
from adapters.cli import main
from adapters.settings import Settings
from commands.application import BillingApplication
from commands.messages import NewLine
from ledger.invoices import PAID
from ledger.money import Money
from tests.reconciliation_contract import ITEM_FIELDS as CONTRACT_FIELDS
from tests.stripe_server import API_KEY, StripeServer

HEADINGS = {"gross", "refunds", "disputes", "fees", "net", "payouts"}
ITEM_FIELDS = list(CONTRACT_FIELDS)


@pytest.fixture
def ledger_env(database_url: str, stripe_server: StripeServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    monkeypatch.setenv("LEDGER_DATABASE_URL", database_url)
    monkeypatch.setenv("STRIPE_API_KEY", API_KEY)
    monkeypatch.setenv("STRIPE_API_BASE", stripe_server.base_url)
    monkeypatch.chdir(tmp_path)  # no stray .env from the developer's checkout
    return database_url


@pytest.fixture
def ledger(ledger_env: str) -> Iterator[BillingApplication]:
    """The ledger the CLI reads, for seeding what Stripe's webhooks would have recorded."""
    app = bootstrap(Settings(database_url=ledger_env))
    yield app
    app.close()


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _report(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    code, out, err = _run(capsys, "reconcile", "--format", "json", *argv)
    assert err == ""  # no progress display when stderr is not a terminal
    return code, json.loads(out), out


def _invoice(app: BillingApplication, amount: int, currency: str = "usd") -> UUID:
    invoice_id = app.create_draft(
        customer={"email": "ops@example.com", "name": "Ops"},
        currency=currency,
        lines=[NewLine(description="Support plan", quantity=1, unit_amount=amount)],
        due_date="2030-01-31",
    ).result
    app.issue(invoice_id)
    return invoice_id


def _paid_on_both_sides(
    app: BillingApplication, stripe_server: StripeServer, amount: int, fee: int, *, created: int | None = None
) -> UUID:
    """An invoice Stripe collected (at `created`, default now) and whose webhook the ledger applied."""
    invoice_id = _invoice(app, amount)
    paid = stripe_server.seed_payment(amount=amount, fee=fee, invoice_id=str(invoice_id), created=created)
    app.record_provider_payment_succeeded(
        provider="stripe",
        provider_payment_id=paid.payment_intent,
        amount_captured=Money(amount, "usd"),
        fee=fee,
        charge_id=paid.charge,
        invoice_id=invoice_id,
    )
    return invoice_id


def _paid_in_stripe_only(app: BillingApplication, stripe_server: StripeServer, amount: int, fee: int) -> str:
    """An invoice Stripe collected whose webhook never arrived: its PaymentIntent's id."""
    invoice_id = _invoice(app, amount)
    return stripe_server.seed_payment(amount=amount, fee=fee, invoice_id=str(invoice_id)).payment_intent


def test_a_clean_period_prints_the_report_as_json_and_exits_zero(
    ledger: BillingApplication, stripe_server: StripeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _paid_on_both_sides(ledger, stripe_server, 49_900, 1_477)

    code, report, _ = _report(capsys, "--source", "stripe")

    assert code == 0
    assert list(report) == ["period", "source", "summary", "items"]
    assert report["source"] == "stripe"
    assert set(report["period"]) == {"from", "to"}
    usd = report["summary"]["currencies"]["usd"]
    assert set(usd["ledger"]) == set(usd["stripe"]) == HEADINGS
    assert (
        usd["ledger"]
        == usd["stripe"]
        == {
            "gross": 49_900,
            "refunds": 0,
            "disputes": 0,
            "fees": 1_477,
            "net": 48_423,
            "payouts": 0,
        }
    )
    assert usd["difference"] == 0
    assert set(report["summary"]["classes"].values()) == {0}
    assert report["summary"]["matched"]["payments"] == 1
    assert report["items"] == []


def test_open_items_exit_one_and_read_the_same_in_json_csv_and_a_table_of_100_columns(
    ledger: BillingApplication, stripe_server: StripeServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _paid_on_both_sides(ledger, stripe_server, 49_900, 1_477)
    intents = [_paid_in_stripe_only(ledger, stripe_server, amount, 378) for amount in (12_000, 8_800)]

    code, report, _ = _report(capsys)

    assert code == 1
    assert sorted(item["stripe_id"] for item in report["items"]) == sorted(intents)
    for item in report["items"]:
        assert list(item) == ITEM_FIELDS
        assert (item["class"], item["status"], item["amount_ledger"]) == ("missing_in_ledger", "open", None)
    assert report["summary"]["classes"]["missing_in_ledger"] == 2
    assert report["summary"]["currencies"]["usd"]["difference"] == -(12_000 + 8_800)

    code, out, err = _run(capsys, "reconcile", "--format", "csv")
    assert (code, err) == (1, "")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [list(row) for row in rows] == [ITEM_FIELDS] * 2
    assert [row["id"] for row in rows] == [item["id"] for item in report["items"]]  # same items, same order
    for row, item in zip(rows, report["items"], strict=True):
        assert row["amount_stripe"] == str(item["amount_stripe"])
        assert row["amount_ledger"] == ""
        assert (row["class"], row["stripe_id"], row["invoice_id"]) == (
            item["class"],
            item["stripe_id"],
            item["invoice_id"],
        )
        assert row["explanation"] == item["explanation"]
        assert json.loads(row["events"]) == item["events"]
        assert row["resolution"] == ""

    table_file = tmp_path / "report.txt"
    code, out, err = _run(capsys, "reconcile", "--format", "table", "--output", str(table_file))
    assert (code, out, err) == (1, "", "")
    table = table_file.read_text(encoding="utf-8")
    assert max(len(line) for line in table.splitlines()) <= 100
    words = " ".join(table.split())
    for item in report["items"]:
        assert f"{item['class']} [open] {item['id']}" in words
        assert " ".join(item["explanation"].split()) in words
        assert any(item["stripe_id"] in line and item["invoice_id"] in line for line in table.splitlines())

    json_file = tmp_path / "report.json"
    code, out, _ = _run(capsys, "reconcile", "--format", "json", "--output", str(json_file))
    assert (code, out) == (1, "")
    assert [item["id"] for item in json.loads(json_file.read_text(encoding="utf-8"))["items"]] == [
        item["id"] for item in report["items"]
    ]


def test_the_ledger_alone_needs_no_key_and_stripe_without_a_key_is_a_clear_error(
    ledger: BillingApplication,
    stripe_server: StripeServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _paid_on_both_sides(ledger, stripe_server, 49_900, 1_477)
    monkeypatch.delenv("STRIPE_API_KEY")

    code, report, _ = _report(capsys, "--source", "ledger")
    assert code == 0
    assert report["source"] == "ledger"
    assert report["summary"]["currencies"]["usd"]["ledger"]["gross"] == 49_900
    assert report["summary"]["currencies"]["usd"]["stripe"] is None
    assert stripe_server.requests == []  # the ledger alone asks Stripe nothing

    code, default, _ = _report(capsys)  # no key: the ledger alone
    assert (code, default["source"]) == (0, "ledger")

    code, out, err = _run(capsys, "reconcile", "--source", "stripe")
    assert (code, out) == (2, "")
    assert "STRIPE_API_KEY" in err
    assert "Traceback" not in err


def test_a_refused_key_is_a_clear_error_naming_it_masked_and_the_run_is_recorded_failed(
    ledger: BillingApplication, stripe_server: StripeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _paid_on_both_sides(ledger, stripe_server, 49_900, 1_477)
    stripe_server.fail_next("authentication")

    code, out, err = _run(capsys, "reconcile", "--source", "stripe")

    assert (code, out) == (2, "")
    assert "sk_test_...6789" in err
    assert API_KEY not in err
    assert "Traceback" not in err
    code, history, _ = _run(capsys, "reconcile", "history")
    assert code == 0
    [failed] = [line for line in history.splitlines()[1:] if line.strip()]
    run_id, *_, status, items = failed.split()
    assert (status, items) == ("failed", "0")

    code, shown, err = _run(capsys, "reconcile", "show", run_id, "--format", "json")
    assert code == 0
    assert f"run {run_id} is failed" in err
    assert "sk_test_...6789" in json.loads(shown)["summary"]["failure"]
    code, table, _ = _run(capsys, "reconcile", "show", run_id)
    assert code == 0
    assert table.splitlines()[0] == f"Reconciliation {run_id} (stripe)"


def test_an_explained_item_stays_explained_and_a_past_report_still_shows_it_open(
    ledger: BillingApplication, stripe_server: StripeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    intent = _paid_in_stripe_only(ledger, stripe_server, 12_000, 378)
    code, first, printed = _report(capsys)
    assert code == 1
    [item] = first["items"]

    code, out, err = _run(
        capsys,
        "reconcile",
        "resolve",
        item["id"],
        "--action",
        "explain",
        "--note",
        "paid twice by the customer",
        "--by",
        "ana",
    )
    assert (code, err) == (0, "")
    assert item["id"] in out
    assert "explained" in out

    code, again, _ = _report(capsys)
    assert code == 0  # nothing open: an explained item is settled
    [explained] = again["items"]
    assert (explained["id"], explained["stripe_id"], explained["status"]) == (item["id"], intent, "explained")
    assert explained["resolution"]["note"] == "paid twice by the customer"
    assert (explained["resolution"]["by"], explained["resolution"]["action"]) == ("ana", "explain")
    assert explained["detected_at"] == item["detected_at"]
    assert again["summary"]["classes"]["missing_in_ledger"] == 0

    code, shown, err = _run(capsys, "reconcile", "show", first["summary"]["run"], "--format", "json")
    assert (code, err) == (0, "")
    assert shown == printed  # exactly as printed then: open, though it is explained now
    code, shown, _ = _run(capsys, "reconcile", "show", again["summary"]["run"], "--format", "json")
    assert json.loads(shown) == again

    code, out, err = _run(capsys, "reconcile", "resolve", item["id"], "--action", "explain", "--note", "again")
    assert (code, out) == (2, "")
    assert "Traceback" not in err


def test_apply_brings_the_missing_payment_in_and_the_books_agree(
    ledger: BillingApplication, stripe_server: StripeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    intent = _paid_in_stripe_only(ledger, stripe_server, 12_000, 378)
    _, first, _ = _report(capsys)
    [item] = first["items"]

    code, out, err = _run(capsys, "reconcile", "resolve", item["id"], "--action", "apply", "--note", "webhook lost")
    assert (code, err) == (0, "")
    assert "resolved" in out

    code, again, _ = _report(capsys)
    assert code == 0
    [applied] = again["items"]
    assert (applied["id"], applied["status"], applied["resolution"]["action"]) == (item["id"], "resolved", "apply")
    assert applied["resolution"]["events"]  # the events that brought the payment in
    usd = again["summary"]["currencies"]["usd"]
    assert usd["ledger"] == usd["stripe"]
    assert usd["difference"] == 0
    assert ledger.invoice(UUID(item["invoice_id"])).status == PAID
    assert intent == item["stripe_id"]


def test_history_lists_the_runs_newest_first_and_bad_ids_are_clear_errors(
    ledger: BillingApplication, stripe_server: StripeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _paid_in_stripe_only(ledger, stripe_server, 12_000, 378)
    _, stripe_run, _ = _report(capsys)
    _, ledger_run, _ = _report(capsys, "--source", "ledger")

    code, out, _ = _run(capsys, "reconcile", "history")

    assert code == 0
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert lines[0].split() == ["run", "started", "(UTC)", "source", "period", "status", "items"]
    assert [line.split()[0] for line in lines[1:]] == [ledger_run["summary"]["run"], stripe_run["summary"]["run"]]
    start, end = stripe_run["period"]["from"][:10], stripe_run["period"]["to"][:10]
    period = f"{start}..{end[5:] if end[:4] == start[:4] else end}"
    assert [line.split()[3:] for line in lines[1:]] == [
        ["ledger", period, "completed", "0"],
        ["stripe", period, "completed", "1"],
    ]

    for argv, named in (
        (("resolve", "not-an-id", "--action", "explain", "--note", "x"), "not-an-id"),
        (("show", "not-an-id"), "not-an-id"),
        (("--from", "2026-03-02T00:00:00Z", "--to", "2026-03-01T00:00:00Z"), "end after it starts"),
        (("--from", "0001-01-01T00:00:00+01:00"), "UTC can hold"),
    ):
        code, out, err = _run(capsys, "reconcile", *argv)
        assert (code, out) == (2, "")
        assert named in err
        assert "Traceback" not in err
    for argv in (("--stuck-after", "0"), ("history", "--limit", "0")):
        with pytest.raises(SystemExit) as exited:  # argparse's own refusal, with the usage
            main(["reconcile", *argv])
        assert exited.value.code == 2
        assert "is not at least 1" in capsys.readouterr().err
    code, _, err = _run(capsys, "reconcile", "show", "9f4c2a10-0000-4000-8000-000000000000")
    assert code == 3
    assert "not found" in err


def test_a_duplicate_payment_is_refunded_through_stripe_from_the_command_line(
    ledger: BillingApplication, stripe_server: StripeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    an_hour_ago = int(time.time()) - 3600
    invoice_id = _paid_on_both_sides(ledger, stripe_server, 49_900, 1_477, created=an_hour_ago)
    again = stripe_server.seed_payment(amount=49_900, fee=1_477, invoice_id=str(invoice_id))
    ledger.record_provider_payment_succeeded(
        provider="stripe",
        provider_payment_id=again.payment_intent,
        amount_captured=Money(49_900, "usd"),
        fee=1_477,
        charge_id=again.charge,
        invoice_id=invoice_id,
    )
    code, report, _ = _report(capsys)
    assert code == 1
    [duplicate] = report["items"]
    assert duplicate["class"] == "duplicate_payment"

    code, out, err = _run(
        capsys, "reconcile", "resolve", duplicate["id"], "--action", "refund_duplicate", "--note", "paid twice"
    )

    assert (code, err) == (0, "")
    assert "resolved (refund_duplicate)" in out
    [sent] = stripe_server.requests_to("POST", "/v1/refunds")
    assert (sent.form["charge"], sent.form["amount"]) == (again.charge, "49900")
