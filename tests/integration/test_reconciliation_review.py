"""Reconciliation, reviewed: the cases a finance team meets that the first stories did not.

Each test stages Stripe's side with the in-memory account of tests/stripe_world.py (its
`FakeRecords` pages and filters as Stripe's list endpoints do) and the ledger through webhooks,
then checks one thing the engine must get right. Both backends.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from sqlalchemy import Engine, func, select

from adapters.bootstrap import bootstrap
from adapters.clock import ManualClock
from adapters.read_models import projection_runner
from adapters.settings import Settings
from adapters.stripe.payloads import read_event
from commands.application import BillingApplication
from commands.ingestion.stripe_events import ingest
from commands.messages import NewLine
from commands.reconciliation.facts import BalanceTransactionFact, Period, RefundFact
from ledger.money import Money
from ledger.reconciliation.items import (
    DISPUTE_MISMATCH,
    DUPLICATE_PAYMENT,
    MISSING_IN_LEDGER,
    OPEN,
    PAYOUT_MISMATCH,
    REFUND_MISSING_IN_LEDGER,
    REFUND_MISSING_IN_STRIPE,
    RESOLVED,
    UNATTRIBUTED,
    ReconciliationActionError,
    item_id_for,
)
from projections.reconciliation.engine import Report, reconcile
from projections.runner import ProjectionRunner
from projections.tables import processor_fees
from tests.conftest import AppFactory
from tests.fake_payments import FakePaymentProvider
from tests.stripe_payloads import event_payload
from tests.stripe_world import Fact, FakeRecords, StripeWorld

DAY = timedelta(days=1)


@dataclass
class Account:
    app: BillingApplication
    runner: ProjectionRunner
    clock: ManualClock
    world: StripeWorld

    def invoice(self, total: int, currency: str = "usd") -> UUID:
        invoice_id = self.app.create_draft(
            customer={"email": "ap@example.com", "name": "Example"},
            currency=currency,
            lines=[NewLine("Consulting", 1, total)],
        ).result
        self.app.issue(invoice_id)
        return invoice_id

    def at(self, moment: datetime) -> None:
        """Both clocks at `moment`: the ledger's and Stripe's."""
        self.clock.set(moment)
        self.world.clock = int(moment.timestamp())

    def deliver(self, fact: Fact) -> None:
        for body in fact.webhooks:
            ingest(self.app, read_event(body.decode()))

    def reconcile(self, period: Period, *, stripe: bool = True) -> Report:
        records = FakeRecords(self.world) if stripe else None
        return reconcile(self.app, self.runner, period=period, records=records, requested_by="review")

    def status(self, item_id: UUID) -> str:
        return self.app.reconciliation.item(item_id).status


@pytest.fixture
def account(make_app: AppFactory, engine: Engine, clock: ManualClock) -> Account:
    app = make_app()
    world = StripeWorld()
    world.clock = int(clock.now().timestamp())
    return Account(app, projection_runner(app, engine), clock, world)


def open_items(report: Report) -> list[dict[str, Any]]:
    return [item for item in report.items if item["status"] == OPEN]


def around(moment: datetime) -> Period:
    return Period(moment - DAY, moment + DAY)


# ------------------------------------------------------------------------------ the period's edges


def test_an_item_of_the_last_period_is_not_fixed_by_a_run_that_read_it_only_as_lookback(account: Account) -> None:
    """The staging reads three days before the period so that late webhooks still match; what it
    reads there is not the period's, and an item about it is not this run's to call fixed."""
    start = account.clock.now()
    march = Period(start, start + DAY)
    account.at(start + DAY - timedelta(hours=1))  # the last hour of the first period
    invoice_id = account.invoice(5_000)
    payment = account.world.pay(invoice_id, 5_000, 0)  # its webhook never arrives

    [item] = open_items(account.reconcile(march))
    assert (item["class"], item["stripe_id"]) == (MISSING_IN_LEDGER, payment.stripe_id)

    account.at(start + DAY + timedelta(hours=2))
    next_day = Period(start + DAY, start + 2 * DAY)
    report = account.reconcile(next_day)
    assert item["id"] not in {i["id"] for i in report.items}  # not this period's difference
    assert account.status(UUID(item["id"])) == OPEN  # nothing fixed it: the payment is still missing


# ------------------------------------------------------------------------------ a charge without a PaymentIntent


def test_a_refund_of_a_charge_made_without_a_payment_intent_can_be_applied(account: Account) -> None:
    """A charge made with the Charges API has no PaymentIntent: the ledger keys its payment by the
    charge, and a refund of it must name that key for `apply`, and the charge in its sentence."""
    now = account.clock.now()
    invoice_id = account.invoice(8_000)
    world = account.world
    world.pay(invoice_id, 8_000, 0)
    world.charges[-1] = replace(world.charges[-1], payment_id=None)
    world.intents.clear()
    charge = world.charges[-1]
    world.clock += 60
    refund_txn = BalanceTransactionFact(
        id="txn_RefundOfBareCharge",
        kind="refund",
        amount=Money(-2_000, "usd"),
        fee=Money(0, "usd"),
        net=Money(-2_000, "usd"),
        source="re_OfBareCharge",
        status="available",
        created=world.clock,
    )
    world.transactions.append(refund_txn)
    world.refunds.append(
        RefundFact(
            id="re_OfBareCharge",
            charge_id=charge.id,
            payment_id=None,
            amount=Money(2_000, "usd"),
            status="succeeded",
            balance_transaction=refund_txn.id,
            created=world.clock,
        )
    )

    [payment_item] = open_items(account.reconcile(around(now)))
    assert (payment_item["class"], payment_item["stripe_id"]) == (MISSING_IN_LEDGER, charge.id)
    assert "PaymentIntent" not in payment_item["explanation"]  # it has none: the charge is named
    account.app.reconciliation.resolve(UUID(payment_item["id"]), action="apply", note="from Stripe", by="review")

    [refund_item] = open_items(account.reconcile(around(now)))
    assert refund_item["class"] == REFUND_MISSING_IN_LEDGER
    assert "None" not in refund_item["explanation"]
    assert charge.id in refund_item["explanation"]
    account.app.reconciliation.resolve(UUID(refund_item["id"]), action="apply", note="from Stripe", by="review")
    assert account.app.invoice(invoice_id).amount_refunded == 2_000
    assert open_items(account.reconcile(around(now))) == []


# ------------------------------------------------------------------------------ duplicates, seen by both kinds of run


def test_a_duplicate_only_stripe_can_see_is_not_fixed_by_a_ledger_only_run(account: Account) -> None:
    """Paid twice at Stripe, the second webhook lost: the ledger alone sees one payment, and
    cannot tell that the overpayment is gone."""
    now = account.clock.now()
    invoice_id = account.invoice(3_000)
    account.deliver(account.world.pay(invoice_id, 3_000, 0))
    account.world.pay(invoice_id, 3_000, 0)  # its webhook never arrives

    report = account.reconcile(around(now))
    assert sorted(i["class"] for i in open_items(report)) == [DUPLICATE_PAYMENT, MISSING_IN_LEDGER]
    duplicate = item_id_for(DUPLICATE_PAYMENT, str(invoice_id))

    account.reconcile(around(now), stripe=False)
    assert account.status(duplicate) == OPEN


def test_a_duplicate_the_ledger_holds_is_not_fixed_by_a_stripe_run_that_did_not_read_the_first_charge(
    account: Account,
) -> None:
    """Paid on the 2nd and again on the 20th: a Stripe run of the 20th reads only the second
    charge (and three days before); the ledger still holds both payments, so the duplicate stands."""
    start = account.clock.now()
    invoice_id = account.invoice(3_000)
    account.deliver(account.world.pay(invoice_id, 3_000, 0))
    later = start + 18 * DAY
    account.at(later)
    account.deliver(account.world.pay(invoice_id, 3_000, 0))

    ledger_run = account.reconcile(around(later), stripe=False)
    assert [i["class"] for i in open_items(ledger_run)] == [DUPLICATE_PAYMENT]
    duplicate = item_id_for(DUPLICATE_PAYMENT, str(invoice_id))

    account.reconcile(around(later))
    assert account.status(duplicate) == OPEN
    assert account.app.invoice(invoice_id).amount_paid == 6_000  # still paid twice


# ------------------------------------------------------------------------------ the summary


def test_a_refund_that_failed_at_stripe_leaves_stripes_own_figures_adding_up(account: Account) -> None:
    """A refund Stripe could not make (the card closed) returns the money with a `refund_failure`
    balance transaction: Stripe's refunds for the period are then nil, and its headings still
    add up to its net, as a finance person checks them."""
    now = account.clock.now()
    invoice_id = account.invoice(10_000)
    world = account.world
    payment = world.pay(invoice_id, 10_000, 320)
    account.deliver(payment)
    refund = world.refund(payment, 3_000)
    account.deliver(refund)
    world.clock += 60
    world.refunds[-1] = replace(world.refunds[-1], status="failed")
    world.transactions.append(
        BalanceTransactionFact(
            id="txn_RefundFailure",
            kind="refund_failure",
            amount=Money(3_000, "usd"),
            fee=Money(0, "usd"),
            net=Money(3_000, "usd"),
            source=refund.stripe_id,
            status="available",
            created=world.clock,
        )
    )

    report = account.reconcile(around(now))
    theirs = report.summary["currencies"]["usd"]["stripe"]
    assert theirs["net"] == 10_000 - 320
    assert theirs["gross"] - theirs["refunds"] - theirs["disputes"] - theirs["fees"] == theirs["net"]
    assert theirs["refunds"] == 0
    # The ledger still holds the refund: one item says so, and it is the whole difference.
    [item] = open_items(report)
    assert (item["class"], item["stripe_id"], item["amount_ledger"]) == (
        REFUND_MISSING_IN_STRIPE,
        refund.stripe_id,
        3_000,
    )
    assert "it is failed there" in item["explanation"]
    assert report.summary["currencies"]["usd"]["difference"] == -3_000


# ------------------------------------------------------------------------------ applied in a later period


def test_a_payment_applied_while_reconciling_last_month_is_not_missing_in_stripe_this_month(
    account: Account,
) -> None:
    """March is reconciled on April 5th, and a payment of March 21st is applied then: the ledger
    records it in April, but Stripe made it in March, where it is matched. April's run, which
    reads Stripe from March 29th on only, must not call it a payment Stripe does not have."""
    march_start = account.clock.now()
    march = Period(march_start, march_start + 30 * DAY)
    april = Period(march.end, march.end + 30 * DAY)
    account.at(march.end - 10 * DAY)  # before April's lookback
    invoice_id = account.invoice(5_000)
    account.world.pay(invoice_id, 5_000, 150)  # its webhook never arrives
    refund = account.world.refund(account.world.facts[-1], 1_000)  # nor does the refund's

    account.at(april.start + 5 * DAY)
    [item] = open_items(account.reconcile(march))
    account.app.reconciliation.resolve(UUID(item["id"]), action="apply", note="from Stripe", by="review")
    [refund_item] = open_items(account.reconcile(march))
    assert refund_item["stripe_id"] == refund.stripe_id
    account.app.reconciliation.resolve(UUID(refund_item["id"]), action="apply", note="from Stripe", by="review")
    settled = account.reconcile(march)
    assert open_items(settled) == []
    assert settled.summary["currencies"]["usd"]["difference"] == 0

    account.at(april.end - DAY)
    report = account.reconcile(april)
    assert open_items(report) == []
    usd = report.summary["currencies"].get("usd")
    assert usd is None or (usd["ledger"]["gross"], usd["ledger"]["refunds"], usd["difference"]) == (0, 0, 0)


# ------------------------------------------------------------------------------ payouts


@pytest.mark.parametrize("late_webhook", [False, True], ids=["applied", "late-webhook"])
def test_a_payout_that_fails_the_month_after_it_was_paid_is_found_in_the_month_it_failed(
    account: Account, late_webhook: bool
) -> None:
    """A payout paid on March 28th bounces on April 3rd (the bank account closed): Stripe puts the
    money back with a `payout_failure` balance transaction in April. The payout itself was made
    in March, so April's run does not list it; the failure is April's, and its webhook was lost."""
    march_start = account.clock.now()
    march = Period(march_start, march_start + 30 * DAY)
    april = Period(march.end, march.end + 30 * DAY)
    account.at(march.end - 5 * DAY)
    invoice_id = account.invoice(10_000)
    account.deliver(account.world.pay(invoice_id, 10_000, 0))
    account.at(march.end - 3 * DAY)
    payout = account.world.payout()
    assert payout is not None
    account.deliver(payout)
    assert open_items(account.reconcile(march)) == []

    account.at(april.start + 2 * DAY)
    world = account.world
    world.payouts[-1] = replace(world.payouts[-1], status="failed", failure_code="account_closed")
    world.transactions.append(
        BalanceTransactionFact(
            id="txn_PayoutFailure",
            kind="payout_failure",
            amount=Money(10_000, "usd"),
            fee=Money(0, "usd"),
            net=Money(10_000, "usd"),
            source=payout.stripe_id,
            status="available",
            created=world.clock,
        )
    )

    [item] = open_items(account.reconcile(april))
    assert (item["class"], item["stripe_id"]) == (PAYOUT_MISMATCH, payout.stripe_id)
    assert (item["amount_stripe"], item["amount_ledger"]) == (10_000, 10_000)
    assert "100.00 USD" in item["explanation"]
    if late_webhook:
        body = event_payload(
            "payout.failed",
            "payout",
            event_id="evt_PayoutFailedLate",
            created=world.clock,
            id=payout.stripe_id,
            amount=10_000,
            currency="usd",
            status="failed",
        )
        ingest(account.app, read_event(body.decode()))
        rerun = account.reconcile(april)
        fixed = next(i for i in rerun.items if i["id"] == item["id"])
        assert (fixed["status"], fixed["resolution"]["action"]) == (RESOLVED, "fixed")
        [closing] = fixed["resolution"]["events"]  # the payout's event that fixed it
        assert closing["version"] >= 2
    else:
        account.app.reconciliation.resolve(UUID(item["id"]), action="apply", note="the bank returned it", by="review")
    assert open_items(account.reconcile(april)) == []
    assert open_items(account.reconcile(march)) == []  # the same difference, settled


# ------------------------------------------------------------------------------ currencies


def test_a_period_in_three_currencies_is_summed_and_explained_in_each(account: Account) -> None:
    """Dollars, yen (no decimals) and Kuwaiti dinars (three): each currency summed on its own,
    and each amount written with its currency's own decimals."""
    now = account.clock.now()
    world = account.world
    delivered = []
    for currency, amount, fee in (("usd", 12_345, 390), ("jpy", 5_000, 180), ("kwd", 12_340, 370)):
        world.currency = currency
        invoice_id = account.invoice(amount, currency)
        delivered.append((currency, world.pay(invoice_id, amount, fee)))
    for currency, payment in delivered:
        if currency != "jpy":
            account.deliver(payment)

    report = account.reconcile(around(now))
    [item] = open_items(report)
    assert (item["class"], item["currency"], item["amount_stripe"]) == (MISSING_IN_LEDGER, "jpy", 5_000)
    assert "5,000 JPY" in item["explanation"]
    currencies = report.summary["currencies"]
    assert sorted(currencies) == ["jpy", "kwd", "usd"]
    assert currencies["usd"]["stripe"]["net"] == currencies["usd"]["ledger"]["net"] == 12_345 - 390
    assert currencies["kwd"]["stripe"]["net"] == currencies["kwd"]["ledger"]["net"] == 12_340 - 370
    assert (currencies["usd"]["difference"], currencies["kwd"]["difference"]) == (0, 0)
    # The yen were collected at Stripe and are not in the books: the fee is, the payment is not.
    assert currencies["jpy"]["stripe"]["net"] == 5_000 - 180
    assert currencies["jpy"]["ledger"] == {
        "gross": 0,
        "refunds": 0,
        "disputes": 0,
        "fees": 180,
        "net": -180,
        "payouts": 0,
    }
    assert currencies["jpy"]["difference"] == -5_000

    account.app.reconciliation.resolve(UUID(item["id"]), action="apply", note="from Stripe", by="review")
    settled = account.reconcile(around(now))
    assert open_items(settled) == []
    assert {c: v["difference"] for c, v in settled.summary["currencies"].items()} == {"jpy": 0, "kwd": 0, "usd": 0}
    assert set(settled.summary["journal"].values()) == {0}


# ------------------------------------------------------------------------------ what a duplicate's refund gives back


def duplicate_facts(account: Account, invoice_id: UUID) -> dict[str, Any]:
    return account.app.reconciliation.item(item_id_for(DUPLICATE_PAYMENT, str(invoice_id))).found.facts


@pytest.mark.parametrize("stripe", [True, False], ids=["stripe", "ledger"])
def test_a_duplicate_refund_gives_back_the_overpayment_not_more(account: Account, stripe: bool) -> None:
    """An invoice of 50.00 paid 30.00 and then 30.00 again is overpaid by 10.00: refunding the
    whole second charge would leave it 20.00 short."""
    now = account.clock.now()
    invoice_id = account.invoice(5_000)
    account.deliver(account.world.pay(invoice_id, 3_000, 0))
    account.clock.advance(timedelta(minutes=5))
    second = account.world.pay(invoice_id, 3_000, 0)
    account.deliver(second)

    [item] = open_items(account.reconcile(around(now), stripe=stripe))
    assert (item["class"], item["amount_ledger"], item["amount_stripe"]) == (DUPLICATE_PAYMENT, 5_000, 6_000)
    facts = duplicate_facts(account, invoice_id)
    assert (facts["payment_intent"], facts["amount"]) == (second.stripe_id, 1_000)
    assert "10.00 USD" in item["explanation"]


@pytest.mark.parametrize("stripe", [True, False], ids=["stripe", "ledger"])
def test_a_duplicate_refund_names_a_payment_that_still_holds_the_money(account: Account, stripe: bool) -> None:
    """Paid three times; the third was refunded in full already, and the first partly (so the
    ledger touched it last). The one to refund is the second: the latest that still holds money."""
    now = account.clock.now()
    invoice_id = account.invoice(3_000)
    payments = []
    for _ in range(3):
        payments.append(account.world.pay(invoice_id, 3_000, 0))
        account.deliver(payments[-1])
        account.clock.advance(timedelta(minutes=5))
    world = account.world
    for payment, amount in ((payments[2], 3_000), (payments[0], 500)):
        account.deliver(world.refund(payment, amount))
        index = next(i for i, c in enumerate(world.charges) if c.payment_id == payment.stripe_id)
        world.charges[index] = replace(world.charges[index], amount_refunded=Money(amount, "usd"))
        account.clock.advance(timedelta(minutes=5))

    [item] = open_items(account.reconcile(around(now), stripe=stripe))
    assert (item["class"], item["amount_stripe"]) == (DUPLICATE_PAYMENT, 5_500)
    facts = duplicate_facts(account, invoice_id)
    assert (facts["payment_intent"], facts["amount"]) == (payments[1].stripe_id, 2_500)
    assert payments[1].stripe_id in item["explanation"]


def test_what_agreed_counts_the_periods_objects_only(account: Account) -> None:
    """The lookback is read to match late webhooks; a payment and refund made and recorded before
    the period agree, but are not the period's: `summary.matched` counts one of each, not two."""
    start = account.clock.now()
    period = Period(start, start + DAY)
    for moment in (start - 2 * DAY, start + timedelta(hours=2)):
        account.at(moment)
        invoice_id = account.invoice(4_000)
        payment = account.world.pay(invoice_id, 4_000, 0)
        account.deliver(payment)
        account.deliver(account.world.refund(payment, 1_000))

    report = account.reconcile(period)
    assert open_items(report) == []
    assert (report.summary["matched"]["payments"], report.summary["matched"]["refunds"]) == (1, 1)


@pytest.mark.parametrize("stripe", [True, False], ids=["stripe", "ledger"])
def test_an_invoice_paid_twice_whose_second_payment_was_charged_back_is_not_overpaid(
    account: Account, stripe: bool
) -> None:
    """The customer paid twice and had the bank take the second payment back (a dispute, lost):
    we hold the invoice's total once. Refunding the second charge would pay them a third time
    (and Stripe refuses to refund a disputed charge)."""
    now = account.clock.now()
    invoice_id = account.invoice(3_000)
    account.deliver(account.world.pay(invoice_id, 3_000, 0))
    account.clock.advance(timedelta(minutes=5))
    second = account.world.pay(invoice_id, 3_000, 0)
    account.deliver(second)
    account.deliver(account.world.dispute(second, 3_000, "lost"))

    report = account.reconcile(around(now), stripe=stripe)
    assert [i["class"] for i in open_items(report)] == []


# ------------------------------------------------------------------------------ one payment, two charges


def test_a_payment_declined_once_then_paid_is_one_difference_when_only_the_decline_arrived(account: Account) -> None:
    """A PaymentIntent whose first charge was declined and second succeeded: Stripe lists two
    charges for one payment. Only the decline's webhook arrived: one item, naming the charge that
    succeeded, and applying it makes the payment succeeded, once."""
    now = account.clock.now()
    invoice_id = account.invoice(7_000)
    world = account.world
    paid = world.pay(invoice_id, 7_000, 233)
    succeeded = world.charges[-1]
    declined = replace(
        succeeded,
        id="ch_DeclinedFirst",
        status="failed",
        captured=False,
        amount_captured=Money(0, "usd"),
        balance_transaction=None,
        created=succeeded.created - 30,
    )
    world.charges.insert(len(world.charges) - 1, declined)
    body = event_payload(
        "charge.failed",
        "charge",
        event_id="evt_DeclinedFirst",
        created=declined.created,
        id=declined.id,
        amount=7_000,
        amount_captured=0,
        amount_refunded=0,
        captured=False,
        paid=False,
        refunded=False,
        status="failed",
        currency="usd",
        payment_intent=paid.stripe_id,
        failure_code="card_declined",
        failure_message="Your card was declined.",
        metadata={"invoice_id": str(invoice_id)},
    )
    ingest(account.app, read_event(body.decode()))

    [item] = open_items(account.reconcile(around(now)))
    assert (item["class"], item["stripe_id"], item["amount_stripe"]) == (MISSING_IN_LEDGER, paid.stripe_id, 7_000)
    assert succeeded.id in item["explanation"]
    assert "the ledger's payment for it is failed" in item["explanation"]
    account.app.reconciliation.resolve(UUID(item["id"]), action="apply", note="from Stripe", by="review")
    report = account.reconcile(around(now))
    assert open_items(report) == []
    assert account.app.invoice(invoice_id).amount_paid == 7_000
    assert report.summary["currencies"]["usd"]["difference"] == 0


# ------------------------------------------------------------------------------ disputes


def inquiry(account: Account, invoice_id: UUID, *, told: bool) -> str:
    """A card network's inquiry (`warning_needs_response`): no money leaves the Stripe balance."""
    payment = account.world.pay(invoice_id, 6_000, 0)
    account.deliver(payment)
    dispute = account.world.dispute(payment, 6_000, None)
    world = account.world
    world.transactions = [t for t in world.transactions if t.source != dispute.stripe_id]
    world.disputes[-1] = replace(world.disputes[-1], status="warning_needs_response")
    if told:
        account.deliver(dispute)
    return dispute.stripe_id


def test_an_inquiry_the_ledger_holds_as_an_open_dispute_is_a_difference(account: Account) -> None:
    """The ledger opened a dispute (money withdrawn) for what Stripe holds as an inquiry (nothing
    withdrawn): the books disagree by its amount, and an item must say why."""
    now = account.clock.now()
    dispute = inquiry(account, account.invoice(6_000), told=True)

    report = account.reconcile(around(now))
    usd = report.summary["currencies"]["usd"]
    assert usd["difference"] == -6_000
    [item] = open_items(report)
    assert (item["class"], item["stripe_id"]) == (DISPUTE_MISMATCH, dispute)
    assert "warning_needs_response" in item["explanation"]
    with pytest.raises(ReconciliationActionError):  # nothing of Stripe's to bring in
        account.app.reconciliation.resolve(UUID(item["id"]), action="apply", note="from Stripe", by="review")


def test_an_inquiry_the_ledger_never_heard_of_moved_no_money_and_is_no_difference(account: Account) -> None:
    """`apply` would open a dispute here, withdrawing what Stripe did not: there is nothing to report."""
    now = account.clock.now()
    inquiry(account, account.invoice(6_000), told=False)

    report = account.reconcile(around(now))
    assert open_items(report) == []
    assert report.summary["currencies"]["usd"]["difference"] == 0


def test_a_payment_explained_last_month_whose_webhook_came_this_month_is_not_missing_in_stripe(
    account: Account,
) -> None:
    """March's missing payment was explained ("the webhook endpoint was down"), and its event
    reprocessed on April 10th: the payment is Stripe's from March, not a payment of April that
    Stripe lacks."""
    march_start = account.clock.now()
    march = Period(march_start, march_start + 30 * DAY)
    april = Period(march.end, march.end + 30 * DAY)
    account.at(march.end - 10 * DAY)
    invoice_id = account.invoice(5_000)
    payment = account.world.pay(invoice_id, 5_000, 150)
    account.at(april.start + 5 * DAY)
    [item] = open_items(account.reconcile(march))
    account.app.reconciliation.resolve(UUID(item["id"]), action="explain", note="endpoint was down", by="review")

    account.at(april.start + 10 * DAY)
    account.deliver(payment)
    report = account.reconcile(april)
    assert open_items(report) == []
    assert "usd" not in report.summary["currencies"] or report.summary["currencies"]["usd"]["difference"] == 0


# ------------------------------------------------------------------------------ a duplicate, again


def test_an_invoice_paid_twice_again_after_its_duplicate_was_refunded_can_be_refunded_again(
    database_url: str, clock: ManualClock, engine: Engine
) -> None:
    """The item of a duplicate is the invoice's: paid a third time after the second payment was
    refunded, it is reopened, and its refund is a new request to Stripe (another charge), not a
    replay of the first one's idempotency key (which Stripe refuses with other arguments)."""
    provider = FakePaymentProvider()
    app = bootstrap(Settings(database_url=database_url), clock=clock, payments=lambda: provider)
    try:
        world = StripeWorld()
        world.clock = int(clock.now().timestamp())
        account = Account(app, projection_runner(app, engine), clock, world)
        now = clock.now()
        invoice_id = account.invoice(3_000)
        account.deliver(world.pay(invoice_id, 3_000, 0))
        account.deliver(world.pay(invoice_id, 3_000, 0))
        [item] = open_items(account.reconcile(around(now)))
        resolve = app.reconciliation.resolve
        resolve(UUID(item["id"]), action="refund_duplicate", note="paid twice", by="review")
        [(charge, _)] = [(r.charge_id, r.amount) for r in provider.refunds.values()]
        second = next(f for f in world.facts if world._charge_of(f.stripe_id).id == charge)
        account.deliver(world.refund(second, 3_000))  # Stripe made it; its webhook arrives
        index = next(i for i, c in enumerate(world.charges) if c.id == charge)
        world.charges[index] = replace(world.charges[index], amount_refunded=Money(3_000, "usd"))
        assert open_items(account.reconcile(around(now))) == []

        clock.advance(timedelta(minutes=10))
        world.clock += 600
        third = world.pay(invoice_id, 3_000, 0)
        account.deliver(third)
        [again] = open_items(account.reconcile(around(now)))
        assert again["id"] == item["id"]  # the same item, reopened
        resolve(UUID(again["id"]), action="refund_duplicate", note="paid a third time", by="review")
        asked = sorted((r.charge_id, r.amount) for r in provider.refunds.values())
        assert asked == sorted([(charge, 3_000), (world._charge_of(third.stripe_id).id, 3_000)])
    finally:
        app.close()


# ------------------------------------------------------------------------------ fees


def test_the_fee_on_a_charge_naming_an_invoice_we_do_not_have_stays_out_of_our_books(
    account: Account, engine: Engine
) -> None:
    """Another application on the account tags its charges with its own invoice ids: the charge
    is unattributed, and so is its fee (the charge is not in our books, its fee is not either)."""
    now = account.clock.now()
    theirs = uuid4()
    account.world.pay(theirs, 990, 59)

    report = account.reconcile(around(now))
    [item] = open_items(report)
    assert (item["class"], item["amount_stripe"]) == (UNATTRIBUTED, 990)
    assert str(theirs) in item["explanation"]
    account.runner.catch_up()
    with engine.connect() as conn:
        fees = conn.execute(select(func.count()).select_from(processor_fees)).scalar()
    assert fees == 0
    assert report.summary["currencies"]["usd"]["ledger"]["fees"] == 0
