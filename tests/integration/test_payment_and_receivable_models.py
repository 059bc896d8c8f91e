"""The payments read model, payment lists, customer balances and receivables aging, on both backends."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import Engine, select

from adapters.clock import ManualClock
from adapters.read_models import projection_runner
from commands.application import BillingApplication
from commands.messages import NewLine
from ledger.errors import InvalidInputError
from ledger.money import Money
from ledger.payments import Payment, payment_id_for
from projections.payments import list_payments, payment_row
from projections.receivables import AgingBuckets, CustomerBalance, customer_balances, receivables_aging
from projections.runner import ProjectionRunner
from projections.tables import payments

ACME = {"email": "ap@acme.example", "name": "Acme"}
GLOBEX = {"email": "billing@globex.example", "name": "Globex"}


def _invoice(
    app: BillingApplication,
    amount: int,
    *,
    currency: str = "usd",
    customer: dict[str, str] = ACME,
    due_date: str | None = None,
    issue: bool = True,
) -> UUID:
    invoice_id = app.create_draft(customer=customer, currency=currency, lines=[NewLine("Work", 1, amount)]).result
    if issue:
        app.issue(invoice_id, due_date=due_date)
    return invoice_id


def _payments_history(app: BillingApplication, clock: ManualClock) -> dict[str, UUID]:
    """Card payments with fees, retried failures, partial refunds, disputes won and lost, offline."""
    ids: dict[str, UUID] = {}
    card = _invoice(app, 50_000)
    ids["retried"] = app.initiate_provider_payment(card, provider="stripe", provider_payment_id="pi_retried").result
    clock.advance(timedelta(minutes=5))
    for attempt in ("ch_declined", "ch_declined", "ch_expired"):  # the first failure is reported twice
        app.record_provider_payment_failed(
            provider="stripe",
            provider_payment_id="pi_retried",
            attempt_id=attempt,
            code="card_declined" if attempt == "ch_declined" else "expired_card",
            message="Your card has expired." if attempt == "ch_expired" else "Your card was declined.",
        )
    clock.advance(timedelta(minutes=5))
    app.record_provider_payment_succeeded(
        provider="stripe",
        provider_payment_id="pi_retried",
        amount_captured=Money(50_000, "usd"),
        fee=1_480,
        charge_id="ch_ok",
    )
    clock.advance(timedelta(days=2))
    assert app.record_refund(ids["retried"], refund_id="re_1", amount=7_500).result
    assert not app.record_refund(ids["retried"], refund_id="re_1", amount=7_500).result  # redelivered
    assert app.record_refund(ids["retried"], refund_id="re_2", amount=2_500).result

    clock.advance(timedelta(hours=1))
    disputed = _invoice(app, 90_000, currency="eur", customer=GLOBEX)
    ids["disputed"] = app.record_provider_payment_succeeded(
        provider="stripe",
        provider_payment_id="pi_disputed",
        invoice_id=disputed,
        amount_captured=Money(90_000, "eur"),
        fee=2_635,
        charge_id="ch_disputed",
    ).result
    clock.advance(timedelta(days=1))
    app.record_dispute_opened(ids["disputed"], dispute_id="dp_won", amount=10_000, reason="fraudulent")
    app.record_dispute_opened(ids["disputed"], dispute_id="dp_lost", amount=20_000, reason="product_not_received")
    app.record_dispute_opened(ids["disputed"], dispute_id="dp_open", amount=5_000, reason="duplicate")
    clock.advance(timedelta(days=10))
    app.record_dispute_closed(ids["disputed"], dispute_id="dp_won", won=True)
    app.record_dispute_closed(ids["disputed"], dispute_id="dp_lost", won=False)

    clock.advance(timedelta(hours=1))
    transfer = _invoice(app, 3_000, currency="jpy")
    ids["offline_part"] = app.record_offline_payment(transfer, Money(1_000, "jpy"), reference="wire-1").result
    clock.advance(timedelta(hours=1))
    ids["offline_rest"] = app.record_offline_payment(
        transfer, Money(2_500, "jpy"), reference="wire-2"
    ).result  # 500 over
    assert app.record_refund(ids["offline_rest"], refund_id="back-1", amount=500).result

    clock.advance(timedelta(hours=1))
    declined = _invoice(app, 12_000)
    app.record_provider_payment_failed(
        provider="stripe",
        provider_payment_id="pi_declined",
        invoice_id=declined,
        attempt_id="ch_insufficient",
        code="insufficient_funds",
        message="Your card has insufficient funds.",
    )
    ids["declined"] = payment_id_for("stripe", "pi_declined")
    clock.advance(timedelta(hours=1))
    ids["pending"] = app.initiate_provider_payment(declined, provider="stripe", provider_payment_id="cs_pending").result
    return ids


def _expected(payment: Payment) -> dict[str, Any]:
    disputes = payment.disputes.values()
    return {
        "payment_id": str(payment.id),
        "invoice_id": payment.invoice_id,
        "provider": payment.provider,
        "provider_payment_id": payment.provider_payment_id,
        "charge_id": payment.charge_id,
        "currency": payment.currency,
        "amount": payment.amount,
        "amount_captured": payment.amount_captured,
        "fee": payment.fee,
        "status": payment.status,
        "amount_refunded": payment.amount_refunded,
        "refunds": len(payment.refunds),
        "amount_disputed": sum(d["amount"] for d in disputes if d["status"] == "open"),
        "amount_dispute_lost": sum(d["amount"] for d in disputes if d["status"] == "lost"),
        "failed_attempts": len(payment.failed_attempt_ids),
        "failure_code": payment.failure["code"] if payment.failure else None,
        "failure_message": payment.failure["message"] if payment.failure else None,
        "created_at": payment.created_on,
        "updated_at": payment.modified_on,
        "version": payment.version,
    }


def _payments_table(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(select(payments)))


def test_each_payment_row_equals_its_aggregate(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    ids = _payments_history(app, clock)
    runner.catch_up(batch_size=4)
    for payment_id in ids.values():
        row = payment_row(engine, str(payment_id))
        assert row == _expected(app.payment(payment_id))
    retried = payment_row(engine, str(ids["retried"]))
    assert retried is not None
    assert (retried["status"], retried["fee"], retried["amount_refunded"], retried["refunds"]) == (
        "succeeded",
        1_480,
        10_000,
        2,
    )
    assert (retried["failed_attempts"], retried["failure_code"], retried["charge_id"]) == (2, "expired_card", "ch_ok")
    disputed = payment_row(engine, str(ids["disputed"]))
    assert disputed is not None
    assert (disputed["amount_disputed"], disputed["amount_dispute_lost"], disputed["currency"]) == (
        5_000,
        20_000,
        "eur",
    )
    rest = payment_row(engine, str(ids["offline_rest"]))
    assert rest is not None
    assert (rest["provider"], rest["provider_payment_id"], rest["fee"], rest["amount_refunded"]) == (
        "offline",
        "wire-2",
        0,
        500,
    )
    declined = payment_row(engine, str(ids["declined"]))
    assert declined is not None
    assert (declined["status"], declined["amount"], declined["amount_captured"]) == ("failed", 12_000, 0)
    assert declined["failure_message"] == "Your card has insufficient funds."
    pending = payment_row(engine, str(ids["pending"]))
    assert pending is not None
    assert (pending["status"], pending["failure_code"], pending["version"]) == ("pending", None, 1)
    assert payment_row(engine, str(UUID(int=1))) is None


def test_payments_rebuilt_from_the_log_equal_the_incremental_model(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    ids = _payments_history(app, clock)
    runner.catch_up(batch_size=3)
    app.record_dispute_closed(ids["disputed"], dispute_id="dp_open", won=True)  # after a first catch-up
    app.record_refund(ids["retried"], refund_id="re_3", amount=1)
    runner.catch_up(batch_size=3)
    incremental = _payments_table(engine)
    assert len(incremental) == len(ids)
    assert projection_runner(app, engine).catch_up() == 0  # a restarted runner has nothing to redo
    runner.rebuild()
    assert _payments_table(engine) == incremental
    fresh = projection_runner(app, engine)  # a new process, with no folded states, continues from the log
    app.record_refund(ids["retried"], refund_id="re_4", amount=2)
    assert fresh.catch_up() > 0
    assert payment_row(engine, str(ids["retried"])) == _expected(app.payment(ids["retried"]))


def test_payments_are_listed_newest_first_filtered_and_paged(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    ids = _payments_history(app, clock)
    runner.catch_up()
    newest_first = sorted(ids.values(), key=lambda i: (app.payment(i).created_on, str(i)), reverse=True)
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = list_payments(engine, limit=2, cursor=cursor)
        seen += [r["payment_id"] for r in page.rows]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [str(i) for i in newest_first]
    assert [r["status"] for r in list_payments(engine, status="failed").rows] == ["failed"]
    declined_invoice = app.payment(ids["declined"]).invoice_id
    by_invoice = list_payments(engine, invoice_id=declined_invoice).rows
    assert {r["payment_id"] for r in by_invoice} == {str(ids["declined"]), str(ids["pending"])}
    assert [r["payment_id"] for r in list_payments(engine, invoice_id=declined_invoice, status="pending").rows] == [
        str(ids["pending"])
    ]
    assert list_payments(engine, status="succeeded", limit=10).rows[0]["created_at"].tzinfo is not None
    with pytest.raises(InvalidInputError):
        list_payments(engine, cursor="not-a-cursor")


TODAY = date(2026, 6, 1)


def test_receivables_are_aged_into_buckets_at_their_boundaries(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    clock.set(datetime(2026, 1, 5, 9, tzinfo=UTC))
    # Days past due on TODAY -> amount; each amount a distinct power of two, so sums say which ones.
    for days, amount in [(-10, 1), (0, 2), (1, 4), (30, 8), (31, 16), (60, 32), (61, 64), (90, 128), (91, 256)]:
        _invoice(app, amount * 100, due_date=(TODAY - timedelta(days=days)).isoformat())
        clock.advance(timedelta(hours=1))
    _invoice(app, 51_200)  # no due date: current
    partly_paid = _invoice(app, 100_000, due_date="2026-05-20")  # 12 days late, 40_000 still due
    app.record_offline_payment(partly_paid, Money(60_000, "usd"), reference="w1")
    written_off = _invoice(app, 70_000, due_date="2026-01-31")  # uncollectible: still owed, 121 days late
    app.mark_uncollectible(written_off)
    # Owing nothing: paid, void, draft and deleted invoices.
    paid = _invoice(app, 5_000, due_date="2026-02-01")
    app.record_offline_payment(paid, Money(5_000, "usd"), reference="w2")
    app.void(_invoice(app, 6_000, due_date="2026-02-01"))
    _invoice(app, 7_000, issue=False)
    app.delete_draft(_invoice(app, 8_000, issue=False))
    # Another customer, and another currency of the first one.
    _invoice(app, 9_000, customer=GLOBEX, due_date="2026-05-31")  # 1 day
    _invoice(app, 4_500, currency="eur", due_date="2026-03-01")  # 92 days
    _invoice(app, 300, currency="jpy", due_date="2026-06-01")  # due today: current
    clock.set(datetime(2026, 6, 1, 12, tzinfo=UTC))
    runner.catch_up()

    aging = receivables_aging(engine, clock.now().date())
    by_key = {(r.customer_email, r.currency): r.buckets for r in aging.rows}
    assert by_key == {
        (ACME["email"], "eur"): AgingBuckets(days_over_90=4_500),
        (ACME["email"], "jpy"): AgingBuckets(current=300),
        (ACME["email"], "usd"): AgingBuckets(
            current=100 + 200 + 51_200,
            days_1_30=400 + 800 + 40_000,
            days_31_60=1_600 + 3_200,
            days_61_90=6_400 + 12_800,
            days_over_90=25_600 + 70_000,
        ),
        (GLOBEX["email"], "usd"): AgingBuckets(days_1_30=9_000),
    }
    assert [(r.currency, r.customer_email) for r in aging.rows] == sorted((c, e) for e, c in by_key)
    assert aging.totals["usd"] == AgingBuckets(51_500, 50_200, 4_800, 19_200, 95_600)
    assert aging.totals["usd"].total == 221_300
    assert aging.totals["eur"].total == 4_500
    assert set(aging.totals) == {"usd", "eur", "jpy"}
    only_usd = receivables_aging(engine, TODAY, currency="usd")
    assert {r.currency for r in only_usd.rows} == {"usd"}
    assert only_usd.totals == {"usd": aging.totals["usd"]}
    # A day later, every boundary invoice moves on by one day.
    later = receivables_aging(engine, TODAY + timedelta(days=1), currency="usd").totals["usd"]
    assert later == AgingBuckets(
        current=100 + 51_200,
        days_1_30=200 + 400 + 40_000 + 9_000,
        days_31_60=800 + 1_600,
        days_61_90=3_200 + 6_400,
        days_over_90=12_800 + 25_600 + 70_000,
    )
    assert later.total == aging.totals["usd"].total


def test_customer_balances_count_only_what_is_owed_and_held(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    partly_paid = _invoice(app, 10_000, due_date="2026-04-01")
    app.record_offline_payment(partly_paid, Money(4_000, "usd"), reference="w3")
    app.mark_uncollectible(_invoice(app, 2_500))
    overpaid = _invoice(app, 3_000)
    over = app.record_offline_payment(overpaid, Money(3_700, "usd"), reference="w4").result  # 700 of credit
    app.record_refund(over, refund_id="back-1", amount=200)  # 200 of it given back
    app.void(_invoice(app, 50_000))
    _invoice(app, 60_000, issue=False)
    paid = _invoice(app, 70_000)
    app.record_offline_payment(paid, Money(70_000, "usd"), reference="w5")
    _invoice(app, 1_000, currency="eur")
    settled = _invoice(app, 8_000, customer=GLOBEX)  # Globex owes nothing and has no credit
    app.record_provider_payment_succeeded(
        provider="stripe", provider_payment_id="pi_g", invoice_id=settled, amount_captured=Money(8_000, "usd"), fee=262
    )
    runner.catch_up()

    balances = customer_balances(engine)
    assert balances == [
        CustomerBalance(ACME["email"], "eur", amount_due=1_000, credit=0, open_invoices=1),
        CustomerBalance(ACME["email"], "usd", amount_due=6_000 + 2_500, credit=500, open_invoices=2),
    ]
    assert balances[1].net == 8_000
    assert customer_balances(engine, currency="eur") == balances[:1]
    assert all(isinstance(b.amount_due, int) and isinstance(b.credit, int) for b in balances)
