"""Reconciliation finds exactly what the webhooks did not say, and `apply` makes the books whole.

For random histories of payments, refunds, disputes and payouts (tests/stripe_world.py) whose
webhooks are withheld, duplicated and reordered at random, a Stripe reconciliation of the period
reports, as open items, exactly the facts the ledger was not told about (a refund or dispute of
a payment that was itself withheld shows once that payment is applied: it waits for it, as a
webhook would). Applying every item, run after run, leaves nothing open, and then the ledger's
processor balance equals Stripe's balance in every currency, with the journal balanced.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from adapters.bootstrap import bootstrap
from adapters.clock import ManualClock
from adapters.read_models import projection_runner, read_model_engine
from adapters.settings import Settings
from adapters.stripe.payloads import read_event
from commands.application import BillingApplication
from commands.ingestion.stripe_events import ingest
from commands.messages import NewLine
from commands.reconciliation.facts import Period
from ledger.accounting import PROCESSOR_BALANCE
from ledger.reconciliation.items import (
    DISPUTE_MISMATCH,
    MISSING_IN_LEDGER,
    OPEN,
    PAYOUT_MISMATCH,
    REFUND_MISSING_IN_LEDGER,
)
from projections.reconciliation.engine import reconcile
from projections.tables import journal
from tests.property.conftest import DatabaseFactory
from tests.stripe_world import Fact, FakeRecords, StripeWorld

START = datetime.fromtimestamp(1_790_000_000, tz=UTC)
PERIOD = Period(START - timedelta(hours=1), START + timedelta(days=10))
CLASS_OF = {
    "payment": MISSING_IN_LEDGER,
    "refund": REFUND_MISSING_IN_LEDGER,
    "dispute": DISPUTE_MISMATCH,
    "payout": PAYOUT_MISMATCH,
}


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[str, int, int]]:
    """Invoices as (story, amount, fee): each paid once, then maybe refunded, disputed."""
    stories = st.sampled_from(["paid", "paid", "refunded", "disputed-won", "disputed-lost", "disputed-open"])
    return draw(
        st.lists(
            st.tuples(stories, st.integers(500, 50_000), st.integers(0, 400)),
            min_size=1,
            max_size=6,
        )
    )


@settings(settings.get_profile("integration"), max_examples=20)
@given(history=histories(), seed=st.integers(0, 2**32 - 1), withheld=st.floats(0, 0.6))
def test_reconcile_finds_exactly_the_withheld_facts_and_apply_makes_the_books_whole(
    fresh_databases: DatabaseFactory,
    history: list[tuple[str, int, int]],
    seed: int,
    withheld: float,
) -> None:
    rng = random.Random(seed)
    with fresh_databases() as url:
        clock = ManualClock(START)
        app = bootstrap(Settings(database_url=url), clock=clock)
        engine = read_model_engine(url)
        try:
            runner = projection_runner(app, engine)
            world = _happen(app, history, rng)
            kept = {fact.stripe_id for fact in world.facts if rng.random() < withheld}
            _deliver(app, [f for f in world.facts if f.stripe_id not in kept], rng)
            records = FakeRecords(world)

            report = reconcile(app, runner, period=PERIOD, records=records, requested_by="property")
            found = {(item["class"], item["stripe_id"]) for item in report.items if item["status"] == OPEN}
            assert found == _expected_first(world, kept)

            for _ in range(4):  # a refund of a withheld payment shows once the payment is applied
                open_items = [item for item in report.items if item["status"] == OPEN]
                if not open_items:
                    break
                for item in open_items:
                    app.reconciliation.resolve(UUID(item["id"]), action="apply", note="from Stripe", by="property")
                report = reconcile(app, runner, period=PERIOD, records=records, requested_by="property")
            assert [item for item in report.items if item["status"] == OPEN] == []

            runner.catch_up()
            with engine.connect() as conn:
                totals = dict(
                    conn.execute(
                        select(journal.c.currency, func.sum(journal.c.debit) - func.sum(journal.c.credit)).group_by(
                            journal.c.currency
                        )
                    ).all()
                )
                balance = conn.execute(
                    select(func.sum(journal.c.debit) - func.sum(journal.c.credit)).where(
                        journal.c.account == PROCESSOR_BALANCE, journal.c.currency == world.currency
                    )
                ).scalar()
            assert all(total == 0 for total in totals.values())
            assert int(balance or 0) == world.balance()
            usd = report.summary["currencies"].get(world.currency)
            if usd is not None:
                assert usd["difference"] == 0
        finally:
            engine.dispose()
            app.close()


def _happen(app: BillingApplication, history: list[tuple[str, int, int]], rng: random.Random) -> StripeWorld:
    """Issue each invoice in the ledger, and let Stripe collect it, refund it, dispute it; now and
    then the balance is paid out."""
    world = StripeWorld()
    for story, amount, fee in history:
        invoice_id = app.create_draft(
            customer={"email": "ap@example.com", "name": "Example"},
            currency=world.currency,
            lines=[NewLine("Consulting", 1, amount)],
        ).result
        app.issue(invoice_id)
        payment = world.pay(invoice_id, amount, fee)
        if story == "refunded":
            world.refund(payment, rng.randint(1, amount))
        elif story.startswith("disputed"):
            outcome = story.removeprefix("disputed-")
            world.dispute(payment, rng.randint(1, amount), None if outcome == "open" else outcome)
        if rng.random() < 0.4:
            world.payout()
    return world


def _deliver(app: BillingApplication, facts: list[Fact], rng: random.Random) -> None:
    """Every webhook of the delivered facts, some twice, in any order."""
    deliveries = [body for fact in facts for body in fact.webhooks]
    deliveries += [body for body in deliveries if rng.random() < 0.3]
    rng.shuffle(deliveries)
    for body in deliveries:
        ingest(app, read_event(body.decode()))


def _expected_first(world: StripeWorld, kept: set[str]) -> set[tuple[str, str]]:
    """What the first run reports: each withheld fact, except the refunds and disputes of a
    withheld payment (they wait for it, and show once it is applied)."""
    payment_of = {r.id: r.payment_id for r in world.refunds} | {d.id: d.payment_id for d in world.disputes}
    expected = set()
    for fact in world.facts:
        if fact.stripe_id not in kept:
            continue
        if fact.kind in ("refund", "dispute") and payment_of[fact.stripe_id] in kept:
            continue
        expected.add((CLASS_OF[fact.kind], fact.stripe_id))
    return expected
