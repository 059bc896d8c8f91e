"""Reconciliation's commands on each backend: fees recorded once, runs and their items in one
transaction, and items settled by apply (through the webhook's own steps, so the webhook arriving
later changes nothing), explain, or a refund of the duplicate charge; a refusal stores nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from sqlalchemy import Engine, func, select

from adapters.bootstrap import bootstrap
from adapters.clock import ManualClock
from adapters.settings import Settings
from commands.application import BillingApplication
from commands.ingestion.stripe_events import ingest
from commands.messages import NewLine
from commands.reconciliation.commands import FeeToRecord
from commands.reconciliation.facts import Period
from ledger.errors import (
    CurrencyMismatchError,
    IdempotencyKeyReusedError,
    InvalidDateError,
    InvalidInputError,
    InvalidTextError,
    NotFoundError,
    ProviderConfigurationError,
    ProviderUnavailableError,
    RuleViolationError,
)
from ledger.fees import ProcessorFee, fee_id_for
from ledger.invoices import PAID
from ledger.money import Money
from ledger.payments import payment_id_for
from ledger.payouts import FAILED as PAYOUT_FAILED
from ledger.payouts import PAID as PAYOUT_PAID
from ledger.payouts import Payout, payout_id_for
from ledger.reconciliation.items import (
    APPLY,
    DISPUTE_MISMATCH,
    DUPLICATE_PAYMENT,
    EXPLAIN,
    EXPLAINED,
    FIXED,
    INVOICE_INCONSISTENT,
    MISSING_IN_LEDGER,
    MISSING_IN_STRIPE,
    OPEN,
    PAYOUT_MISMATCH,
    REFUND_DUPLICATE,
    REFUND_MISSING_IN_LEDGER,
    RESOLVED,
    ApplyRefusedError,
    Difference,
    ItemSettledError,
    PaymentNotInLedgerError,
    ReconciliationActionError,
    ReconciliationItem,
    ReconciliationItemNotFoundError,
    item_id_for,
)
from ledger.reconciliation.runs import COMPLETED, FAILED
from projections.queries import trial_balance
from projections.runner import ProjectionRunner
from projections.tables import journal
from tests.conftest import AppFactory
from tests.fake_payments import FakePaymentProvider
from tests.reconciliation_contract import ITEM_FIELDS as CONTRACT_FIELDS
from tests.stripe_payloads import payment_succeeded, verified_event

PERIOD = Period(datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))
REPORT_KEYS = set(CONTRACT_FIELDS)


# ---------------------------------------------------------------------------- helpers


@pytest.fixture
def provider() -> FakePaymentProvider:
    return FakePaymentProvider()


@pytest.fixture
def paying_app(database_url: str, clock: ManualClock, provider: FakePaymentProvider) -> Iterator[BillingApplication]:
    """The application as the composition root builds it with a payment provider configured."""
    app = bootstrap(Settings(database_url=database_url), clock=clock, payments=lambda: provider)
    yield app
    app.close()


def open_invoice(app: BillingApplication, amount: int = 10_000) -> UUID:
    invoice_id = app.create_draft(
        customer={"email": "ap@acme.example", "name": "Acme"}, currency="usd", lines=[NewLine("Consulting", 1, amount)]
    ).result
    app.issue(invoice_id)
    return invoice_id


def paid_invoice(app: BillingApplication, intent: str, amount: int = 10_000) -> UUID:
    """An invoice paid by `intent`, as its webhook would have recorded it."""
    invoice_id = open_invoice(app, amount)
    app.record_provider_payment_succeeded(
        provider="stripe",
        provider_payment_id=intent,
        amount_captured=Money(amount, "usd"),
        charge_id=f"ch_{intent}",
        invoice_id=invoice_id,
    )
    return invoice_id


def found(cls: str, key: str, facts: dict[str, Any], *, amount: int | None = 10_000, **shape: Any) -> Difference:
    return Difference(
        id=str(item_id_for(cls, key)),
        cls=cls,
        currency="usd",
        amount_ledger=shape.get("amount_ledger"),
        amount_stripe=amount,
        stripe_id=key,
        invoice_id=shape.get("invoice_id"),
        payment_id=shape.get("payment_id"),
        explanation=shape.get("explanation", f"{key}: Stripe and the ledger disagree"),
        events=shape.get("events", []),
        facts=facts,
    )


def missing_payment(invoice_id: UUID, intent: str = "pi_missed", amount: int = 10_000) -> Difference:
    facts = {
        "kind": "payment",
        "payment_intent": intent,
        "charge": f"ch_{intent}",
        "invoice_id": str(invoice_id),
        "amount": amount,
        "currency": "usd",
    }
    return found(MISSING_IN_LEDGER, intent, facts, amount=amount, invoice_id=str(invoice_id))


def missing_refund(intent: str, refund: str = "re_missed", amount: int = 2_500) -> Difference:
    facts = {"kind": "refund", "payment_intent": intent, "refund": refund, "amount": amount, "currency": "usd"}
    return found(REFUND_MISSING_IN_LEDGER, refund, facts, amount=amount)


def dispute(intent: str, status: str, dispute_id: str = "dp_rec", amount: int = 4_000) -> Difference:
    facts = {
        "kind": "dispute",
        "payment_intent": intent,
        "dispute": dispute_id,
        "amount": amount,
        "currency": "usd",
        "status": status,
        "reason": "fraudulent",
    }
    return found(DISPUTE_MISMATCH, dispute_id, facts, amount=amount)


def payout(status: str, payout_id: str = "po_rec", amount: int = 9_000) -> Difference:
    facts = {
        "kind": "payout",
        "payout": payout_id,
        "amount": amount,
        "currency": "usd",
        "status": status,
        "failure_code": "account_closed" if status == "failed" else "",
        "failure_message": "The bank account has been closed." if status == "failed" else "",
    }
    return found(PAYOUT_MISMATCH, payout_id, facts, amount=amount)


def duplicate(intent: str, amount: int = 10_000) -> Difference:
    facts = {
        "kind": "duplicate",
        "payment_intent": intent,
        "charge": f"ch_{intent}",
        "amount": amount,
        "currency": "usd",
    }
    return found(DUPLICATE_PAYMENT, intent, facts, amount=amount)


def nothing_to_apply(key: str = "pi_gone") -> Difference:
    return found(MISSING_IN_STRIPE, key, {"kind": "none"}, amount=None, amount_ledger=10_000)


def record_run(
    app: BillingApplication,
    *differences: Difference,
    fixed: list[tuple[UUID, list[dict[str, Any]]]] | None = None,
    run_id: UUID | None = None,
) -> list[dict[str, Any]]:
    return app.reconciliation.record_run(
        run_id=run_id or uuid4(),
        period=PERIOD,
        source="stripe",
        requested_by="ana",
        differences=list(differences),
        summary={"classes": {}, "matched": {}},
        fixed=fixed or [],
    ).result


def item_of(app: BillingApplication, difference: Difference) -> ReconciliationItem:
    return app.reconciliation.item(UUID(difference.id))


def topics(app: BillingApplication, aggregate_id: UUID) -> list[str]:
    return [type(event).TOPIC for event in app.repository.event_store.get(aggregate_id)]  # type: ignore[attr-defined]


def postings(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(journal)).scalar_one())


def balances(engine: Engine) -> dict[tuple[str, str], int]:
    return {(row.currency, row.account): row.balance for row in trial_balance(engine)}


# ---------------------------------------------------------------------------- fees


def fee(txn: str, amount: int = 320, invoice_id: UUID | None = None) -> FeeToRecord:
    return FeeToRecord(
        balance_transaction_id=txn, amount=Money(amount, "usd"), source_id=f"ch_{txn}", invoice_id=invoice_id
    )


def test_fees_are_recorded_once_each_and_posted_once(
    app: BillingApplication, runner: ProjectionRunner, engine: Engine
) -> None:
    invoice_id = open_invoice(app)
    assert app.reconciliation.record_fees("stripe", [fee("txn_1", 320, invoice_id), fee("txn_2", 59)]).result == 2
    # A later run reads the same transactions and one more, a zero fee, and one twice: only the new one.
    again = [fee("txn_1", 320, invoice_id), fee("txn_2", 59), fee("txn_3", 101), fee("txn_3", 101), fee("txn_4", 0)]
    assert app.reconciliation.record_fees("stripe", again).result == 1
    assert app.reconciliation.record_fees("stripe", again).result == 0
    recorded = app.runner.get(fee_id_for("stripe", "txn_1"), ProcessorFee)
    assert recorded is not None
    assert (recorded.amount, recorded.currency, recorded.invoice_id) == (320, "usd", str(invoice_id))
    assert app.runner.get(fee_id_for("stripe", "txn_4"), ProcessorFee) is None
    runner.catch_up()
    assert balances(engine)[("usd", "processor_fees")] == 320 + 59 + 101
    assert balances(engine)[("usd", "processor_balance")] == -(320 + 59 + 101)


def test_fees_recorded_by_two_writers_at_once_are_never_doubled(
    make_app: AppFactory, runner: ProjectionRunner, engine: Engine
) -> None:
    apps = [make_app(), make_app()]
    fees = [fee(f"txn_c{n}", 100 + n) for n in range(30)]
    counts: list[int] = []
    barrier = threading.Barrier(2)

    def record(app: BillingApplication, mine: list[FeeToRecord]) -> None:
        barrier.wait()
        counts.append(app.reconciliation.record_fees("stripe", mine).result)

    threads = [
        threading.Thread(target=record, args=(apps[0], fees)),
        threading.Thread(target=record, args=(apps[1], list(reversed(fees)))),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(counts) == 30
    runner.catch_up()
    assert balances(engine)[("usd", "processor_fees")] == sum(100 + n for n in range(30))


def test_a_fee_the_ledger_cannot_record_refuses_the_batch(app: BillingApplication) -> None:
    head = app.head()
    with pytest.raises(InvalidInputError):
        app.reconciliation.record_fees("stripe", [fee("txn_ok"), fee("")])
    assert app.head() == head


# ---------------------------------------------------------------------------- runs


def test_a_run_records_its_items_and_answers_the_report(app: BillingApplication) -> None:
    invoice_id = open_invoice(app)
    differences = [missing_payment(invoice_id), nothing_to_apply()]
    run_id = uuid4()
    items = record_run(app, *differences, run_id=run_id)
    assert [item["id"] for item in items] == [d.id for d in differences]
    assert all(set(item) == REPORT_KEYS for item in items)
    first = items[0]
    assert first["class"] == MISSING_IN_LEDGER
    assert (first["status"], first["resolution"], first["amount_stripe"]) == (OPEN, None, 10_000)
    assert first["invoice_id"] == str(invoice_id)
    assert first["detected_at"] == app.clock.now().isoformat()
    assert "facts" not in first
    run = app.reconciliation.run(run_id)
    assert run is not None
    assert (run.status, run.summary, run.item_count, run.requested_by) == (
        COMPLETED,
        {"classes": {}, "matched": {}},
        2,
        "ana",
    )
    assert app.reconciliation.run_items(run_id) == items
    assert topics(app, UUID(first["id"])) == ["reconciliation-item.detected"]


def test_recording_a_run_again_answers_what_it_stored(app: BillingApplication) -> None:
    run_id = uuid4()
    items = record_run(app, nothing_to_apply(), run_id=run_id)
    head = app.head()
    assert record_run(app, nothing_to_apply("pi_other"), run_id=run_id) == items
    assert app.head() == head


def test_a_clean_run_records_no_items(app: BillingApplication) -> None:
    run_id = uuid4()
    assert record_run(app, run_id=run_id) == []
    assert topics(app, run_id) == ["reconciliation-run.started", "reconciliation-run.completed"]


def test_found_again_an_open_item_is_unchanged_an_explained_one_stays_explained(
    app: BillingApplication, clock: ManualClock
) -> None:
    invoice_id = open_invoice(app)
    still_open, explained = missing_payment(invoice_id), nothing_to_apply()
    first_seen = app.clock.now().isoformat()
    record_run(app, still_open, explained)
    app.reconciliation.resolve(UUID(explained.id), action=EXPLAIN, note="test charge, voided by hand", by="ana")
    clock.advance(timedelta(hours=1))
    run_id = uuid4()
    items = record_run(app, still_open, explained, run_id=run_id)
    assert [(item["status"], item["detected_at"]) for item in items] == [(OPEN, first_seen), (EXPLAINED, first_seen)]
    assert items[1]["resolution"]["note"] == "test charge, voided by hand"
    assert topics(app, UUID(still_open.id)) == ["reconciliation-item.detected"]
    assert topics(app, UUID(explained.id)) == ["reconciliation-item.detected", "reconciliation-item.settled"]
    assert len(app.reconciliation.run_items(run_id)) == 2  # the run records that it found both again


def test_found_again_after_it_was_resolved_an_item_is_reopened(paying_app: BillingApplication) -> None:
    app = paying_app
    paid_invoice(app, "pi_dup")
    item = duplicate("pi_dup")
    record_run(app, item)
    app.reconciliation.resolve(UUID(item.id), action=REFUND_DUPLICATE, note="charged twice", by="ana")
    again = duplicate("pi_dup", amount=9_000)
    [reported] = record_run(app, again)
    assert (reported["status"], reported["resolution"], reported["amount_stripe"]) == (OPEN, None, 9_000)
    assert item_of(app, item).found == again
    assert topics(app, UUID(item.id))[-1] == "reconciliation-item.reopened"


def test_items_no_longer_found_are_fixed_by_the_events_that_fixed_them(app: BillingApplication) -> None:
    invoice_id = open_invoice(app)
    late, settled, explained = missing_payment(invoice_id), nothing_to_apply("pi_a"), nothing_to_apply("pi_b")
    record_run(app, late, settled, explained)
    app.reconciliation.resolve(UUID(settled.id), action=EXPLAIN, note="known", by="ana")
    # The late webhook arrives: the payment is recorded, and the next run no longer finds it.
    ingest(app, payment_succeeded("evt_late", "pi_missed", invoice_id))
    payment = app.payment(payment_id_for("stripe", "pi_missed"))
    fixing = [{"id": str(payment.id), "version": payment.version, "position": app.head()}]
    items = record_run(
        app,
        explained,
        fixed=[(UUID(late.id), fixing), (UUID(explained.id), []), (UUID(settled.id), [])],
    )
    # `explained` was found: not fixed. `settled` was explained, and is no longer found: fixed.
    assert [(item["id"], item["status"]) for item in items] == [
        (explained.id, OPEN),
        (late.id, RESOLVED),
        (settled.id, RESOLVED),
    ]
    resolution = items[1]["resolution"]
    assert (resolution["action"], resolution["by"], resolution["events"]) == (FIXED, "ledger", fixing)
    assert resolution["note"].startswith("not found again: the ledger now agrees with Stripe")
    assert items[1]["amount_stripe"] == 10_000  # as it was found
    # Fixed after it was resolved: nothing more to say; the report shows it as it stands.
    [shown] = record_run(app, fixed=[(UUID(late.id), [])])
    assert (shown["id"], shown["status"], shown["resolution"]["action"]) == (late.id, RESOLVED, FIXED)
    assert topics(app, UUID(late.id)) == ["reconciliation-item.detected", "reconciliation-item.settled"]


def test_an_item_a_person_resolved_since_the_engine_looked_is_not_fixed_again(app: BillingApplication) -> None:
    item = missing_payment(open_invoice(app))
    record_run(app, item)
    app.reconciliation.resolve(UUID(item.id), action=APPLY, note="applied", by="ana")
    [shown] = record_run(app, fixed=[(UUID(item.id), [])])  # shown as the person settled it
    assert (shown["status"], shown["resolution"]["action"], shown["resolution"]["by"]) == (RESOLVED, APPLY, "ana")
    assert topics(app, UUID(item.id))[-1] == "reconciliation-item.settled"
    resolution = item_of(app, item).resolution
    assert resolution is not None
    assert (resolution["action"], resolution["by"]) == (APPLY, "ana")


def test_fixing_an_item_that_does_not_exist_refuses_the_run(app: BillingApplication) -> None:
    head = app.head()
    with pytest.raises(ReconciliationItemNotFoundError):
        record_run(app, nothing_to_apply(), fixed=[(uuid4(), [])])
    assert app.head() == head


def test_a_run_is_refused_for_an_unknown_source_or_an_empty_period(app: BillingApplication) -> None:
    with pytest.raises(InvalidInputError, match="source"):
        app.reconciliation.record_run(
            run_id=uuid4(), period=PERIOD, source="paypal", requested_by="ana", differences=[], summary={}, fixed=[]
        )
    backwards = Period(PERIOD.end, PERIOD.start)
    with pytest.raises(InvalidDateError):
        app.reconciliation.fail_run(run_id=uuid4(), period=backwards, source="stripe", requested_by="ana", reason="x")
    assert app.head() == 0


def test_a_failed_run_is_recorded_with_its_reason_once(app: BillingApplication) -> None:
    run_id = uuid4()
    app.reconciliation.fail_run(
        run_id=run_id, period=PERIOD, source="stripe", requested_by="cron", reason="Stripe answered 401: bad key"
    )
    run = app.reconciliation.run(run_id)
    assert run is not None
    assert (run.status, run.failure, run.source) == (FAILED, "Stripe answered 401: bad key", "stripe")
    app.reconciliation.fail_run(run_id=run_id, period=PERIOD, source="stripe", requested_by="cron", reason="again")
    assert topics(app, run_id) == ["reconciliation-run.started", "reconciliation-run.failed"]


# ---------------------------------------------------------------------------- apply


def test_apply_brings_the_missing_payment_in_and_the_late_webhook_changes_nothing(
    app: BillingApplication, runner: ProjectionRunner, engine: Engine
) -> None:
    invoice_id = open_invoice(app)
    item = missing_payment(invoice_id)
    record_run(app, item)
    resolved = app.reconciliation.resolve(UUID(item.id), action=APPLY, note="the webhook never came", by="ana").result
    payment = app.payment(payment_id_for("stripe", "pi_missed"))
    invoice = app.invoice(invoice_id)
    assert (invoice.status, invoice.amount_paid, payment.charge_id) == (PAID, 10_000, "ch_pi_missed")
    assert resolved["status"] == RESOLVED
    resolution = resolved["resolution"]
    assert (resolution["action"], resolution["by"], resolution["note"]) == (APPLY, "ana", "the webhook never came")
    written = {UUID(event["id"]): event["version"] for event in resolution["events"]}
    assert written[payment.id] == payment.version
    assert written[invoice_id] == invoice.version
    runner.catch_up()
    after_apply = (postings(engine), balances(engine))
    assert after_apply[1][("usd", "processor_balance")] == 10_000

    ingest(app, payment_succeeded("evt_late", "pi_missed", invoice_id))
    ingest(
        app,
        verified_event(
            "evt_late_charge",
            "charge.succeeded",
            "charge",
            id="ch_pi_missed",
            payment_intent="pi_missed",
            amount=10_000,
            amount_captured=10_000,
            captured=True,
            currency="usd",
            metadata={"invoice_id": str(invoice_id)},
        ),
    )
    assert app.payment(payment.id).version == payment.version
    assert app.invoice(invoice_id).version == invoice.version
    runner.catch_up()
    assert (postings(engine), balances(engine)) == after_apply


def test_apply_after_the_webhook_came_names_the_payment_that_holds_it(app: BillingApplication) -> None:
    invoice_id = open_invoice(app)
    item = missing_payment(invoice_id)
    record_run(app, item)
    ingest(app, payment_succeeded("evt_late", "pi_missed", invoice_id))
    payment = app.payment(payment_id_for("stripe", "pi_missed"))
    resolved = app.reconciliation.resolve(UUID(item.id), action=APPLY, note="apply anyway", by="ana").result
    assert resolved["resolution"]["events"] == [{"id": str(payment.id), "version": payment.version}]
    assert app.payment(payment.id).version == payment.version
    assert app.invoice(invoice_id).amount_paid == 10_000


def test_apply_brings_the_missing_refund_in_once(
    app: BillingApplication, runner: ProjectionRunner, engine: Engine
) -> None:
    invoice_id = paid_invoice(app, "pi_r")
    item = missing_refund("pi_r")
    record_run(app, item)
    resolved = app.reconciliation.resolve(UUID(item.id), action=APPLY, note="refund webhook lost", by="ana").result
    assert resolved["status"] == RESOLVED
    assert app.invoice(invoice_id).amount_refunded == 2_500
    runner.catch_up()
    before = (postings(engine), balances(engine))
    ingest(
        app,
        verified_event(
            "evt_late_refund",
            "refund.created",
            "refund",
            id="re_missed",
            amount=2_500,
            status="succeeded",
            payment_intent="pi_r",
            currency="usd",
        ),
    )
    assert app.invoice(invoice_id).amount_refunded == 2_500
    runner.catch_up()
    assert (postings(engine), balances(engine)) == before


def test_apply_of_a_refund_whose_payment_is_missing_says_to_apply_the_payment_first(app: BillingApplication) -> None:
    item = missing_refund("pi_nowhere")
    record_run(app, item)
    head = app.head()
    with pytest.raises(PaymentNotInLedgerError, match=r"pi_nowhere.*missing_in_ledger item first"):
        app.reconciliation.resolve(UUID(item.id), action=APPLY, note="bring it in", by="ana")
    assert isinstance(PaymentNotInLedgerError("pi", "missing", "x"), RuleViolationError)  # 409
    assert app.head() == head
    assert item_of(app, item).status == OPEN


@pytest.mark.parametrize(
    ("status", "event_type", "stripe_status"),
    [
        ("open", "charge.dispute.created", "needs_response"),
        ("lost", "charge.dispute.closed", "lost"),
        ("won", "charge.dispute.closed", "won"),
    ],
)
def test_apply_brings_the_dispute_in_as_stripe_shows_it_and_its_late_webhook_changes_nothing(
    app: BillingApplication, status: str, event_type: str, stripe_status: str
) -> None:
    invoice_id = paid_invoice(app, "pi_d")
    item = dispute("pi_d", status)
    record_run(app, item)
    app.reconciliation.resolve(UUID(item.id), action=APPLY, note="dispute webhooks lost", by="ana")
    payment = app.payment(payment_id_for("stripe", "pi_d"))
    assert payment.disputes["dp_rec"]["status"] == status
    assert payment.disputes["dp_rec"]["amount"] == 4_000
    version, invoice_version = payment.version, app.invoice(invoice_id).version
    ingest(
        app,
        verified_event(
            "evt_late_dispute",
            event_type,
            "dispute",
            id="dp_rec",
            amount=4_000,
            currency="usd",
            payment_intent="pi_d",
            charge="ch_pi_d",
            status=stripe_status,
            reason="fraudulent",
        ),
    )
    assert app.payment(payment.id).version == version
    assert app.invoice(invoice_id).version == invoice_version


def test_apply_closes_a_dispute_the_ledger_has_open(app: BillingApplication) -> None:
    paid_invoice(app, "pi_d")
    opened = dispute("pi_d", "open")
    record_run(app, opened)
    app.reconciliation.resolve(UUID(opened.id), action=APPLY, note="opened", by="ana")
    lost = dispute("pi_d", "lost")
    [reported] = record_run(app, lost)  # the same item (the same dispute), found again: reopened
    assert reported["status"] == OPEN
    app.reconciliation.resolve(UUID(lost.id), action=APPLY, note="lost at Stripe", by="ana")
    assert app.payment(payment_id_for("stripe", "pi_d")).disputes["dp_rec"]["status"] == "lost"


def test_apply_refuses_what_a_closed_dispute_cannot_become(app: BillingApplication) -> None:
    paid_invoice(app, "pi_d")
    app.record_dispute_opened(payment_id_for("stripe", "pi_d"), dispute_id="dp_rec", amount=4_000)
    app.record_dispute_closed(payment_id_for("stripe", "pi_d"), dispute_id="dp_rec", won=True)
    item = dispute("pi_d", "lost")
    record_run(app, item)
    head = app.head()
    with pytest.raises(ApplyRefusedError, match=r"won .* in the ledger and lost"):
        app.reconciliation.resolve(UUID(item.id), action=APPLY, note="lost at Stripe", by="ana")
    assert app.head() == head


@pytest.mark.parametrize("status", ["paid", "failed"])
def test_apply_records_the_payout_and_its_webhook_changes_nothing(
    app: BillingApplication, runner: ProjectionRunner, engine: Engine, status: str
) -> None:
    item = payout(status)
    record_run(app, item)
    resolved = app.reconciliation.resolve(UUID(item.id), action=APPLY, note="payout webhook lost", by="ana").result
    kept = app.runner.get(payout_id_for("stripe", "po_rec"), Payout)
    assert kept is not None
    assert kept.status == (PAYOUT_PAID if status == "paid" else PAYOUT_FAILED)
    assert resolved["resolution"]["events"] == [{"id": str(kept.id), "version": kept.version}]
    runner.catch_up()
    before = (postings(engine), balances(engine))
    ingest(
        app,
        verified_event(
            "evt_late_payout",
            f"payout.{status}",
            "payout",
            id="po_rec",
            amount=9_000,
            currency="usd",
            status=status,
        ),
    )
    runner.catch_up()
    assert (postings(engine), balances(engine)) == before
    assert before[1].get(("usd", "bank"), 0) == (9_000 if status == "paid" else 0)


@pytest.mark.parametrize("facts", [{}, {"kind": "none"}, {"kind": "payment", "payment_intent": "pi_x"}])
def test_apply_is_refused_when_the_item_names_nothing_to_bring_in(
    app: BillingApplication, facts: dict[str, Any]
) -> None:
    item = found(MISSING_IN_LEDGER, "pi_x", facts)
    record_run(app, item)
    head = app.head()
    with pytest.raises(ReconciliationActionError) as refused:
        app.reconciliation.resolve(UUID(item.id), action=APPLY, note="bring it in", by="ana")
    assert refused.value.field == "action"
    assert app.head() == head


def test_apply_in_another_currency_than_the_invoice_is_refused(app: BillingApplication) -> None:
    invoice_id = open_invoice(app)
    item = missing_payment(invoice_id)
    item = Difference(**{**item.to_state(), "facts": {**item.facts, "currency": "eur"}})
    record_run(app, item)
    head = app.head()
    with pytest.raises(CurrencyMismatchError):
        app.reconciliation.resolve(UUID(item.id), action=APPLY, note="bring it in", by="ana")
    assert app.head() == head


# ---------------------------------------------------------------------------- explain, refusals


def test_explain_settles_the_item_with_the_note_and_nothing_else(app: BillingApplication) -> None:
    item = nothing_to_apply()
    record_run(app, item)
    head = app.head()
    resolved = app.reconciliation.resolve(UUID(item.id), action=EXPLAIN, note="test mode charge", by="ana").result
    assert resolved["status"] == EXPLAINED
    assert resolved["resolution"] == {
        "by": "ana",
        "at": app.clock.now().isoformat(),
        "action": EXPLAIN,
        "note": "test mode charge",
        "events": [],
    }
    assert app.head() == head + 1


@pytest.mark.parametrize(
    ("action", "note", "by", "error"),
    [
        (EXPLAIN, "", "ana", InvalidTextError),
        (EXPLAIN, "because", "", InvalidTextError),
        (APPLY, "because", "ana", ReconciliationActionError),  # missing_in_stripe: nothing to apply
        (REFUND_DUPLICATE, "because", "ana", ReconciliationActionError),
        (FIXED, "because", "ana", ReconciliationActionError),  # the ledger's own, never a person's
        ("delete", "because", "ana", ReconciliationActionError),
    ],
)
def test_a_refused_resolve_changes_nothing(
    app: BillingApplication, action: str, note: str, by: str, error: type[Exception]
) -> None:
    item = nothing_to_apply()
    record_run(app, item)
    head = app.head()
    with pytest.raises(error):
        app.reconciliation.resolve(UUID(item.id), action=action, note=note, by=by)
    assert app.head() == head
    assert item_of(app, item).status == OPEN


def test_an_item_is_settled_once(app: BillingApplication) -> None:
    invoice_id = open_invoice(app)
    item = missing_payment(invoice_id)
    record_run(app, item)
    app.reconciliation.resolve(UUID(item.id), action=EXPLAIN, note="paid by wire", by="ana")
    head = app.head()
    with pytest.raises(ItemSettledError):
        app.reconciliation.resolve(UUID(item.id), action=APPLY, note="apply it after all", by="bo")
    assert app.head() == head
    assert app.invoice(invoice_id).amount_paid == 0


def test_an_unknown_item_is_not_found(app: BillingApplication) -> None:
    with pytest.raises(NotFoundError):
        app.reconciliation.resolve(uuid4(), action=EXPLAIN, note="?", by="ana")
    assert issubclass(ReconciliationItemNotFoundError, NotFoundError)
    assert app.head() == 0


def test_a_resolve_repeated_with_its_key_is_answered_as_the_first(app: BillingApplication, clock: ManualClock) -> None:
    item = nothing_to_apply()
    record_run(app, item)
    first = app.reconciliation.resolve(UUID(item.id), action=EXPLAIN, note="known", by="api", idempotency_key="k1")
    clock.advance(timedelta(minutes=1))
    head = app.head()
    again = app.reconciliation.resolve(UUID(item.id), action=EXPLAIN, note="known", by="api", idempotency_key="k1")
    assert (again.result, again.replayed) == (first.result, True)
    assert app.head() == head
    with pytest.raises(IdempotencyKeyReusedError):
        app.reconciliation.resolve(UUID(item.id), action=EXPLAIN, note="other", by="api", idempotency_key="k1")


# ---------------------------------------------------------------------------- refund_duplicate


def test_refund_duplicate_asks_the_provider_once_and_records_the_refund_id(
    paying_app: BillingApplication, provider: FakePaymentProvider
) -> None:
    app = paying_app
    paid_invoice(app, "pi_twice")
    item = duplicate("pi_twice")
    record_run(app, item)
    resolved = app.reconciliation.resolve(
        UUID(item.id), action=REFUND_DUPLICATE, note="customer paid twice", by="ana"
    ).result
    key = f"reconciliation-refund:{item.id}:ch_pi_twice:10000"  # the item, and the refund it asks for
    [(asked_key, refund)] = provider.refunds.items()
    assert asked_key == key
    assert (refund.charge_id, refund.amount, refund.currency) == ("ch_pi_twice", 10_000, "usd")
    assert resolved["status"] == RESOLVED
    assert resolved["resolution"]["action"] == REFUND_DUPLICATE
    assert resolved["resolution"]["note"].startswith("customer paid twice")
    assert refund.refund_id in resolved["resolution"]["note"]
    head = app.head()
    with pytest.raises(ItemSettledError):  # refused before the provider is asked again
        app.reconciliation.resolve(UUID(item.id), action=REFUND_DUPLICATE, note="again", by="ana")
    assert app.head() == head
    assert len(provider.refunds) == 1


def test_refund_duplicate_repeated_with_its_key_does_not_ask_again(
    paying_app: BillingApplication, provider: FakePaymentProvider
) -> None:
    app = paying_app
    item = duplicate("pi_twice")
    record_run(app, item)
    first = app.reconciliation.resolve(
        UUID(item.id), action=REFUND_DUPLICATE, note="paid twice", by="api", idempotency_key="r1"
    )
    provider.unavailable = 1  # were it asked again, it would fail
    again = app.reconciliation.resolve(
        UUID(item.id), action=REFUND_DUPLICATE, note="paid twice", by="api", idempotency_key="r1"
    )
    assert (again.result, again.replayed) == (first.result, True)


def test_refund_duplicate_without_a_provider_stores_nothing(app: BillingApplication) -> None:
    item = duplicate("pi_twice")
    record_run(app, item)
    head = app.head()
    with pytest.raises(ProviderConfigurationError):
        app.reconciliation.resolve(UUID(item.id), action=REFUND_DUPLICATE, note="paid twice", by="ana")
    assert app.head() == head


def test_refund_duplicate_with_the_provider_down_stores_nothing_and_asks_the_same_later(
    paying_app: BillingApplication, provider: FakePaymentProvider
) -> None:
    app = paying_app
    item = duplicate("pi_twice")
    record_run(app, item)
    head = app.head()
    provider.unavailable = 1
    with pytest.raises(ProviderUnavailableError):
        app.reconciliation.resolve(UUID(item.id), action=REFUND_DUPLICATE, note="paid twice", by="ana")
    assert app.head() == head
    # The provider is back: the same refund is asked for, with the same key.
    app.reconciliation.resolve(UUID(item.id), action=REFUND_DUPLICATE, note="paid twice", by="ana")
    assert list(provider.refunds) == [f"reconciliation-refund:{item.id}:ch_pi_twice:10000"]


def test_refund_duplicate_is_refused_before_the_provider_is_asked(
    paying_app: BillingApplication, provider: FakePaymentProvider
) -> None:
    app = paying_app
    other = nothing_to_apply()
    no_charge = found(DUPLICATE_PAYMENT, "pi_nocharge", {"kind": "duplicate", "payment_intent": "pi_nocharge"})
    inconsistent = found(INVOICE_INCONSISTENT, "inv", {})
    record_run(app, other, no_charge, inconsistent)
    head = app.head()
    for item, note in ((other, "x"), (no_charge, "x"), (inconsistent, "x"), (duplicate("pi_unknown"), "x")):
        with pytest.raises((ReconciliationActionError, NotFoundError)):
            app.reconciliation.resolve(UUID(item.id), action=REFUND_DUPLICATE, note=note, by="ana")
    record_run(app, duplicate("pi_long"))
    head = app.head()
    with pytest.raises(InvalidTextError):  # no room left for the refund's id
        app.reconciliation.resolve(UUID(duplicate("pi_long").id), action=REFUND_DUPLICATE, note="x" * 1990, by="ana")
    assert provider.refunds == {}
    assert app.head() == head
