"""Reconciliation against the test Stripe server, one story per class of difference.

Each story seeds Stripe (through its own list endpoints: tests/stripe_server.py) and the ledger
(through webhooks, as Stripe would have told it) so that exactly one difference exists, runs a
reconciliation, finds exactly that item with its amounts and explanation, settles it, runs again
and sees it settled. A clean period reports nothing open. Both backends.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import Engine, func, select, update

from adapters.clock import ManualClock
from adapters.read_models import projection_runner
from adapters.stripe import StripePaymentProvider, StripeRecords
from adapters.stripe.payloads import read_event
from commands.application import BillingApplication
from commands.ingestion.stripe_events import ingest
from commands.messages import NewLine
from commands.reconciliation.commands import FeeToRecord
from commands.reconciliation.facts import Period
from ledger.accounting import PROCESSOR_BALANCE, PROCESSOR_FEES
from ledger.errors import ProviderConfigurationError
from ledger.money import Money
from ledger.reconciliation.items import (
    AMOUNT_MISMATCH,
    CLASSES,
    DISPUTE_MISMATCH,
    DUPLICATE_PAYMENT,
    EXPLAINED,
    FEE_MISMATCH,
    INVOICE_INCONSISTENT,
    MISSING_IN_LEDGER,
    MISSING_IN_STRIPE,
    OPEN,
    PAYOUT_MISMATCH,
    REFUND_MISSING_IN_LEDGER,
    REFUND_MISSING_IN_STRIPE,
    RESOLVED,
    STUCK_EVENT,
    UNATTRIBUTED,
    ReconciliationActionError,
)
from ledger.reconciliation.runs import FAILED
from projections.reconciliation.engine import PeriodError, Report, past_report, reconcile
from projections.runner import ProjectionRunner
from projections.tables import invoice_status, journal, processor_fees
from tests.conftest import AppFactory
from tests.reconciliation_contract import ITEM_FIELDS as CONTRACT_FIELDS
from tests.stripe_payloads import event_payload
from tests.stripe_server import API_KEY, StripeServer

ITEM_FIELDS = set(CONTRACT_FIELDS)


@dataclass
class Books:
    """The ledger, its read models and the Stripe account, for one story."""

    app: BillingApplication
    runner: ProjectionRunner
    stripe: StripeServer
    clock: ManualClock
    records: StripeRecords

    @property
    def now(self) -> int:
        return int(self.clock.now().timestamp())

    @property
    def period(self) -> Period:
        moment = self.clock.now()
        return Period(moment - timedelta(days=1), moment + timedelta(days=1))

    def invoice(self, total: int, currency: str = "usd") -> tuple[UUID, str]:
        invoice_id = self.app.create_draft(
            customer={"email": "ap@example.com", "name": "Ålesund Fisk AS"},
            currency=currency,
            lines=[NewLine("Consulting", 1, total)],
        ).result
        number = self.app.issue(invoice_id).result
        return invoice_id, number

    def tell(self, event_type: str, resource: str, **obj: Any) -> str:
        """Deliver the webhook Stripe would send; the outcome the ledger recorded."""
        event_id = f"evt_{resource.replace('.', '_')}_{obj['id']}_{event_type}"
        body = event_payload(event_type, resource, event_id=event_id, created=self.now, **obj)
        return ingest(self.app, read_event(body.decode())).outcome

    def paid(self, intent: str, charge: str, invoice_id: UUID, amount: int, currency: str = "usd") -> None:
        self.tell(
            "payment_intent.succeeded",
            "payment_intent",
            id=intent,
            amount=amount,
            amount_received=amount,
            currency=currency,
            status="succeeded",
            latest_charge=charge,
            last_payment_error=None,
            metadata={"invoice_id": str(invoice_id)},
        )

    def reconcile(self, *, stripe: bool = True) -> Report:
        return reconcile(
            self.app, self.runner, period=self.period, records=self.records if stripe else None, requested_by="test"
        )

    def resolve(self, item: dict[str, Any], action: str, note: str = "checked with the bank statement") -> None:
        self.app.reconciliation.resolve(UUID(item["id"]), action=action, note=note, by="finance@example.com")


@pytest.fixture
def books(make_app: AppFactory, engine: Engine, stripe_server: StripeServer, clock: ManualClock) -> Iterator[Books]:
    app = make_app()
    records = StripeRecords(API_KEY, api_base=stripe_server.base_url)
    try:
        yield Books(app, projection_runner(app, engine), stripe_server, clock, records)
    finally:
        records.close()


def open_items(report: Report) -> list[dict[str, Any]]:
    return [item for item in report.items if item["status"] == OPEN]


def only_item(report: Report, cls: str) -> dict[str, Any]:
    found = open_items(report)
    assert [(item["class"], item["status"]) for item in found] == [(cls, OPEN)], found
    [item] = found
    assert set(item) == ITEM_FIELDS
    assert report.summary["classes"][cls] == 1
    return item


def item_in(report: Report, item_id: str) -> dict[str, Any]:
    return next(item for item in report.items if item["id"] == item_id)


def journal_total(books: Books, account: str) -> int:
    books.runner.catch_up()
    with books.runner.engine.connect() as conn:
        query = select(func.sum(journal.c.debit) - func.sum(journal.c.credit)).where(journal.c.account == account)
        return int(conn.execute(query).scalar() or 0)


# ------------------------------------------------------------------------------ a clean period


def test_a_clean_period_reports_nothing_and_records_stripes_fees_once(books: Books) -> None:
    invoice_id, _ = books.invoice(12_000)
    seeded = books.stripe.seed_payment(amount=12_000, fee=378, invoice_id=str(invoice_id), created=books.now)
    books.paid(seeded.payment_intent, seeded.charge, invoice_id, 12_000)

    report = books.reconcile()
    assert report.items == []
    assert report.summary["classes"] == dict.fromkeys(CLASSES, 0)
    usd = report.summary["currencies"]["usd"]
    assert usd["stripe"] == {"gross": 12_000, "refunds": 0, "disputes": 0, "fees": 378, "net": 11_622, "payouts": 0}
    assert usd["ledger"] == usd["stripe"]
    assert usd["difference"] == 0
    assert report.summary["matched"]["payments"] == 1
    assert journal_total(books, PROCESSOR_FEES) == 378  # the fee reached the books
    assert journal_total(books, PROCESSOR_BALANCE) == 11_622

    again = books.reconcile()
    assert again.items == []
    assert journal_total(books, PROCESSOR_FEES) == 378  # once, however many runs read it
    with books.runner.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(processor_fees)).scalar() == 1


# ------------------------------------------------------------------------------ payments


def test_a_payment_whose_webhook_never_came_is_applied_and_the_late_webhook_changes_nothing(books: Books) -> None:
    invoice_id, number = books.invoice(5_000)
    seeded = books.stripe.seed_payment(amount=5_000, fee=175, invoice_id=str(invoice_id), created=books.now)

    item = only_item(books.reconcile(), MISSING_IN_LEDGER)
    assert (item["amount_ledger"], item["amount_stripe"], item["currency"]) == (None, 5_000, "usd")
    assert (item["stripe_id"], item["invoice_id"]) == (seeded.payment_intent, str(invoice_id))
    assert number in item["explanation"]
    assert "50.00 USD" in item["explanation"]
    assert seeded.charge in item["explanation"]

    books.resolve(item, "apply")
    rerun = books.reconcile()
    assert open_items(rerun) == []
    settled = item_in(rerun, item["id"])
    assert settled["status"] == RESOLVED
    assert settled["resolution"]["action"] == "apply"
    assert settled["resolution"]["by"] == "finance@example.com"
    assert settled["resolution"]["events"]  # the ledger events that brought the payment in

    books.paid(seeded.payment_intent, seeded.charge, invoice_id, 5_000)  # Stripe's retry, days later
    assert books.app.invoice(invoice_id).amount_paid == 5_000
    assert books.app.invoice(invoice_id).status == "paid"
    assert journal_total(books, PROCESSOR_BALANCE) == 5_000 - 175


def test_a_payment_stripe_does_not_have_is_explained_and_stays_explained(books: Books) -> None:
    invoice_id, _ = books.invoice(2_500)
    books.paid("pi_3NotAtStripe", "ch_3NotAtStripe", invoice_id, 2_500)

    item = only_item(books.reconcile(), MISSING_IN_STRIPE)
    assert (item["amount_ledger"], item["amount_stripe"], item["stripe_id"]) == (2_500, None, "pi_3NotAtStripe")
    assert "Stripe has no charge for it" in item["explanation"]
    with pytest.raises(ReconciliationActionError, match="allowed: explain"):
        books.resolve(item, "apply")

    books.resolve(item, "explain", "a test payment made on another account")
    rerun = books.reconcile()
    assert open_items(rerun) == []
    assert item_in(rerun, item["id"])["status"] == EXPLAINED  # found again, still explained


def test_a_payment_of_another_amount_than_stripe_captured(books: Books) -> None:
    invoice_id, _ = books.invoice(5_000)
    seeded = books.stripe.seed_payment(amount=4_000, invoice_id=str(invoice_id), created=books.now)
    books.paid(seeded.payment_intent, seeded.charge, invoice_id, 5_000)

    item = only_item(books.reconcile(), AMOUNT_MISMATCH)
    assert (item["amount_ledger"], item["amount_stripe"]) == (5_000, 4_000)
    assert "50.00 USD" in item["explanation"]
    assert "40.00 USD" in item["explanation"]
    books.resolve(item, "explain", "Stripe captured part; the rest was paid by transfer")
    assert item_in(books.reconcile(), item["id"])["status"] == EXPLAINED


def test_an_invoice_paid_twice_is_refunded_through_stripe(books: Books) -> None:
    books.clock.set(datetime.now(UTC))  # the test server stamps the refund it makes with its own clock
    invoice_id, number = books.invoice(3_000)
    first = books.stripe.seed_payment(amount=3_000, invoice_id=str(invoice_id), created=books.now)
    second = books.stripe.seed_payment(amount=3_000, invoice_id=str(invoice_id), created=books.now + 60)
    books.paid(first.payment_intent, first.charge, invoice_id, 3_000)
    books.paid(second.payment_intent, second.charge, invoice_id, 3_000)

    item = only_item(books.reconcile(), DUPLICATE_PAYMENT)
    assert (item["amount_ledger"], item["amount_stripe"], item["stripe_id"]) == (3_000, 6_000, second.charge)
    assert number in item["explanation"]
    assert "2 times" in item["explanation"]

    with pytest.raises(ProviderConfigurationError):
        books.resolve(item, "refund_duplicate")  # no provider configured: nothing asked, nothing settled
    provider = StripePaymentProvider(API_KEY, api_base=books.stripe.base_url)
    try:
        refunding = type(books.app)(clock=books.clock, env=books.app.env, payments=lambda: provider)
        refunding.reconciliation.resolve(
            UUID(item["id"]), action="refund_duplicate", note="paid twice by mistake", by="finance@example.com"
        )
        refunding.close()
    finally:
        provider.close()
    [refund] = books.stripe.objects("refund").values()
    assert (refund["charge"], refund["amount"]) == (second.charge, 3_000)
    rerun = books.reconcile()
    assert item_in(rerun, item["id"])["status"] == RESOLVED
    # Until its webhook arrives, the refund Stripe made is one the ledger lacks; then it is not.
    assert [(i["class"], i["stripe_id"]) for i in open_items(rerun)] == [(REFUND_MISSING_IN_LEDGER, refund["id"])]
    books.tell(
        "refund.created",
        "refund",
        id=refund["id"],
        amount=3_000,
        currency="usd",
        charge=second.charge,
        payment_intent=second.payment_intent,
        status="succeeded",
    )
    assert open_items(books.reconcile()) == []
    assert books.app.invoice(invoice_id).amount_refunded == 3_000


def test_a_charge_that_names_no_invoice_of_ours_is_unattributed(books: Books) -> None:
    seeded = books.stripe.seed_payment(amount=990, metadata={"order": "shop-17"}, created=books.now)
    item = only_item(books.reconcile(), UNATTRIBUTED)
    assert (item["stripe_id"], item["amount_stripe"], item["invoice_id"]) == (seeded.charge, 990, None)
    assert "names no invoice" in item["explanation"]
    assert journal_total(books, PROCESSOR_FEES) == 0  # another application's money: not in our books
    books.resolve(item, "explain", "the web shop's charges share the account")
    assert item_in(books.reconcile(), item["id"])["status"] == EXPLAINED


# ------------------------------------------------------------------------------ refunds and disputes


def _paid_invoice(books: Books, amount: int) -> tuple[UUID, Any]:
    invoice_id, _ = books.invoice(amount)
    seeded = books.stripe.seed_payment(amount=amount, invoice_id=str(invoice_id), created=books.now)
    books.paid(seeded.payment_intent, seeded.charge, invoice_id, amount)
    return invoice_id, seeded


def test_a_refund_made_in_stripe_is_brought_into_the_ledger(books: Books) -> None:
    invoice_id, seeded = _paid_invoice(books, 8_000)
    refund = books.stripe.seed_refund(charge=seeded.charge, amount=2_000, created=books.now)

    item = only_item(books.reconcile(), REFUND_MISSING_IN_LEDGER)
    assert (item["stripe_id"], item["amount_stripe"], item["amount_ledger"]) == (refund, 2_000, None)
    assert "20.00 USD" in item["explanation"]
    books.resolve(item, "apply")
    assert books.app.invoice(invoice_id).amount_refunded == 2_000
    rerun = books.reconcile()
    assert open_items(rerun) == []
    assert item_in(rerun, item["id"])["status"] == RESOLVED
    # the refund's webhook, late: nothing more
    books.tell(
        "refund.created",
        "refund",
        id=refund,
        amount=2_000,
        currency="usd",
        charge=seeded.charge,
        payment_intent=seeded.payment_intent,
        status="succeeded",
    )
    assert books.app.invoice(invoice_id).amount_refunded == 2_000


def test_a_refund_stripe_does_not_have(books: Books) -> None:
    _, seeded = _paid_invoice(books, 8_000)
    books.tell(
        "refund.created",
        "refund",
        id="re_3Phantom",
        amount=1_000,
        currency="usd",
        charge=seeded.charge,
        payment_intent=seeded.payment_intent,
        status="succeeded",
    )
    item = only_item(books.reconcile(), REFUND_MISSING_IN_STRIPE)
    assert (item["stripe_id"], item["amount_ledger"], item["amount_stripe"]) == ("re_3Phantom", 1_000, None)
    books.resolve(item, "explain", "refunded by bank transfer, recorded against the card payment")
    assert item_in(books.reconcile(), item["id"])["status"] == EXPLAINED


def test_a_lost_dispute_the_ledger_never_heard_of(books: Books) -> None:
    invoice_id, seeded = _paid_invoice(books, 6_000)
    dispute = books.stripe.seed_dispute(charge=seeded.charge, amount=6_000, status="lost", fee=1_500, created=books.now)

    item = only_item(books.reconcile(), DISPUTE_MISMATCH)
    assert (item["stripe_id"], item["amount_stripe"], item["amount_ledger"]) == (dispute, 6_000, None)
    assert "lost" in item["explanation"]
    books.resolve(item, "apply")
    invoice = books.app.invoice(invoice_id)
    assert invoice.amount_dispute_lost == 6_000
    rerun = books.reconcile()
    assert open_items(rerun) == []
    usd = rerun.summary["currencies"]["usd"]
    assert usd["ledger"]["disputes"] == usd["stripe"]["disputes"] == 6_000
    assert usd["ledger"]["fees"] == usd["stripe"]["fees"] == 1_500  # Stripe's dispute fee, in the books
    assert usd["difference"] == 0


# ------------------------------------------------------------------------------ fees and payouts


def test_a_fee_recorded_otherwise_than_stripe_kept_it(books: Books) -> None:
    invoice_id, _ = books.invoice(4_000)
    seeded = books.stripe.seed_payment(amount=4_000, fee=146, invoice_id=str(invoice_id), created=books.now)
    books.paid(seeded.payment_intent, seeded.charge, invoice_id, 4_000)
    fee = FeeToRecord(seeded.balance_transaction, Money(150, "usd"), seeded.charge, invoice_id)
    books.app.reconciliation.record_fees("stripe", [fee])  # read from another export, say

    item = only_item(books.reconcile(), FEE_MISMATCH)
    assert (item["stripe_id"], item["amount_ledger"], item["amount_stripe"]) == (seeded.balance_transaction, 150, 146)
    books.resolve(item, "explain", "the fee was corrected by Stripe after the export")
    assert item_in(books.reconcile(), item["id"])["status"] == EXPLAINED
    assert journal_total(books, PROCESSOR_FEES) == 150  # never recorded twice


def test_a_payout_the_ledger_has_not_recorded_is_applied(books: Books) -> None:
    _, seeded = _paid_invoice(books, 10_000)
    payout = books.stripe.seed_payout(transactions=[seeded.balance_transaction], created=books.now)

    item = only_item(books.reconcile(), PAYOUT_MISMATCH)
    assert (item["stripe_id"], item["amount_stripe"], item["amount_ledger"]) == (payout, 10_000, None)
    assert "has not recorded it" in item["explanation"]
    books.resolve(item, "apply")
    rerun = books.reconcile()
    assert open_items(rerun) == []
    assert journal_total(books, PROCESSOR_BALANCE) == 0  # all of it went to the bank
    assert journal_total(books, "bank") == 10_000


def test_a_payout_that_is_not_the_sum_of_what_it_carried(books: Books) -> None:
    _, seeded = _paid_invoice(books, 10_000)
    payout = books.stripe.seed_payout(transactions=[seeded.balance_transaction], amount=10_500, created=books.now)
    books.tell("payout.paid", "payout", id=payout, amount=10_500, currency="usd", status="paid")

    item = only_item(books.reconcile(), PAYOUT_MISMATCH)
    assert (item["stripe_id"], item["amount_stripe"]) == (payout, 10_500)
    assert "come to 100.00 USD" in item["explanation"]
    with pytest.raises(Exception, match=r"nothing|facts|explain"):
        books.resolve(item, "apply")  # there is no fact to bring in: it is Stripe's own sum
    books.resolve(item, "explain", "Stripe's adjustment, ticket 4411")
    assert item_in(books.reconcile(), item["id"])["status"] == EXPLAINED


# ------------------------------------------------------------------------------ the ledger alone


def test_a_webhook_waiting_for_more_than_an_hour_is_stuck(books: Books) -> None:
    outcome = books.tell(
        "refund.created",
        "refund",
        id="re_3Orphan",
        amount=500,
        currency="usd",
        charge="ch_3Unknown",
        payment_intent="pi_3Unknown",
        status="succeeded",
    )
    assert outcome == "waiting"
    assert open_items(books.reconcile(stripe=False)) == []  # not stuck yet
    books.clock.advance(timedelta(hours=2))
    report = books.reconcile(stripe=False)
    item = only_item(report, STUCK_EVENT)
    assert "re_3Orphan" in item["explanation"]
    assert "waiting" in item["explanation"]
    assert report.source == "ledger"
    assert report.summary["currencies"] == {}
    books.resolve(item, "explain", "a refund of the old system's payment")
    assert item_in(books.reconcile(stripe=False), item["id"])["status"] == EXPLAINED


def test_an_invoice_whose_read_model_disagrees_with_its_payments_until_rebuilt(books: Books) -> None:
    invoice_id, seeded = _paid_invoice(books, 7_000)
    books.runner.catch_up()
    with books.runner.engine.begin() as conn:  # a read model drifted (a bug, a manual edit)
        conn.execute(
            update(invoice_status).where(invoice_status.c.invoice_id == str(invoice_id)).values(amount_paid=6_000)
        )
    item = only_item(books.reconcile(stripe=False), INVOICE_INCONSISTENT)
    assert item["invoice_id"] == str(invoice_id)
    assert "60.00 USD paid" in item["explanation"]
    assert "70.00 USD" in item["explanation"]

    books.runner.rebuild()
    rerun = books.reconcile(stripe=False)
    assert open_items(rerun) == []
    fixed = item_in(rerun, item["id"])
    assert fixed["status"] == RESOLVED
    assert fixed["resolution"]["action"] == "fixed"
    assert fixed["resolution"]["by"] == "ledger"
    del seeded


# ------------------------------------------------------------------------------ runs


def test_a_late_webhook_resolves_the_item_by_the_event_that_fixed_it(books: Books) -> None:
    invoice_id, _ = books.invoice(5_000)
    seeded = books.stripe.seed_payment(amount=5_000, invoice_id=str(invoice_id), created=books.now)
    item = only_item(books.reconcile(), MISSING_IN_LEDGER)
    books.paid(seeded.payment_intent, seeded.charge, invoice_id, 5_000)  # it came after all
    rerun = books.reconcile()
    fixed = item_in(rerun, item["id"])
    assert (fixed["status"], fixed["resolution"]["action"], fixed["resolution"]["by"]) == (RESOLVED, "fixed", "ledger")
    assert fixed["resolution"]["events"]
    assert fixed["resolution"]["events"][0]["id"]


def test_a_past_report_is_shown_again_exactly_as_it_was(books: Books) -> None:
    invoice_id, _ = books.invoice(5_000)
    books.stripe.seed_payment(amount=5_000, invoice_id=str(invoice_id), created=books.now)
    first = books.reconcile()
    item = only_item(first, MISSING_IN_LEDGER)
    books.resolve(item, "apply")
    books.reconcile()

    shown, status = past_report(books.app, first.run_id)
    assert status == "completed"
    assert shown.as_json() == first.as_json()  # the item still open, as it was then


def test_a_run_stripe_refuses_is_recorded_as_failed_with_the_reason(books: Books) -> None:
    books.stripe.fail_next("authentication", 1)
    with pytest.raises(ProviderConfigurationError, match=r"sk_test_\.\.\."):
        books.reconcile()
    books.runner.catch_up()
    with books.runner.engine.connect() as conn:
        from projections.tables import reconciliation_runs

        [row] = conn.execute(select(reconciliation_runs.c.status, reconciliation_runs.c.failure)).all()
    assert row.status == FAILED
    assert "STRIPE_API_KEY" in (row.failure or "")


def test_a_period_that_ends_before_it_starts_is_refused(books: Books) -> None:
    moment = datetime(2026, 3, 2, tzinfo=UTC)
    with pytest.raises(PeriodError, match="must end after it starts"):
        reconcile(books.app, books.runner, period=Period(moment, moment), records=None, requested_by="test")


class _Broken(StripeRecords):
    """A reader with a bug in it: the run must still be recorded, as failed, by its type."""

    def charges(self, period: Period) -> Iterator[list[Any]]:
        raise RuntimeError("a bug while reading charges")


def test_a_run_stopped_by_a_bug_is_recorded_as_failed_not_left_running(books: Books) -> None:
    broken = _Broken(API_KEY, api_base=books.stripe.base_url)
    try:
        with pytest.raises(RuntimeError):
            reconcile(books.app, books.runner, period=books.period, records=broken, requested_by="test")
    finally:
        broken.close()
    books.runner.catch_up()
    with books.runner.engine.connect() as conn:
        from projections.tables import reconciliation_runs

        [row] = conn.execute(select(reconciliation_runs.c.status, reconciliation_runs.c.failure)).all()
    assert row.status == FAILED
    assert row.failure == "RuntimeError: a bug while reading charges"
