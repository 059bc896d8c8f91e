"""The invoice story on real databases: every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from adapters.clock import ManualClock
from commands.application import BillingApplication
from commands.messages import NewLine
from commands.runner import Outcome
from ledger.errors import (
    CurrencyMismatchError,
    DuplicatePaymentError,
    IdempotencyKeyReusedError,
    InvalidQuantityError,
    InvalidTextError,
    InvoiceNotEditableError,
    InvoiceNotFoundError,
    InvoiceNotPayableError,
    StaleVersionError,
    UnknownCurrencyError,
)
from ledger.money import Money
from ledger.numbering import series_id
from ledger.payments import offline_payment_id
from tests.conftest import AppFactory

CUSTOMER = {"email": "ap@example.com", "name": "Example Ltd"}


def _open_invoice(app: BillingApplication, amount: int = 10_000, currency: str = "usd") -> str:
    invoice_id = app.create_draft(customer=CUSTOMER, currency=currency, lines=[NewLine("Work", 1, amount)]).result
    return str(invoice_id)


def test_a_draft_is_created_with_priced_lines_and_read_back(app: BillingApplication) -> None:
    invoice_id = app.create_draft(
        customer=CUSTOMER,
        currency="usd",
        due_date="2026-04-01",
        memo="Thanks",
        lines=[NewLine("Consulting", "2.5", 333, "10"), NewLine("Licence", 1, 5_000)],
    ).result
    invoice = app.invoice(invoice_id)
    assert invoice.status == "draft"
    assert invoice.number is None
    assert [line.amount for line in invoice.lines.values()] == [833, 5_000]  # 832.5 rounds half-up
    assert (invoice.subtotal, invoice.tax, invoice.total) == (5_833, 83, 5_916)
    assert invoice.due_date == "2026-04-01"


def test_issue_numbers_are_sequential_per_series(app: BillingApplication) -> None:
    numbers = []
    for series in ["INV", "INV", "CRD", "INV"]:
        invoice_id = app.create_draft(
            customer=CUSTOMER, currency="eur", series=series, lines=[NewLine("x", 1, 100)]
        ).result
        numbers.append(app.issue(invoice_id).result)
    assert numbers == ["INV-000001", "INV-000002", "CRD-000001", "INV-000003"]


def test_a_refused_issue_consumes_no_number(app: BillingApplication) -> None:
    empty = app.create_draft(customer=CUSTOMER, currency="usd").result
    with pytest.raises(Exception, match="no lines"):
        app.issue(empty)
    full = app.create_draft(customer=CUSTOMER, currency="usd", lines=[NewLine("x", 1, 100)]).result
    assert app.issue(full).result == "INV-000001"


def test_no_edit_after_issue_and_nothing_stored(app: BillingApplication) -> None:
    invoice_id = app.create_draft(customer=CUSTOMER, currency="usd", lines=[NewLine("x", 1, 100)]).result
    app.issue(invoice_id)
    version = app.invoice(invoice_id).version
    with pytest.raises(InvoiceNotEditableError):
        app.add_line(invoice_id, NewLine("late", 1, 100))
    assert app.invoice(invoice_id).version == version


def test_bad_input_is_refused_and_stores_nothing(app: BillingApplication) -> None:
    before = _event_count(app)
    with pytest.raises(UnknownCurrencyError):
        app.create_draft(customer=CUSTOMER, currency="usdx", lines=[NewLine("x", 1, 100)])
    with pytest.raises(InvalidQuantityError):
        app.create_draft(customer=CUSTOMER, currency="usd", lines=[NewLine("x", 1, 100), NewLine("y", -1, 5)])
    with pytest.raises(InvalidQuantityError):
        app.create_draft(customer=CUSTOMER, currency="usd", lines=[NewLine("x", 1.5, 100)])
    assert _event_count(app) == before


def test_stale_expected_version_is_refused(app: BillingApplication) -> None:
    invoice_id = app.create_draft(customer=CUSTOMER, currency="usd", lines=[NewLine("x", 1, 100)]).result
    version = app.invoice(invoice_id).version
    app.change_details(invoice_id, memo="first", expected_version=version)
    with pytest.raises(StaleVersionError):
        app.change_details(invoice_id, memo="second", expected_version=version)
    assert app.invoice(invoice_id).memo == "first"


def test_a_repeated_idempotency_key_returns_the_first_result_and_changes_nothing(app: BillingApplication) -> None:
    first = app.create_draft(
        customer=CUSTOMER, currency="usd", lines=[NewLine("x", 1, 100)], idempotency_key="k-1"
    ).result
    before = _event_count(app)
    again = app.create_draft(
        customer=CUSTOMER, currency="usd", lines=[NewLine("x", 1, 100)], idempotency_key="k-1"
    ).result
    assert again == first
    assert _event_count(app) == before
    with pytest.raises(IdempotencyKeyReusedError):
        app.create_draft(customer=CUSTOMER, currency="usd", lines=[NewLine("x", 2, 100)], idempotency_key="k-1")


def test_the_same_key_with_another_expected_version_is_another_request(app: BillingApplication) -> None:
    for command in (app.void, app.mark_uncollectible):
        invoice_id = app.create_draft(customer=CUSTOMER, currency="usd", lines=[NewLine("x", 1, 100)]).result
        app.issue(invoice_id)
        version = app.invoice(invoice_id).version
        key = f"{command.__name__}-1"
        command(invoice_id, expected_version=version, idempotency_key=key)
        command(invoice_id, expected_version=version, idempotency_key=key)  # the same request: replayed
        with pytest.raises(IdempotencyKeyReusedError):
            command(invoice_id, expected_version=version + 5, idempotency_key=key)


def test_a_command_answers_with_the_versions_it_left_and_a_repeat_says_it_was_replayed(
    app: BillingApplication,
) -> None:
    created = app.create_draft(customer=CUSTOMER, currency="usd", lines=[NewLine("x", 1, 100)], idempotency_key="k-2")
    assert not created.replayed
    assert created.versions == {created.result: app.invoice(created.result).version}
    app.change_details(created.result, memo="later")  # the invoice moves on
    again = app.create_draft(customer=CUSTOMER, currency="usd", lines=[NewLine("x", 1, 100)], idempotency_key="k-2")
    assert again.replayed
    assert again.result == created.result
    # The repeat is answered with the version the first run left, not the current one.
    assert again.version_of(created.result) == created.version_of(created.result)
    assert app.invoice(created.result).version != again.version_of(created.result)


def test_an_outcome_names_every_aggregate_the_command_changed(app: BillingApplication) -> None:
    invoice_id = app.create_draft(customer=CUSTOMER, currency="usd", lines=[NewLine("x", 1, 100)]).result
    issued = app.issue(invoice_id)
    assert issued.result == "INV-000001"
    assert set(issued.versions) == {invoice_id, series_id("INV")}
    paid = app.record_offline_payment(invoice_id, Money(100, "usd"), reference="cheque 1")
    assert set(paid.versions) == {invoice_id, paid.result}
    assert paid.version_of(invoice_id) == app.invoice(invoice_id).version
    other = app.create_draft(customer=CUSTOMER, currency="usd", lines=[NewLine("y", 1, 50)]).result
    app.issue(other)

    def report() -> Outcome[UUID]:
        return app.record_provider_payment_succeeded(
            provider="stripe", provider_payment_id="pi_2", invoice_id=other, amount_captured=Money(50, "usd")
        )

    first = report()
    assert {other, first.result} <= set(first.versions)
    assert first.version_of(other) == app.invoice(other).version
    assert first.version_of(first.result) == app.payment(first.result).version
    redelivered = report()
    # Nothing changed and no receipt answered: no versions, and not a replay.
    assert (redelivered.result, redelivered.versions, redelivered.replayed) == (first.result, {}, False)


def test_idempotency_survives_a_restart(make_app: AppFactory) -> None:
    first_app = make_app()
    invoice_id = first_app.create_draft(customer=CUSTOMER, currency="usd", lines=[NewLine("x", 1, 100)]).result
    first_app.issue(invoice_id)
    paid = Money(40, "usd")
    payment = first_app.record_offline_payment(invoice_id, paid, reference="w", idempotency_key="pay-1").result
    restarted = make_app()
    again = restarted.record_offline_payment(invoice_id, paid, reference="w", idempotency_key="pay-1").result
    assert again == payment
    assert restarted.invoice(invoice_id).amount_paid == 40


def test_provider_reports_apply_money_once(app: BillingApplication) -> None:
    invoice_id = app.create_draft(customer=CUSTOMER, currency="usd", lines=[NewLine("x", 1, 10_000)]).result
    app.issue(invoice_id)
    for _ in range(3):  # payment_intent.succeeded, charge.succeeded, a redelivery
        payment_id = app.record_provider_payment_succeeded(
            provider="stripe",
            provider_payment_id="pi_1",
            invoice_id=invoice_id,
            amount_captured=Money(10_000, "usd"),
            fee=320,
            charge_id="ch_1",
        ).result
    assert app.invoice(invoice_id).amount_paid == 10_000
    assert app.invoice(invoice_id).status == "paid"
    assert app.record_refund(payment_id, refund_id="re_1", amount=2_500).result is True
    assert app.record_refund(payment_id, refund_id="re_1", amount=2_500).result is False
    invoice = app.invoice(invoice_id)
    assert (invoice.status, invoice.amount_refunded, invoice.amount_due) == ("paid", 2_500, 0)


def test_a_stale_failure_does_not_undo_a_success(app: BillingApplication) -> None:
    invoice_id = app.create_draft(customer=CUSTOMER, currency="usd", lines=[NewLine("x", 1, 10_000)]).result
    app.issue(invoice_id)
    app.record_provider_payment_succeeded(
        provider="stripe", provider_payment_id="pi_2", invoice_id=invoice_id, amount_captured=Money(10_000, "usd")
    )
    recorded = app.record_provider_payment_failed(
        provider="stripe", provider_payment_id="pi_2", attempt_id="ch_9", code="card_declined", message="declined"
    ).result
    assert recorded is False
    assert app.invoice(invoice_id).status == "paid"
    assert app.provider_payment("stripe", "pi_2").status == "succeeded"


def test_invoice_as_of_a_moment_and_at_a_version(app: BillingApplication, clock: ManualClock) -> None:
    invoice_id = app.create_draft(customer=CUSTOMER, currency="usd", lines=[NewLine("x", 1, 10_000)]).result
    clock.advance(timedelta(days=1))
    app.issue(invoice_id)
    issued_at = clock.now()
    clock.advance(timedelta(days=10))
    app.record_offline_payment(invoice_id, Money(10_000, "usd"), reference="wire")
    before_payment = app.invoice_as_of(invoice_id, issued_at + timedelta(days=5))
    assert (before_payment.status, before_payment.amount_due) == ("open", 10_000)
    assert app.invoice_as_of(invoice_id, clock.now()).status == "paid"
    assert app.invoice(invoice_id, version=2).status == "draft"
    with pytest.raises(InvoiceNotFoundError):
        app.invoice_as_of(invoice_id, issued_at - timedelta(days=30))


def test_unknown_invoice_is_not_found(app: BillingApplication) -> None:
    with pytest.raises(InvoiceNotFoundError):
        app.invoice(uuid4())
    with pytest.raises(InvoiceNotFoundError):
        list(app.invoice_history(uuid4()))


def _event_count(app: BillingApplication) -> int:
    return len(app.recorder.select_notifications(start=None, limit=1_000_000))


def test_each_failed_attempt_is_recorded_once_however_often_reported(app: BillingApplication) -> None:
    invoice_id = app.create_draft(customer=CUSTOMER, currency="usd", lines=[NewLine("x", 1, 10_000)]).result
    app.issue(invoice_id)
    reports = [("ch_a", "card_declined"), ("ch_a", "card_declined"), ("ch_b", "insufficient_funds")]
    recorded = [
        app.record_provider_payment_failed(
            provider="stripe",
            provider_payment_id="pi_3",
            invoice_id=invoice_id,
            attempt_id=attempt,
            code=code,
            message="declined",
        ).result
        for attempt, code in reports
    ]
    assert recorded == [True, False, True]
    invoice = app.invoice(invoice_id)
    assert [a["code"] for a in invoice.failed_attempts] == ["card_declined", "insufficient_funds"]
    assert invoice.status == "open"


def test_issue_accepts_a_due_date_as_text(app: BillingApplication) -> None:
    invoice_id = app.create_draft(customer=CUSTOMER, currency="usd", lines=[NewLine("x", 1, 100)]).result
    app.issue(invoice_id, due_date="2026-05-01")
    assert app.invoice(invoice_id).due_date == "2026-05-01"


def test_stray_library_variables_in_the_environment_cannot_redirect_the_store(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    decoy = tmp_path / "decoy.sqlite3"
    monkeypatch.setenv("BILLINGAPPLICATION_SQLITE_DBNAME", str(decoy))
    monkeypatch.setenv("SQLITE_DBNAME", str(decoy))
    monkeypatch.setenv("POSTGRES_ENABLE_DB_FUNCTIONS", "y")
    app = make_app()
    assert app.env.get("POSTGRES_ENABLE_DB_FUNCTIONS") in (None, "n")
    app.create_draft(customer=CUSTOMER, currency="usd")
    assert not decoy.exists()


def test_numbering_continues_after_a_restart_from_the_series_snapshot(make_app: AppFactory) -> None:
    app = make_app()
    for _ in range(205):
        app.issue(app.create_draft(customer=CUSTOMER, currency="usd", lines=[NewLine("x", 1, 100)]).result)
    assert app.snapshots is not None
    snapshots = list(app.snapshots.get(series_id("INV"), desc=True, limit=1))
    assert snapshots
    assert snapshots[0].originator_version == 200  # taken every 100 events: started + 199 numbers
    restarted = make_app()
    invoice_id = restarted.create_draft(customer=CUSTOMER, currency="usd", lines=[NewLine("x", 1, 100)]).result
    assert restarted.issue(invoice_id).result == "INV-000206"


def test_a_provider_payment_in_another_currency_is_refused_and_stores_nothing(app: BillingApplication) -> None:
    invoice_id = app.create_draft(customer=CUSTOMER, currency="usd", lines=[NewLine("x", 1, 10_000)]).result
    app.issue(invoice_id)
    before = _event_count(app)
    with pytest.raises(CurrencyMismatchError):
        app.initiate_provider_payment(invoice_id, provider="stripe", provider_payment_id="pi_x", amount=Money(1, "eur"))
    with pytest.raises(CurrencyMismatchError):
        app.record_provider_payment_succeeded(
            provider="stripe", provider_payment_id="pi_y", invoice_id=invoice_id, amount_captured=Money(10_000, "eur")
        )
    assert _event_count(app) == before


def test_a_dispute_id_is_opened_once(app: BillingApplication) -> None:
    invoice_id = app.create_draft(customer=CUSTOMER, currency="usd", lines=[NewLine("x", 1, 10_000)]).result
    app.issue(invoice_id)
    payment_id = app.record_provider_payment_succeeded(
        provider="stripe", provider_payment_id="pi_d", invoice_id=invoice_id, amount_captured=Money(10_000, "usd")
    ).result
    assert app.record_dispute_opened(payment_id, dispute_id="dp_1", amount=4_000).result is True
    assert app.record_dispute_opened(payment_id, dispute_id="dp_1", amount=4_000).result is False
    assert app.record_dispute_closed(payment_id, dispute_id="dp_1", won=False).result is True
    assert app.record_dispute_closed(payment_id, dispute_id="dp_1", won=False).result is False
    invoice = app.invoice(invoice_id)
    assert (invoice.status, invoice.amount_dispute_lost, invoice.amount_disputed) == ("paid", 4_000, 0)


def test_draft_edits_retried_with_their_key_apply_once(app: BillingApplication) -> None:
    invoice_id = app.create_draft(customer=CUSTOMER, currency="usd", lines=[NewLine("x", 1, 100)]).result
    line_id = app.add_line(invoice_id, NewLine("y", 2, 50), idempotency_key="add-y").result
    assert app.add_line(invoice_id, NewLine("y", 2, 50), idempotency_key="add-y").result == line_id
    version = app.invoice(invoice_id).version
    for _ in range(2):  # the second call is a retry of the first: same key, same expected version
        app.change_details(invoice_id, memo="net 30", expected_version=version, idempotency_key="memo-1")
        app.remove_line(invoice_id, line_id, expected_version=version + 1, idempotency_key="rm-y")
    invoice = app.invoice(invoice_id)
    assert (invoice.version, invoice.memo, len(invoice.lines)) == (version + 2, "net 30", 1)
    with pytest.raises(IdempotencyKeyReusedError):
        app.change_details(invoice_id, memo="net 60", expected_version=version, idempotency_key="memo-1")


def test_a_payment_cannot_be_initiated_on_a_draft(app: BillingApplication) -> None:
    invoice_id = app.create_draft(customer=CUSTOMER, currency="usd", lines=[NewLine("x", 1, 100)]).result
    with pytest.raises(InvoiceNotPayableError):
        app.initiate_provider_payment(invoice_id, provider="stripe", provider_payment_id="pi_draft")
    app.issue(invoice_id)
    payment_id = app.initiate_provider_payment(invoice_id, provider="stripe", provider_payment_id="pi_draft").result
    assert app.payment(payment_id).amount == 100


# ------------------------------------------------------------------------------ offline payments


def test_an_offline_payment_retried_with_its_reference_records_the_money_once(app: BillingApplication) -> None:
    invoice_id = app.create_draft(customer=CUSTOMER, currency="usd", lines=[NewLine("x", 1, 10_000)]).result
    app.issue(invoice_id)
    first = app.record_offline_payment(invoice_id, Money(4_000, "usd"), reference="BACS 88213").result
    before = _event_count(app)
    again = app.record_offline_payment(
        invoice_id, Money(4_000, "usd"), reference="BACS 88213"
    ).result  # no key: a retry
    assert again == first
    assert _event_count(app) == before
    invoice = app.invoice(invoice_id)
    assert (invoice.amount_paid, invoice.payment_ids) == (4_000, [str(first)])
    assert app.payment(first).provider_payment_id == "BACS 88213"


def test_the_same_reference_with_another_amount_is_refused(app: BillingApplication) -> None:
    invoice_id = app.create_draft(customer=CUSTOMER, currency="usd", lines=[NewLine("x", 1, 10_000)]).result
    app.issue(invoice_id)
    app.record_offline_payment(invoice_id, Money(4_000, "usd"), reference="cheque 1")
    before = _event_count(app)
    with pytest.raises(DuplicatePaymentError, match="4000"):
        app.record_offline_payment(invoice_id, Money(5_000, "usd"), reference="cheque 1")
    assert _event_count(app) == before
    second = app.record_offline_payment(invoice_id, Money(5_000, "usd"), reference="cheque 2").result
    assert app.invoice(invoice_id).payment_ids[-1] == str(second)


def test_the_same_reference_may_pay_another_invoice(app: BillingApplication) -> None:
    ids = [
        app.create_draft(customer=CUSTOMER, currency="usd", lines=[NewLine("x", 1, 10_000)]).result for _ in range(2)
    ]
    for invoice_id in ids:
        app.issue(invoice_id)
    payments = {app.record_offline_payment(i, Money(10_000, "usd"), reference="one transfer").result for i in ids}
    assert len(payments) == 2
    assert [app.invoice(i).status for i in ids] == ["paid", "paid"]


@pytest.mark.parametrize("reference", ["", "  ", "x" * 256])
def test_an_offline_payment_needs_a_reference(app: BillingApplication, reference: str) -> None:
    invoice_id = app.create_draft(customer=CUSTOMER, currency="usd", lines=[NewLine("x", 1, 10_000)]).result
    app.issue(invoice_id)
    before = _event_count(app)
    with pytest.raises(InvalidTextError) as raised:
        app.record_offline_payment(invoice_id, Money(4_000, "usd"), reference=reference)
    assert raised.value.field == "reference"
    assert _event_count(app) == before


def test_an_offline_payment_honours_the_expected_version(app: BillingApplication) -> None:
    invoice_id = app.create_draft(customer=CUSTOMER, currency="usd", lines=[NewLine("x", 1, 10_000)]).result
    app.issue(invoice_id)
    version = app.invoice(invoice_id).version
    app.record_offline_payment(invoice_id, Money(1_000, "usd"), reference="wire 1", expected_version=version)
    before = _event_count(app)
    with pytest.raises(StaleVersionError):
        app.record_offline_payment(invoice_id, Money(1_000, "usd"), reference="wire 2", expected_version=version)
    assert _event_count(app) == before
    # The first request again, with the version it was sent with: the payment it recorded.
    assert app.record_offline_payment(
        invoice_id, Money(1_000, "usd"), reference="wire 1", expected_version=version
    ).result == offline_payment_id(invoice_id, "wire 1")
