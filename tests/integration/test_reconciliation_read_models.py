"""Reconciliation's read models (projections/reconciliation/) on both backends: the ledger side
(fees, payouts, refunds, disputes) looked up by the provider's ids, the items as the runs and
their settlements left them, and the runs; each equal to a rebuild from the log."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import AggregateNotFoundError
from sqlalchemy import Engine, select

from adapters.clock import ManualClock
from adapters.read_models import projection_runner, read_model_projections
from commands.application import BillingApplication
from commands.messages import NewLine
from ledger.errors import InvalidInputError
from ledger.fees import ProcessorFee, fee_id_for
from ledger.money import Money
from ledger.payouts import Payout, payout_id_for
from ledger.reconciliation.items import (
    DUPLICATE_PAYMENT,
    EXPLAIN,
    FEE_MISMATCH,
    FIXED,
    MISSING_IN_LEDGER,
    STUCK_EVENT,
    Difference,
    ReconciliationItem,
    item_id_for,
)
from ledger.reconciliation.runs import ReconciliationRun
from projections.consistency import check
from projections.reconciliation.items import item_row, list_items, open_items
from projections.reconciliation.ledger_side import (
    RecordedDispute,
    RecordedFee,
    RecordedPayout,
    RecordedRefund,
    disputes_between,
    disputes_by_id,
    fees_between,
    fees_by_transaction,
    payouts_between,
    payouts_by_provider_id,
    refunds_between,
    refunds_by_id,
)
from projections.reconciliation.runs import list_runs, run_row
from projections.runner import ProjectionRunner
from projections.tables import reconciliation_items
from tests.read_model_dump import dump_read_models

ACME = {"email": "ap@acme.example", "name": "Acme"}


def _paid_invoice(app: BillingApplication, intent: str, amount: int, currency: str) -> tuple[UUID, UUID]:
    invoice_id = app.create_draft(customer=ACME, currency=currency, lines=[NewLine("Work", 1, amount)]).result
    app.issue(invoice_id)
    payment_id = app.record_provider_payment_succeeded(
        provider="stripe",
        provider_payment_id=intent,
        invoice_id=invoice_id,
        amount_captured=Money(amount, currency),
        charge_id=intent.replace("pi_", "ch_"),
    ).result
    return invoice_id, payment_id


def _log_position(app: BillingApplication, aggregate_id: UUID, version: int) -> int:
    """The notification id of one stored event (what the rows keep as `position`)."""
    for notification in app.recorder.select_notifications(start=1, limit=10**6):
        if notification.originator_id == aggregate_id and notification.originator_version == version:
            return int(notification.id)
    raise AssertionError(f"no event {aggregate_id} v{version}")


# --------------------------------------------------------------------------- the ledger side


def test_fees_payouts_refunds_and_disputes_are_found_by_the_providers_ids(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    usd_invoice, usd_payment = _paid_invoice(app, "pi_usd", 50_000, "usd")
    eur_invoice, eur_payment = _paid_invoice(app, "pi_eur", 90_000, "eur")
    runner.catch_up(batch_size=2)  # the payments are known before their refunds arrive

    refunded_at = clock.advance(timedelta(days=1))
    app.record_refund(usd_payment, refund_id="re_1", amount=7_500)
    app.record_refund(usd_payment, refund_id="re_2", amount=2_500)
    opened_at = clock.advance(timedelta(hours=1))
    for dispute, amount in (("dp_won", 10_000), ("dp_lost", 20_000), ("dp_open", 5_000)):
        app.record_dispute_opened(eur_payment, dispute_id=dispute, amount=amount, reason="fraudulent")
    closed_at = clock.advance(timedelta(days=10))
    app.record_dispute_closed(eur_payment, dispute_id="dp_won", won=True)
    app.record_dispute_closed(eur_payment, dispute_id="dp_lost", won=False)

    paid_at = clock.advance(timedelta(days=1))
    app.record_payout(provider="stripe", provider_payout_id="po_paid", amount=Money(30_000, "usd"), paid=True)
    app.record_payout(provider="stripe", provider_payout_id="po_returned", amount=Money(8_000, "eur"), paid=True)
    failed_at = clock.advance(timedelta(hours=2))
    app.record_payout(
        provider="stripe", provider_payout_id="po_returned", amount=Money(8_000, "eur"), paid=False, code="no_account"
    )
    app.save(Payout.report(provider="stripe", provider_payout_id="po_moving", amount=Money(4_000, "usd"), at=failed_at))

    fee_at = clock.advance(timedelta(hours=1))
    app.save(
        ProcessorFee.record(
            provider="stripe",
            balance_transaction_id="txn_usd",
            amount=Money(1_480, "usd"),
            source_id="ch_usd",
            invoice_id=usd_invoice,
            at=fee_at,
        ),
        ProcessorFee.record(
            provider="stripe",
            balance_transaction_id="txn_returned",
            amount=Money(-25, "eur"),
            source_id=None,
            invoice_id=None,
            at=fee_at,
        ),
    )

    # A new runner has no payment in memory: a refund's invoice and currency are loaded.
    projection_runner(app, engine).catch_up(batch_size=3)

    usd_fee_id, returned_fee_id = fee_id_for("stripe", "txn_usd"), fee_id_for("stripe", "txn_returned")
    fees = {
        "txn_usd": RecordedFee(
            str(usd_fee_id), "stripe", "txn_usd", "ch_usd", str(usd_invoice), "usd", 1_480, fee_at,
            _log_position(app, usd_fee_id, 1),
        ),
        "txn_returned": RecordedFee(
            str(returned_fee_id), "stripe", "txn_returned", None, None, "eur", -25, fee_at,
            _log_position(app, returned_fee_id, 1),
        ),
    }  # fmt: skip
    assert fees_by_transaction(engine, ["txn_usd", "txn_returned", "txn_unknown"]) == fees
    assert fees_by_transaction(engine, []) == {}

    payouts = {
        "po_paid": RecordedPayout(
            str(payout_id_for("stripe", "po_paid")), "stripe", "po_paid", "usd", 30_000, "paid", paid_at, paid_at, 2
        ),
        "po_returned": RecordedPayout(
            str(payout_id_for("stripe", "po_returned")), "stripe", "po_returned", "eur", 8_000, "failed",
            paid_at, failed_at, 3,
        ),
        "po_moving": RecordedPayout(
            str(payout_id_for("stripe", "po_moving")), "stripe", "po_moving", "usd", 4_000, "in_transit",
            failed_at, failed_at, 1,
        ),
    }  # fmt: skip
    assert payouts_by_provider_id(engine, [*payouts, "po_unknown"]) == payouts

    refunds = {
        refund_id: RecordedRefund(
            refund_id, str(usd_payment), str(usd_invoice), "usd", amount, refunded_at,
            _log_position(app, usd_payment, version),
        )
        for refund_id, amount, version in (("re_1", 7_500, 3), ("re_2", 2_500, 4))
    }  # fmt: skip
    assert refunds_by_id(engine, ["re_1", "re_2", "re_unknown"]) == refunds

    disputes = {
        dispute_id: RecordedDispute(
            dispute_id, str(eur_payment), str(eur_invoice), "eur", amount, status, opened_at,
            closed_at if version > 5 else opened_at, _log_position(app, eur_payment, version),
        )
        for dispute_id, amount, status, version in (
            ("dp_won", 10_000, "won", 6),
            ("dp_lost", 20_000, "lost", 7),
            ("dp_open", 5_000, "open", 5),
        )
    }  # fmt: skip
    with engine.connect() as conn:  # inside a caller's transaction too
        assert disputes_by_id(conn, ["dp_won", "dp_lost", "dp_open"]) == disputes

    # The ledger's side of a period, page by page.
    day = datetime(2026, 3, 2, tzinfo=UTC)
    assert [[r.refund_id for r in page] for page in refunds_between(engine, day, day + timedelta(days=2))] == [
        ["re_1", "re_2"]
    ]
    assert list(refunds_between(engine, day + timedelta(days=2), day + timedelta(days=30))) == []
    pages = list(disputes_between(engine, refunded_at, closed_at, page_size=2))
    assert [[d.dispute_id for d in page] for page in pages] == [["dp_lost", "dp_open"], ["dp_won"]]
    assert [[p.provider_payout_id for p in page] for page in payouts_between(engine, paid_at, failed_at)] == [
        sorted(["po_paid", "po_returned"], key=lambda p: str(payout_id_for("stripe", p)))
    ]
    assert sum(len(page) for page in fees_between(engine, fee_at, fee_at + timedelta(seconds=1), page_size=1)) == 2

    _rebuild_gives_the_same_rows(app, runner)


def _rebuild_gives_the_same_rows(app: BillingApplication, runner: ProjectionRunner) -> None:
    """A rebuild in scratch tables (`ledger rebuild --check`, which reads no prepared state) and
    a rebuild in place, in other batches than the live models were built in, equal them."""
    report = check(runner.engine, app, lambda: read_model_projections(app), batch_size=4)
    assert report.ok, str(report)
    assert {"processor_fees", "payouts", "payment_refunds", "payment_disputes"} <= {t.table for t in report.tables}
    assert {"reconciliation_items", "reconciliation_runs"} <= {t.table for t in report.tables}
    before = dump_read_models(runner)
    runner.rebuild(batch_size=1_000)
    assert dump_read_models(runner) == before


# --------------------------------------------------------------------------- items and runs

PERIOD = (datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))


def _difference(cls: str, key: str, **shown: Any) -> Difference:
    fields: dict[str, Any] = {
        "currency": "usd",
        "amount_ledger": None,
        "amount_stripe": 2_000,
        "stripe_id": key,
        "invoice_id": None,
        "payment_id": None,
        "explanation": f"{cls} of {key}",
        "events": [],
        **shown,
    }
    return Difference(id=str(item_id_for(cls, key)), cls=cls, facts={"kind": "none"}, **fields)


def _listed(difference: Difference, item: ReconciliationItem) -> dict[str, Any]:
    """An item as a run's report lists it (the Difference's fixed shape, status, resolution)."""
    shown = {k: v for k, v in difference.to_state().items() if k not in ("cls", "facts")}
    return {
        **shown,
        "class": difference.cls,
        "status": item.status,
        "detected_at": item.created_on.isoformat(),
        "resolution": item.resolution,
    }


def _run(
    app: BillingApplication,
    clock: ManualClock,
    found: list[Difference],
    *,
    items_first: bool,
    fixed: tuple[UUID, ...] = (),
) -> UUID:
    """A run as the commands record it: the run and its items in one transaction."""
    at = clock.advance(timedelta(hours=1))
    run = ReconciliationRun.start(
        run_id=uuid4(), start=PERIOD[0], end=PERIOD[1], source="stripe", requested_by="ops@acme.example", at=at
    )
    items: list[ReconciliationItem] = []
    for difference in found:
        try:
            item = app.repository.get(UUID(difference.id))
            assert isinstance(item, ReconciliationItem)
            item.reopen(difference, run_id=str(run.id), at=at)
        except AggregateNotFoundError:  # never detected before
            item = ReconciliationItem.detect(difference, run_id=str(run.id), at=at)
        items.append(item)
    for item_id in fixed:
        item = app.repository.get(item_id)
        assert isinstance(item, ReconciliationItem)
        item.settle(action=FIXED, by="ledger", note="", at=at, events=[{"id": "late", "version": 2, "position": 9}])
        items.append(item)
    run.found([_listed(d, i) for d, i in zip(found, items, strict=False)], at=at)
    run.complete({"classes": {d.cls: 1 for d in found}, "matched": {"payments": 3}}, at=at)
    app.save(*items, run) if items_first else app.save(run, *items)
    return run.id


def _settle(app: BillingApplication, clock: ManualClock, item_id: str, action: str, note: str) -> datetime:
    at = clock.advance(timedelta(minutes=5))
    item = app.repository.get(UUID(item_id))
    assert isinstance(item, ReconciliationItem)
    item.settle(action=action, by="finance@acme.example", note=note, at=at)
    app.save(item)
    return at


def test_items_show_what_the_latest_run_found_and_how_each_was_settled(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    missing = _difference(MISSING_IN_LEDGER, "pi_missing", invoice_id=str(uuid4()))
    fee = _difference(FEE_MISMATCH, "txn_fee", amount_ledger=30, amount_stripe=32)
    stuck = _difference(STUCK_EVENT, "evt_stuck", currency=None, amount_stripe=None)
    first_at = clock.now() + timedelta(hours=1)
    first = _run(app, clock, [missing, fee, stuck], items_first=False)  # listed before detected
    runner.catch_up(batch_size=2)
    assert {i["id"]: i["status"] for i in open_items(engine)} == {missing.id: "open", fee.id: "open", stuck.id: "open"}

    explained_at = _settle(app, clock, fee.id, EXPLAIN, "Stripe rounds the fee up")
    second_at = clock.now() + timedelta(hours=1)
    events = [{"id": str(uuid4()), "version": 1, "position": 3}]
    missing_now = replace(missing, amount_stripe=2_500, explanation="now 25.00", events=events)
    fee_now = replace(fee, amount_stripe=40, explanation="changed while explained")
    second = _run(app, clock, [missing_now, fee_now], items_first=True, fixed=(UUID(stuck.id),))
    # Found again after the ledger had fixed it: reopened with what the third run found.
    stuck_now = replace(stuck, explanation="stuck again")
    third = _run(app, clock, [stuck_now], items_first=False)
    runner.catch_up(batch_size=3)

    assert item_row(engine, missing.id) == {
        "id": missing.id,
        "class": MISSING_IN_LEDGER,
        "status": "open",
        "currency": "usd",
        "amount_ledger": None,
        "amount_stripe": 2_500,  # as the latest run found it
        "stripe_id": "pi_missing",
        "invoice_id": missing.invoice_id,
        "payment_id": None,
        "explanation": "now 25.00",
        "events": events,
        "detected_at": first_at.isoformat(),
        "resolution": None,
    }
    explained = item_row(engine, fee.id)
    assert explained is not None
    assert (explained["status"], explained["amount_stripe"], explained["explanation"]) == (
        "explained",
        32,  # an explained item keeps what was explained
        fee.explanation,
    )
    assert explained["resolution"] == {
        "by": "finance@acme.example",
        "at": explained_at.isoformat(),
        "action": "explain",
        "note": "Stripe rounds the fee up",
        "events": [],
    }
    reopened = item_row(engine, stuck.id)
    assert reopened is not None
    assert (reopened["status"], reopened["explanation"], reopened["resolution"], reopened["detected_at"]) == (
        "open",
        "stuck again",
        None,
        first_at.isoformat(),
    )
    assert item_row(engine, str(uuid4())) is None

    with engine.connect() as conn:
        stored = {
            r.item_id: (r.last_run_id, r.version)
            for r in conn.execute(select(reconciliation_items.c.item_id, reconciliation_items.c.last_run_id,
                                         reconciliation_items.c.version))
        }  # fmt: skip
    assert stored == {missing.id: (str(second), 1), fee.id: (str(second), 2), stuck.id: (str(third), 3)}
    assert {i["id"] for i in open_items(engine)} == {missing.id, stuck.id}
    assert [i["id"] for i in open_items(engine, classes=[STUCK_EVENT, DUPLICATE_PAYMENT])] == [stuck.id]

    assert run_row(engine, str(first)) == {
        "id": str(first),
        "started_at": first_at.isoformat(),
        "completed_at": first_at.isoformat(),
        "period": {"from": PERIOD[0].isoformat(), "to": PERIOD[1].isoformat()},
        "source": "stripe",
        "status": "completed",
        "requested_by": "ops@acme.example",
        "items": 3,
        "summary": {"classes": {MISSING_IN_LEDGER: 1, FEE_MISMATCH: 1, STUCK_EVENT: 1}, "matched": {"payments": 3}},
        "failure": None,
    }
    second_run = run_row(engine, str(second))
    assert second_run is not None
    assert (second_run["started_at"], second_run["items"]) == (second_at.isoformat(), 2)
    assert run_row(engine, str(uuid4())) is None

    _rebuild_gives_the_same_rows(app, runner)


def test_a_failed_run_and_a_large_one_are_shown_as_they_ended(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    started = clock.now()
    run = ReconciliationRun.start(
        run_id=uuid4(), start=PERIOD[0], end=PERIOD[1], source="ledger", requested_by="cli", at=started
    )
    failed_at = clock.advance(timedelta(seconds=30))
    run.fail("Stripe answered 401: the API key was refused", at=failed_at)
    running = ReconciliationRun.start(
        run_id=uuid4(), start=PERIOD[0], end=PERIOD[1], source="stripe", requested_by="api", at=failed_at
    )
    app.save(run, running)
    many = [_difference(STUCK_EVENT, f"evt_{n}") for n in range(1_201)]  # three items-found events
    big = _run(app, clock, many, items_first=False)
    runner.catch_up(batch_size=2)

    failed = run_row(engine, str(run.id))
    assert failed is not None
    assert (failed["status"], failed["completed_at"], failed["failure"], failed["summary"], failed["source"]) == (
        "failed",
        failed_at.isoformat(),
        "Stripe answered 401: the API key was refused",
        None,
        "ledger",
    )
    assert run_row(engine, str(running.id)) == {
        "id": str(running.id),
        "started_at": failed_at.isoformat(),
        "completed_at": None,
        "period": {"from": PERIOD[0].isoformat(), "to": PERIOD[1].isoformat()},
        "source": "stripe",
        "status": "running",
        "requested_by": "api",
        "items": 0,
        "summary": None,
        "failure": None,
    }
    shown = run_row(engine, str(big))
    assert shown is not None
    assert (shown["status"], shown["items"]) == ("completed", 1_201)
    assert len(open_items(engine, classes=[STUCK_EVENT])) == 1_201


def test_items_and_runs_page_newest_first_with_filters_and_cursors(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    runs: list[UUID] = []
    detected: dict[str, datetime] = {}
    for n in range(5):
        found = [_difference(MISSING_IN_LEDGER, f"pi_{n}"), _difference(FEE_MISMATCH, f"txn_{n}")]
        runs.append(_run(app, clock, found, items_first=n % 2 == 0))
        detected.update({d.id: clock.now() for d in found})
    _settle(app, clock, _difference(FEE_MISMATCH, "txn_1").id, EXPLAIN, "known")
    runner.catch_up()

    def pages(**filters: Any) -> list[list[str]]:
        out: list[list[str]] = []
        cursor = None
        while True:
            page = list_items(engine, limit=3, cursor=cursor, **filters)
            out.append([item["id"] for item in page.rows])
            if page.next_cursor is None:
                return out
            cursor = page.next_cursor

    newest_first = sorted(detected, key=lambda i: (detected[i], i), reverse=True)
    every = pages()
    assert [i for page in every for i in page] == newest_first
    assert [len(page) for page in every] == [3, 3, 3, 1]
    fees = [i for page in pages(cls=FEE_MISMATCH) for i in page]
    assert fees == [_difference(FEE_MISMATCH, f"txn_{n}").id for n in reversed(range(5))]
    assert [i for page in pages(cls=FEE_MISMATCH, status="explained") for i in page] == [
        _difference(FEE_MISMATCH, "txn_1").id
    ]
    assert len([i for page in pages(status="open") for i in page]) == 9
    # [from, to): the runs were an hour apart; the second and third runs' items.
    window = pages(detected_from=detected[_difference(FEE_MISMATCH, "txn_1").id], detected_to=detected[fees[1]])
    assert sorted(i for page in window for i in page) == sorted(
        _difference(cls, f"{key}_{n}").id
        for n in (1, 2)
        for cls, key in ((MISSING_IN_LEDGER, "pi"), (FEE_MISMATCH, "txn"))
    )
    assert list_items(engine, cls=FEE_MISMATCH, detected_from=datetime(2030, 1, 1, tzinfo=UTC)).rows == []
    first = list_items(engine, limit=1).rows[0]
    assert set(first) == {
        "id", "class", "status", "currency", "amount_ledger", "amount_stripe", "stripe_id", "invoice_id",
        "payment_id", "explanation", "events", "detected_at", "resolution",
    }  # fmt: skip

    with pytest.raises(InvalidInputError) as unknown:
        list_items(engine, cls="missing")
    assert unknown.value.field == "class"
    with pytest.raises(InvalidInputError) as unknown:
        list_items(engine, status="closed")
    assert unknown.value.field == "status"
    with pytest.raises(InvalidInputError):
        list_items(engine, cursor="not-ours")

    run_pages: list[list[str]] = []
    cursor = None
    while True:
        page = list_runs(engine, limit=2, cursor=cursor)
        run_pages.append([run["id"] for run in page.rows])
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert run_pages == [[str(runs[4]), str(runs[3])], [str(runs[2]), str(runs[1])], [str(runs[0])]]
