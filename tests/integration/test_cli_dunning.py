"""`ledger dunning run` as an operator runs it, on both backends, with Stripe's stand-in over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from uuid import UUID

import pytest

from adapters.bootstrap import bootstrap
from adapters.cli import main
from adapters.clock import ManualClock
from adapters.settings import Settings
from commands.messages import NewLine
from ledger.invoices import OPEN, UNCOLLECTIBLE
from ledger.money import Money
from tests.stripe_server import API_KEY, StripeServer

SCHEDULE = "reminder:1,retry:3,uncollectible:10"


@pytest.fixture
def ledger_env(database_url: str, stripe_server: StripeServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    monkeypatch.setenv("LEDGER_DATABASE_URL", database_url)
    monkeypatch.setenv("STRIPE_API_KEY", API_KEY)
    monkeypatch.setenv("STRIPE_API_BASE", stripe_server.base_url)
    monkeypatch.setenv("LEDGER_DUNNING_SCHEDULE", SCHEDULE)
    monkeypatch.setenv("LEDGER_DUNNING_MAX_ATTEMPTS", "3")
    monkeypatch.chdir(tmp_path)  # no stray .env from the developer's checkout
    return database_url


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _event_count(database_url: str) -> int:
    app = bootstrap(Settings(database_url=database_url))
    try:
        return app.head()
    finally:
        app.close()


def _seed(database_url: str, stripe_server: StripeServer, due: datetime) -> tuple[UUID, UUID, str]:
    """Two invoices due on `due`'s day: one paid by card that was declined, one sent for transfer."""
    app = bootstrap(Settings(database_url=database_url), clock=ManualClock(due - timedelta(days=5)))
    try:
        ids = []
        for email in ("card@example.com", "transfer@example.com"):
            invoice_id = app.create_draft(
                customer={"email": email, "name": email.split("@")[0]},
                currency="usd",
                lines=[NewLine(description="Support plan", quantity=1, unit_amount=49_900)],
                due_date=due.date().isoformat(),
            ).result
            app.issue(invoice_id)
            ids.append(invoice_id)
        intent = stripe_server.add_failed_payment_intent(amount=49_900, currency="usd", invoice_id=str(ids[0]))
        app.record_provider_payment_failed(
            provider="stripe",
            provider_payment_id=intent,
            attempt_id="ch_declined",
            code="insufficient_funds",
            message="Your card has insufficient funds.",
            invoice_id=ids[0],
            amount=Money(49_900, "usd"),
        )
        return ids[0], ids[1], intent
    finally:
        app.close()


def test_dunning_run_reminds_retries_then_marks_uncollectible_and_repeats_nothing(
    ledger_env: str, stripe_server: StripeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    due = datetime.combine(datetime.now(tz=UTC).date() - timedelta(days=20), time(9), tzinfo=UTC)
    by_card, by_transfer, intent = _seed(ledger_env, stripe_server, due)
    stripe_server.confirm_outcomes(intent, "declined")

    code, out, _ = _run(capsys, "dunning", "run", "--at", (due + timedelta(days=1)).isoformat())
    assert code == 0
    assert f"({SCHEDULE}; at most 3 attempts)" in out
    assert out.count("dunning started") == 2
    assert out.count("step 1 (reminder:1) reminder requested: scheduled") == 2
    assert "looked at 2 invoices: 2 started, 2 reminders, 0 retries, 0 skipped, 0 uncollectible, 0 stopped" in out
    events = _event_count(ledger_env)

    code, again, _ = _run(capsys, "dunning", "run", "--at", (due + timedelta(days=1)).isoformat())
    assert code == 0
    assert "looked at 2 invoices: 0 started, 0 reminders, 0 retries" in again
    assert _event_count(ledger_env) == events

    code, out, _ = _run(capsys, "dunning", "run", "--at", (due + timedelta(days=3, hours=2)).isoformat())
    assert code == 0
    assert f"{by_card}  step 2 (retry:3) payment retry requested: {intent}: declined" in out
    assert f"{by_transfer}  step 2 (retry:3) reminder requested: nothing to retry" in out
    [confirm] = stripe_server.requests_to("POST", f"/v1/payment_intents/{intent}/confirm")
    assert confirm.headers["idempotency-key"] == f"dunning-{by_card}-step-1"
    app = bootstrap(Settings(database_url=ledger_env))
    try:
        assert app.invoice(by_card).status == OPEN
    finally:
        app.close()

    code, out, _ = _run(capsys, "dunning", "run")  # now: 20 days after the due date
    assert code == 0
    assert out.count("step 3 (uncollectible:10) marked uncollectible: schedule") == 2
    app = bootstrap(Settings(database_url=ledger_env))
    try:
        assert {app.invoice(by_card).status, app.invoice(by_transfer).status} == {UNCOLLECTIBLE}
    finally:
        app.close()
    code, out, _ = _run(capsys, "dunning", "run")
    assert "0 uncollectible, 2 stopped" not in out  # an exhausted dunning is finished, not stopped
    assert "0 started, 0 reminders, 0 retries, 0 skipped, 0 uncollectible, 0 stopped" in out


def test_dunning_run_refuses_a_future_moment_and_bad_settings(
    ledger_env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    future = (datetime.now(tz=UTC) + timedelta(days=1)).isoformat()
    code, _, err = _run(capsys, "dunning", "run", "--at", future)
    assert code == 2
    assert "is in the future" in err

    monkeypatch.setenv("LEDGER_DUNNING_SCHEDULE", "retry:3,reminder:1")
    code, _, err = _run(capsys, "dunning", "run")
    assert code == 2
    assert "ledger: LEDGER_DUNNING_SCHEDULE: dunning step reminder:1 comes before day 3" in err
    assert _event_count(ledger_env) == 0


def test_without_a_stripe_key_retries_become_reminders(
    ledger_env: str, stripe_server: StripeServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    due = datetime.combine(datetime.now(tz=UTC).date() - timedelta(days=20), time(9), tzinfo=UTC)
    by_card, _, _ = _seed(ledger_env, stripe_server, due)
    monkeypatch.delenv("STRIPE_API_KEY")
    code, out, _ = _run(capsys, "dunning", "run", "--at", (due + timedelta(days=3)).isoformat())
    assert code == 0
    assert "STRIPE_API_KEY is unset: retry steps become reminders" in out
    assert f"{by_card}  step 2 (retry:3) reminder requested: no payment provider configured" in out
    assert stripe_server.requests_to("POST", "/v1/payment_intents") == []


def test_an_unreachable_stripe_leaves_the_step_for_the_next_run(
    ledger_env: str, stripe_server: StripeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    due = datetime.combine(datetime.now(tz=UTC).date() - timedelta(days=20), time(9), tzinfo=UTC)
    by_card, _, intent = _seed(ledger_env, stripe_server, due)
    moment = (due + timedelta(days=3)).isoformat()
    stripe_server.fail_next("api_error", times=10)  # the SDK's own network retries included
    code, out, _ = _run(capsys, "dunning", "run", "--at", moment)
    assert code == 1
    assert f"{by_card}: not advanced: Stripe:" in out
    assert "1 not advanced" in out
    stripe_server.state.failures.clear()
    code, out, _ = _run(capsys, "dunning", "run", "--at", moment)
    assert code == 0
    assert f"payment retry requested: {intent}: succeeded" in out
