"""The dashboard's queries (projections/admin/) on both backends: exact figures for a story told
through the application's commands, and keyset paging that loses and repeats no row for any sort."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from adapters.clock import ManualClock
from adapters.read_models import read_model_projections
from commands.application import BillingApplication
from commands.messages import NewLine
from commands.reconciliation.commands import FeeToRecord
from commands.reconciliation.facts import Period
from ledger.dunning.policy import DunningPolicy
from ledger.errors import InvalidInputError
from ledger.money import Money
from ledger.payouts import payout_id_for
from ledger.reconciliation.items import (
    EXPLAIN,
    MISSING_IN_LEDGER,
    PAYOUT_MISMATCH,
    STUCK_EVENT,
    Difference,
    item_id_for,
)
from projections.admin.activity import list_activity
from projections.admin.dashboard import WeekTotal, aging, collections_per_week, overview
from projections.admin.dunning import dunning_row
from projections.admin.failed_payments import failed_payments
from projections.admin.invoices import SORTS, invoice_audit, iter_invoices, search_invoices
from projections.admin.payouts import list_payouts, payout_detail
from projections.bulk import insert_rows
from projections.consistency import check
from projections.receivables import AgingBuckets
from projections.reconciliation.items import list_items
from projections.runner import ProjectionRunner
from projections.tables import admin_activity, invoice_status, payouts, reconciliation_items, webhook_events
from projections.webhook_inbox import list_webhook_events

TODAY = date(2026, 6, 15)  # a Monday
NOW = datetime(2026, 6, 15, 12, tzinfo=UTC)


def at(clock: ManualClock, moment: str) -> None:
    clock.set(datetime.fromisoformat(moment).replace(tzinfo=UTC))


def invoice(
    app: BillingApplication,
    amount: int,
    *,
    due: date | None,
    currency: str = "usd",
    customer: tuple[str, str] = ("ap@acme.example", "Acme Ltd"),
    issue: bool = True,
) -> UUID:
    invoice_id = app.create_draft(
        customer={"email": customer[0], "name": customer[1]},
        currency=currency,
        lines=[NewLine("Work", 1, amount)],
        due_date=due.isoformat() if due else None,
    ).result
    if issue:
        app.issue(invoice_id)
    return invoice_id


def days_ago(days: int) -> date:
    return TODAY - timedelta(days=days)


def fail(app: BillingApplication, invoice_id: UUID, intent: str, currency: str = "usd") -> None:
    app.record_provider_payment_failed(
        provider="stripe",
        provider_payment_id=intent,
        attempt_id=f"ch_{intent}",
        code="card_declined",
        message="Your card was declined.",
        invoice_id=invoice_id,
        amount=Money(app.invoice(invoice_id).amount_due, currency),
    )


def capture(app: BillingApplication, invoice_id: UUID, intent: str, amount: int, fee: int) -> None:
    app.record_provider_payment_succeeded(
        provider="stripe",
        provider_payment_id=intent,
        invoice_id=invoice_id,
        amount_captured=Money(amount, "usd"),
        fee=fee,
    )


@dataclass
class Story:
    ids: dict[str, UUID]


def tell_the_story(app: BillingApplication, clock: ManualClock, runner: ProjectionRunner) -> Story:
    """Invoices due on each side of every aging boundary, payments in May and across June's
    week boundaries, failures, a dunning under way, reconciliation items; all by command."""
    at(clock, "2026-03-01T09:00:00")
    ids: dict[str, UUID] = {}
    for name, amount, days in [
        ("future", 100, -5),
        ("today", 200, 0),
        ("d1", 400, 1),
        ("d30", 800, 30),
        ("d31", 1_600, 31),
        ("d60", 3_200, 60),
        ("d61", 6_400, 61),
        ("d90", 12_800, 90),
        ("d91", 25_600, 91),
    ]:
        ids[name] = invoice(app, amount, due=days_ago(days))
    ids["undated"] = invoice(app, 51_200, due=None)
    ids["uncollectible"] = invoice(app, 5_000, due=date(2026, 6, 1))
    ids["paid"] = invoice(app, 2_500, due=date(2026, 6, 30), customer=("billing@globex.example", "Globex"))
    ids["partial"] = invoice(app, 10_000, due=date(2026, 6, 30))
    ids["may"] = invoice(app, 1_000, due=date(2026, 6, 30))
    ids["eur"] = invoice(app, 9_000, due=date(2026, 6, 1), currency="eur", customer=("ap@initech.example", "Initech"))
    ids["draft"] = invoice(app, 999, due=None, issue=False)
    ids["void"] = invoice(app, 888, due=date(2026, 6, 30))

    at(clock, "2026-05-20T09:00:00")
    app.record_offline_payment(ids["may"], Money(700, "usd"), reference="wire-may")
    at(clock, "2026-06-03T09:00:00")
    app.record_offline_payment(ids["paid"], Money(2_500, "usd"), reference="wire-june")
    at(clock, "2026-06-07T23:59:59.999999")  # the last moment of the week starting June 1
    capture(app, ids["partial"], "pi_a", 1_000, 100)
    at(clock, "2026-06-08T00:00:00")  # the first moment of the next week
    capture(app, ids["partial"], "pi_b", 2_000, 0)
    at(clock, "2026-06-10T09:00:00")
    app.mark_uncollectible(ids["uncollectible"])
    app.void(ids["void"])
    at(clock, "2026-06-12T09:00:00")
    fail(app, ids["d61"], "pi_d61")
    at(clock, "2026-06-12T10:00:00")
    fail(app, ids["eur"], "pi_eur", "eur")
    at(clock, "2026-06-13T09:00:00")
    app.dunning.advance(ids["eur"], policy=DunningPolicy.parse())  # skips reminder:1 and retry:3, reminds (7)
    at(clock, "2026-06-15T00:00:00")  # the first moment of the current week
    app.record_offline_payment(ids["may"], Money(300, "usd"), reference="wire-rest")
    at(clock, "2026-06-15T11:00:00")
    differences = [
        _difference(MISSING_IN_LEDGER, "pi_x", "usd"),
        _difference(MISSING_IN_LEDGER, "pi_y", "eur"),
        _difference(STUCK_EVENT, "evt_z", None),
    ]
    record_run(app, differences, Period(datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 15, tzinfo=UTC)))
    app.reconciliation.resolve(UUID(differences[1].id), action=EXPLAIN, note="known", by="ops@acme.example")
    runner.catch_up()
    return Story(ids)


def _difference(cls: str, key: str, currency: str | None) -> Difference:
    return Difference(
        id=str(item_id_for(cls, key)),
        cls=cls,
        currency=currency,
        amount_ledger=None,
        amount_stripe=500 if currency else None,
        stripe_id=key,
        invoice_id=None,
        payment_id=None,
        explanation=f"{cls} {key}",
    )


def record_run(app: BillingApplication, differences: list[Difference], period: Period) -> None:
    app.reconciliation.record_run(
        run_id=uuid4(),
        period=period,
        source="stripe",
        requested_by="ops@acme.example",
        differences=differences,
        summary={"classes": {}},
        fixed=[],
    )


# --------------------------------------------------------------------------- overview


def test_the_overview_sums_each_currency_apart(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    tell_the_story(app, clock, runner)

    seen = overview(engine, today=TODAY, now=NOW)

    assert seen.month_start == date(2026, 6, 1)
    assert seen.open_reconciliation_items == 2  # the stuck event has no currency; the eur one was explained
    assert sorted(seen.currencies) == ["eur", "usd"]
    usd = seen.currencies["usd"]
    aging_set = 100 + 200 + 400 + 800 + 1_600 + 3_200 + 6_400 + 12_800 + 25_600 + 51_200
    assert usd.amount_due == aging_set + 7_000  # the partly paid one; paid, void, draft and uncollectible not
    assert usd.open_invoices == 11
    assert usd.overdue == 400 + 800 + 1_600 + 3_200 + 6_400 + 12_800 + 25_600  # due before today, not on it
    assert usd.overdue_invoices == 7
    assert usd.uncollectible == 5_000
    assert (usd.failed_payments, usd.failed_amount) == (1, 6_400)
    assert usd.collected_this_month == 2_500 + 1_000 + 2_000 + 300  # gross (the fee included); not May's 700
    assert usd.open_reconciliation_items == 1
    eur = seen.currencies["eur"]
    assert (eur.amount_due, eur.overdue, eur.failed_payments, eur.failed_amount) == (9_000, 9_000, 1, 9_000)
    assert (eur.collected_this_month, eur.open_reconciliation_items) == (0, 0)

    may = overview(engine, today=TODAY, now=datetime(2026, 5, 31, 23, 59, tzinfo=UTC))
    assert may.currencies["usd"].collected_this_month == 700


def test_aging_splits_on_day_boundaries(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    tell_the_story(app, clock, runner)

    buckets = aging(engine, TODAY)

    assert buckets == {
        "eur": AgingBuckets(days_1_30=9_000),
        "usd": AgingBuckets(
            current=100 + 200 + 51_200 + 7_000,  # not yet due, due today, no due date
            days_1_30=400 + 800 + 5_000,  # 1 and 30 days; the uncollectible one is still owed
            days_31_60=1_600 + 3_200,
            days_61_90=6_400 + 12_800,
            days_over_90=25_600,
        ),
    }
    assert aging(engine, TODAY + timedelta(days=1))["usd"].days_over_90 == 25_600 + 12_800  # 91 days now


def test_collections_per_week_start_on_monday_and_include_empty_weeks(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    tell_the_story(app, clock, runner)

    weeks = collections_per_week(engine, now=NOW, weeks=5)

    assert weeks == {
        "usd": [
            WeekTotal(date(2026, 5, 18), 700),
            WeekTotal(date(2026, 5, 25), 0),
            WeekTotal(date(2026, 6, 1), 2_500 + 1_000),  # up to Sunday 23:59:59.999999
            WeekTotal(date(2026, 6, 8), 2_000),  # from Monday 00:00
            WeekTotal(date(2026, 6, 15), 300),
        ]
    }
    assert collections_per_week(engine, now=NOW, weeks=3)["usd"][0] == WeekTotal(date(2026, 6, 1), 3_500)
    assert collections_per_week(engine, now=datetime(2026, 1, 1, tzinfo=UTC)) == {}


# --------------------------------------------------------------------------- invoice list


def numbers(page_rows: list[dict[str, Any]]) -> list[str | None]:
    return [row["number"] for row in page_rows]


def test_the_invoice_list_filters_and_searches(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    story = tell_the_story(app, clock, runner)
    at(clock, "2026-06-15T11:30:00")
    odd = invoice(app, 1, due=None, customer=("100%_off@shop.example", "Per_Cent Shop"))
    runner.catch_up()
    number_of = {name: app.invoice(invoice_id).number for name, invoice_id in story.ids.items()}

    def ids(**filters: Any) -> set[UUID]:
        return {UUID(row["invoice_id"]) for row in iter_invoices(engine, **filters)}

    everyone = set(story.ids.values()) | {odd}
    assert ids() == everyone  # a deleted draft would not be here; every status is
    assert ids(status="paid") == {story.ids["paid"], story.ids["may"]}
    assert ids(status="draft") == {story.ids["draft"]}
    assert ids(currency="eur") == {story.ids["eur"]}
    assert ids(customer="billing@globex.example") == {story.ids["paid"]}  # the email, whole
    assert ids(customer="globex") == set()
    assert ids(q="GLOBEX") == {story.ids["paid"]}  # a substring of the name or email, any case
    assert ids(q="initech.ex") == {story.ids["eur"]}
    assert ids(q="%") == {odd}  # wildcards are text
    assert ids(q="_") == {odd}
    assert ids(q=number_of["eur"]) == {story.ids["eur"]}  # a whole number
    assert ids(q=str(number_of["eur"]).lower()) == {story.ids["eur"]}  # in any case
    prefix = str(number_of["d1"])[:-1]  # a prefix matches every number it starts
    assert story.ids["d1"] in ids(number=prefix)
    assert all(str(row["number"]).startswith(prefix) for row in iter_invoices(engine, number=prefix))
    assert ids(number="NOPE") == set()
    assert ids(created_from=datetime(2026, 6, 15, 11, 30, tzinfo=UTC)) == {odd}
    assert ids(created_to=datetime(2026, 6, 15, 11, 30, tzinfo=UTC)) == everyone - {odd}
    assert ids(created_from=date(2026, 6, 15), created_to=date(2026, 6, 15)) == {odd}  # a date: the whole day
    assert ids(status="open", currency="usd", q="acme") == {
        story.ids[name]
        for name in ["future", "today", "d1", "d30", "d31", "d60", "d61", "d90", "d91", "undated", "partial"]
    }

    app.delete_draft(story.ids["draft"])
    runner.catch_up()
    assert story.ids["draft"] not in ids()


def test_the_invoice_list_sorts_with_nulls_last_either_way(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    story = tell_the_story(app, clock, runner)

    by_due = [row["due_date"] for row in iter_invoices(engine, sort="due_date", descending=False)]
    assert by_due[:2] == [days_ago(91).isoformat(), days_ago(90).isoformat()]
    assert by_due[-2:] == [None, None]  # the draft and the undated one, last
    by_due_desc = [row["due_date"] for row in iter_invoices(engine, sort="due_date", descending=True)]
    assert by_due_desc[0] == "2026-06-30"
    assert by_due_desc[-2:] == [None, None]
    by_number = list(iter_invoices(engine, sort="number", descending=False))
    assert by_number[-1]["invoice_id"] == str(story.ids["draft"])  # no number while draft
    totals = [row["total"] for row in iter_invoices(engine, sort="total", descending=True)]
    assert totals == sorted(totals, reverse=True)
    page = search_invoices(engine, sort="amount_due", descending=False, limit=3)
    assert [row["amount_due"] for row in page.rows] == [0, 0, 0]  # paid, paid and void: ties by invoice id
    assert [row["invoice_id"] for row in page.rows] == sorted(row["invoice_id"] for row in page.rows)


def test_a_cursor_is_only_good_for_the_listing_that_gave_it(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    tell_the_story(app, clock, runner)
    page = search_invoices(engine, sort="total", limit=2)
    assert page.next_cursor is not None
    assert search_invoices(engine, sort="total", limit=2, cursor=page.next_cursor).rows  # the same listing: fine
    with pytest.raises(InvalidInputError) as other_sort:
        search_invoices(engine, sort="due_date", cursor=page.next_cursor)
    assert other_sort.value.field == "cursor"
    with pytest.raises(InvalidInputError):
        search_invoices(engine, sort="total", descending=False, cursor=page.next_cursor)
    for bad in ["garbage", "W10=", "WyJ4IiwgMV0=", "%%%"]:
        with pytest.raises(InvalidInputError):
            search_invoices(engine, cursor=bad)
    with pytest.raises(InvalidInputError) as bad_sort:
        search_invoices(engine, sort="memo")
    assert bad_sort.value.field == "sort"
    for field, bad_text in [("q", "a\x00b"), ("customer", "x" * 255), ("number", "\x00")]:
        with pytest.raises(InvalidInputError) as refused:
            search_invoices(engine, **{field: bad_text})
        assert refused.value.field == field
    with pytest.raises(InvalidInputError) as bad_status:
        search_invoices(engine, status="deleted")
    assert bad_status.value.field == "status"


# Few distinct values, so that ties and NULLs are common.
_rows = st.lists(
    st.fixed_dictionaries(
        {
            "created_at": st.sampled_from([datetime(2026, 3, d, 9, s, tzinfo=UTC) for d in (1, 2) for s in (0, 1)]),
            "due_date": st.sampled_from([None, "2026-04-01", "2026-04-02"]),
            "number": st.sampled_from([None, "INV-000001", "INV-000002", "B-1"]),
            "customer_name": st.sampled_from(["Acme", "acme", "Globex"]),
            "customer_email": st.sampled_from(["ap@acme.example", "billing@globex.example"]),
            "total": st.integers(0, 2),
            "amount_due": st.integers(0, 2),
            "status": st.sampled_from(["draft", "open", "paid"]),
        }
    ),
    max_size=14,
)


def _row(index: int, drawn: dict[str, Any]) -> dict[str, Any]:
    row = {column.name: None for column in invoice_status.columns}
    row.update(
        {
            "invoice_id": f"00000000-0000-0000-0000-{index:012d}",
            "currency": "usd",
            **dict.fromkeys(("subtotal", "tax", "amount_paid", "amount_refunded", "amount_overpaid"), 0),
            **dict.fromkeys(("credit_refunded", "amount_disputed", "amount_dispute_lost", "written_off"), 0),
            "failed_attempts": 0,
            "version": 1,
            **drawn,
        }
    )
    return row


def _expected(rows: list[dict[str, Any]], sort: str, descending: bool) -> list[str]:
    names = [key.key for key in SORTS[sort].keys]
    valued = sorted((r for r in rows if r[sort] is not None), key=lambda r: [r[n] for n in names], reverse=descending)
    nulls = sorted((r for r in rows if r[sort] is None), key=lambda r: str(r["invoice_id"]), reverse=descending)
    return [r["invoice_id"] for r in valued + nulls]


@settings(settings.get_profile("integration"), max_examples=20)
@given(drawn=_rows, limit=st.integers(1, 4), q=st.sampled_from([None, "ACME", "inv-"]))
def test_paging_loses_and_repeats_no_row_for_any_sort_either_way(
    engine: Engine, runner: ProjectionRunner, drawn: list[dict[str, Any]], limit: int, q: str | None
) -> None:
    """With `q` too: a search reads the table and sorts the matches, paged by the same keys."""
    rows = [_row(i, d) for i, d in enumerate(drawn)]
    with engine.begin() as conn:
        conn.execute(invoice_status.delete())
        insert_rows(conn, invoice_status, rows)
    for sort in SORTS:
        for descending in (False, True):
            seen: list[str] = []
            cursor: str | None = None
            while True:
                page = search_invoices(engine, sort=sort, descending=descending, limit=limit, cursor=cursor, q=q)
                assert len(page.rows) <= limit
                seen += [row["invoice_id"] for row in page.rows]
                if page.next_cursor is None:
                    break
                assert len(page.rows) == limit
                cursor = page.next_cursor
            assert seen == _expected([r for r in rows if _found(r, q)], sort, descending), (sort, descending)


def _found(row: dict[str, Any], q: str | None) -> bool:
    if q is None:
        return True
    text = q.lower()
    number = str(row["number"] or "").lower()
    return number.startswith(text) or text in row["customer_email"].lower() or text in row["customer_name"].lower()


# --------------------------------------------------------------------------- failed payments and dunning


def test_failed_payments_show_where_each_dunning_stands(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    story = tell_the_story(app, clock, runner)

    page = failed_payments(engine)

    assert [row["invoice_id"] for row in page.rows] == [str(story.ids["eur"]), str(story.ids["d61"])]  # latest first
    eur, usd = page.rows
    assert (eur["amount_due"], eur["failed_attempts"], eur["last_failure_code"]) == (9_000, 1, "card_declined")
    assert eur["last_failure_at"] == datetime(2026, 6, 12, 10, tzinfo=UTC)
    assert eur["dunning_status"] == "active"
    assert (eur["dunning_steps_done"], eur["dunning_steps_total"]) == (3, 6)  # two skipped, one reminder
    assert (eur["dunning_reminders"], eur["dunning_retries"]) == (1, 0)
    assert (eur["dunning_last_step"], eur["dunning_last_step_at"]) == ("reminder", datetime(2026, 6, 13, 9, tzinfo=UTC))
    assert (eur["dunning_next_step"], eur["dunning_next_step_at"]) == ("retry", datetime(2026, 6, 15, tzinfo=UTC))
    assert usd["dunning_status"] is None  # never started: no dunning pass ran for it
    assert usd["dunning_next_step"] is None
    assert failed_payments(engine, currency="usd").rows == [usd]
    with pytest.raises(InvalidInputError):
        failed_payments(engine, currency="us\x00")

    first = failed_payments(engine, limit=1)
    assert [r["invoice_id"] for r in first.rows] == [str(story.ids["eur"])]
    assert first.next_cursor is not None
    second = failed_payments(engine, limit=1, cursor=first.next_cursor)
    assert [r["invoice_id"] for r in second.rows] == [str(story.ids["d61"])]
    assert second.next_cursor is None
    with pytest.raises(InvalidInputError):
        failed_payments(engine, cursor=search_invoices(engine, limit=1).next_cursor)


def test_the_dunning_model_follows_the_dunning_to_its_end_and_equals_a_rebuild(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    story = tell_the_story(app, clock, runner)
    at(clock, "2026-06-16T09:00:00")
    app.dunning.advance(story.ids["eur"], policy=DunningPolicy.parse())  # retry:14 with no provider: a reminder
    runner.catch_up()
    row = dunning_row(engine, str(story.ids["eur"]))
    assert row is not None
    assert (row["steps_done"], row["reminders"], row["retries"], row["last_step"]) == (4, 2, 0, "reminder")
    assert row["reason"] == "no payment provider configured"
    assert (row["next_step"], row["next_step_at"]) == ("reminder", datetime(2026, 6, 22, tzinfo=UTC))

    at(clock, "2026-06-17T09:00:00")
    app.record_offline_payment(story.ids["eur"], Money(9_000, "eur"), reference="wire-eur")
    app.dunning.advance(story.ids["eur"], policy=DunningPolicy.parse())
    runner.catch_up()
    row = dunning_row(engine, str(story.ids["eur"]))
    assert row is not None
    assert (row["status"], row["last_step"], row["reason"]) == ("stopped", "stopped", "invoice paid")
    assert (row["next_step"], row["next_step_at"]) == (None, None)
    assert dunning_row(engine, str(story.ids["d61"])) is None
    assert failed_payments(engine, currency="eur").rows == []  # paid: nothing due

    report = check(engine, app, lambda: read_model_projections(app), batch_size=3)
    assert report.ok, str(report)
    assert "dunning_status" in {table.table for table in report.tables}


# --------------------------------------------------------------------------- payouts


def test_payouts_show_their_reconciliation_postings_items_and_fees(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    for day, key, amount in [(10, "po_1", 5_000), (11, "po_2", 7_000), (20, "po_3", 1_000)]:
        at(clock, f"2026-05-{day}T09:00:00")
        app.record_payout(provider="stripe", provider_payout_id=key, amount=Money(amount, "usd"), paid=True)
    app.reconciliation.record_fees("stripe", [FeeToRecord("txn_po_1", Money(25, "usd"), "po_1", None)])
    mismatch = _difference(PAYOUT_MISMATCH, "po_2", "usd")
    record_run(app, [mismatch], Period(datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 5, 15, tzinfo=UTC)))
    runner.catch_up()

    page = list_payouts(engine)
    assert [(r["provider_payout_id"], r["reconciliation"], r["open_items"]) for r in page.rows] == [
        ("po_3", "never checked", 0),  # reported after the run's period
        ("po_2", "open", 1),
        ("po_1", "matched", 0),
    ]
    assert list_payouts(engine, status="failed").rows == []
    with pytest.raises(InvalidInputError):
        list_payouts(engine, status="lost")
    first = list_payouts(engine, limit=2)
    assert first.next_cursor is not None
    assert [r["provider_payout_id"] for r in list_payouts(engine, limit=2, cursor=first.next_cursor).rows] == ["po_1"]

    detail = payout_detail(engine, str(payout_id_for("stripe", "po_1")))
    assert detail is not None
    assert (detail["amount"], detail["status"], detail["reconciliation"]) == (5_000, "paid", "matched")
    assert [(p["account"], p["debit"], p["credit"]) for p in detail["postings"]] == [
        ("bank", 5_000, 0),
        ("processor_balance", 0, 5_000),
    ]
    assert [(f["balance_transaction_id"], f["amount"]) for f in detail["fees"]] == [("txn_po_1", 25)]
    assert detail["items"] == []
    other = payout_detail(engine, str(payout_id_for("stripe", "po_2")))
    assert other is not None
    assert [(i["class"], i["status"], i["stripe_id"]) for i in other["items"]] == [(PAYOUT_MISMATCH, "open", "po_2")]
    assert payout_detail(engine, str(uuid4())) is None


# --------------------------------------------------------------------------- an invoice's audit


def test_an_invoices_audit_names_each_event_ok_altered_or_not_yet_chained(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    at(clock, "2026-03-01T09:00:00")
    invoice_id = invoice(app, 4_000, due=date(2026, 4, 1))
    other = invoice(app, 1_000, due=date(2026, 4, 1))
    runner.catch_up()
    at(clock, "2026-03-02T09:00:00")
    app.record_offline_payment(invoice_id, Money(4_000, "usd"), reference="wire")  # logged, not chained yet

    audit = invoice_audit(engine, app.recorder, invoice_id)

    assert [(e["version"], e["topic"], e["status"]) for e in audit] == [
        (1, "invoice.created", "ok"),
        (2, "invoice.line-added", "ok"),
        (3, "invoice.issued", "ok"),
        (4, "invoice.payment-applied", "not yet chained"),
        (5, "invoice.paid", "not yet chained"),
    ]
    assert audit[0]["moment"] == datetime(2026, 3, 1, 9, tzinfo=UTC)
    assert audit[0]["position"] is not None
    assert audit[-1]["position"] is None
    runner.catch_up()
    assert {e["status"] for e in invoice_audit(engine, app.recorder, invoice_id)} == {"ok"}

    issued = invoice_audit(engine, app.recorder, invoice_id)[2]["position"]
    table = str(getattr(app.recorder, "events_table_name", "stored_events"))
    key = "notification_id" if engine.dialect.name == "postgresql" else "rowid"
    with engine.begin() as conn:  # someone rewrites the stored issue behind the application's back
        state = conn.execute(text(f"SELECT state FROM {table} WHERE {key} = :p"), {"p": issued}).scalar_one()
        altered = bytes(state).replace(b'"INV', b'"XNV')
        assert altered != bytes(state)
        conn.execute(text(f"UPDATE {table} SET state = :s WHERE {key} = :p"), {"s": altered, "p": issued})

    statuses = [e["status"] for e in invoice_audit(engine, app.recorder, invoice_id)]
    assert statuses[2] == "altered"
    assert statuses.count("altered") == 1  # each event is re-hashed from its own kept link
    # A range of versions (a page of the timeline): those events only, each judged as above.
    ranged = invoice_audit(engine, app.recorder, invoice_id, after=2, upto=4)
    assert [(e["version"], e["status"], e["position"]) for e in ranged] == [
        (3, "altered", issued),
        (4, "ok", invoice_audit(engine, app.recorder, invoice_id)[3]["position"]),
    ]
    assert {e["status"] for e in invoice_audit(engine, app.recorder, other)} == {"ok"}


# --------------------------------------------------------------------------- the other lists' sorts


def _key(index: int) -> str:
    return f"00000000-0000-0000-0000-{index:012d}"


_MOMENTS = [datetime(2026, 3, d, 9, s, tzinfo=UTC) for d in (1, 2) for s in (0, 1)]


def _failed_row(index: int, drawn: dict[str, Any]) -> dict[str, Any]:
    row = _row(index, {"created_at": _MOMENTS[0], "customer_name": "Acme", "customer_email": "ap@acme.example"})
    row.update(
        status=drawn["status"],
        number=drawn["number"],
        total=5,
        amount_due=drawn["amount_due"],
        failed_attempts=drawn["attempts"],
        last_failure_at=drawn["last_failure"].isoformat(),
    )
    return row


def _payout_row(index: int, drawn: dict[str, Any]) -> dict[str, Any]:
    return {
        "payout_id": _key(index),
        "provider": "stripe",
        "provider_payout_id": f"po_{index}",
        "currency": "usd",
        "amount": drawn["amount"],
        "status": drawn["status"],
        "reported_at": drawn["reported"],
        "updated_at": drawn["reported"],
        "version": 1,
    }


def _item_row(index: int, drawn: dict[str, Any]) -> dict[str, Any]:
    return {
        "item_id": _key(index),
        "class": drawn["class"],
        "status": "open",
        "currency": "usd",
        "amount_ledger": drawn["amount"],
        "amount_stripe": None,
        "stripe_id": None,
        "invoice_id": None,
        "payment_id": None,
        "explanation": "",
        "events": "[]",
        "detected_at": drawn["detected"],
        "last_run_id": None,
        "resolution": None,
        "updated_at": drawn["detected"],
        "version": 1,
    }


def _webhook_row(index: int, drawn: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_key": _key(index),
        "provider": "stripe",
        "event_id": _key(index),  # the listing shows the provider's id: the same, to compare
        "event_type": "invoice.paid",
        "object_id": None,
        "created": 0,
        "received_at": drawn["received"],
        "handled_at": None,
        "status": "applied",
        "detail": "",
        "api_version": None,
        "position": index,
        "version": 1,
    }


def _activity_row(index: int, drawn: dict[str, Any]) -> dict[str, Any]:
    return {
        "action_id": _key(index),
        "performed_at": drawn["performed"],
        "user_id": _key(0),
        "email": "ann@example.com",
        "action": "invoice.void",
        "target": None,
        "detail": "",
        "events": "[]",
        "position": drawn["position"],
    }


@dataclass(frozen=True)
class _Listing:
    table: Any
    drawn: st.SearchStrategy[dict[str, Any]]
    row: Any  # (index, drawn) -> the stored row
    listed: Any  # stored row -> whether the listing shows it
    page: Any  # (engine, sort, descending, limit, cursor) -> Page
    sorts: dict[str, Any]  # sort -> the stored row's keys, in the expected order (ties: the unique key last)
    shown_id: str  # the listed row's field naming it
    stored_id: str  # the stored row's field holding the same


_LISTINGS = {
    "failed payments": _Listing(
        invoice_status,
        st.fixed_dictionaries(
            {
                "status": st.sampled_from(["open", "open", "paid"]),
                "number": st.sampled_from(["INV-000001", "INV-000002", "B-1"]),
                "amount_due": st.integers(0, 2),
                "attempts": st.integers(0, 2),
                "last_failure": st.sampled_from(_MOMENTS),
            }
        ),
        _failed_row,
        lambda r: r["status"] == "open" and r["amount_due"] > 0 and r["failed_attempts"] > 0,
        lambda engine, **kw: failed_payments(engine, **kw),
        {
            "last_failure": lambda r: (r["last_failure_at"], r["invoice_id"]),
            "amount_due": lambda r: (r["amount_due"], r["invoice_id"]),
            "attempts": lambda r: (r["failed_attempts"], r["invoice_id"]),
            "number": lambda r: (r["number"], r["invoice_id"]),
        },
        "invoice_id",
        "invoice_id",
    ),
    "payouts": _Listing(
        payouts,
        st.fixed_dictionaries(
            {
                "amount": st.integers(0, 2),
                "status": st.sampled_from(["paid", "in_transit", "failed"]),
                "reported": st.sampled_from(_MOMENTS),
            }
        ),
        _payout_row,
        lambda r: True,
        lambda engine, **kw: list_payouts(engine, **kw),
        {
            "reported": lambda r: (r["reported_at"], r["payout_id"]),
            "amount": lambda r: (r["amount"], r["payout_id"]),
            "status": lambda r: (r["status"], r["reported_at"], r["payout_id"]),
        },
        "payout_id",
        "payout_id",
    ),
    "reconciliation items": _Listing(
        reconciliation_items,
        st.fixed_dictionaries(
            {
                "class": st.sampled_from([MISSING_IN_LEDGER, PAYOUT_MISMATCH, STUCK_EVENT]),
                "amount": st.sampled_from([None, -1, 0, 2]),
                "detected": st.sampled_from(_MOMENTS),
            }
        ),
        _item_row,
        lambda r: True,
        lambda engine, **kw: list_items(engine, **kw),
        {
            "detected": lambda r: (r["detected_at"], r["item_id"]),
            # No ledger amount sorts as the smallest amount.
            "amount": lambda r: (-(2**63) if r["amount_ledger"] is None else r["amount_ledger"], r["item_id"]),
            "class": lambda r: (r["class"], r["detected_at"], r["item_id"]),
        },
        "id",
        "item_id",
    ),
    "webhooks": _Listing(
        webhook_events,
        st.fixed_dictionaries({"received": st.sampled_from(_MOMENTS)}),
        _webhook_row,
        lambda r: True,
        lambda engine, sort, descending, **kw: list_webhook_events(engine, oldest_first=not descending, **kw),
        {"received": lambda r: (r["received_at"], r["event_key"])},
        "id",
        "event_id",
    ),
    "activity": _Listing(
        admin_activity,
        st.fixed_dictionaries({"performed": st.sampled_from(_MOMENTS), "position": st.integers(0, 3)}),
        _activity_row,
        lambda r: True,
        lambda engine, sort, descending, **kw: list_activity(engine, descending=descending, **kw),
        {"performed": lambda r: (r["performed_at"], r["position"])},
        "action_id",
        "action_id",
    ),
}


@settings(settings.get_profile("integration"), max_examples=15)
@given(data=st.data(), limit=st.integers(1, 4))
@pytest.mark.parametrize("name", list(_LISTINGS))
def test_every_lists_sorts_page_through_every_row_once_in_order_ties_included(
    engine: Engine, runner: ProjectionRunner, name: str, data: st.DataObject, limit: int
) -> None:
    """Each sort, each direction, paged `limit` rows at a time: every listed row once, in the
    order of the sort's keys (ties broken by the unique key), whatever the page boundaries."""
    listing = _LISTINGS[name]
    drawn = data.draw(st.lists(listing.drawn, max_size=12))
    rows = [listing.row(i, d) for i, d in enumerate(drawn)]
    if name == "activity":  # the log position is unique: draw it as a tie-breaker among the rows
        for i, row in enumerate(rows):
            row["position"] = row["position"] * 100 + i
    with engine.begin() as conn:
        conn.execute(listing.table.delete())
        insert_rows(conn, listing.table, rows)
    for sort, key in listing.sorts.items():
        for descending in (False, True):
            seen: list[str] = []
            cursor: str | None = None
            while True:
                page = listing.page(engine, sort=sort, descending=descending, limit=limit, cursor=cursor)
                assert len(page.rows) <= limit
                seen += [str(row[listing.shown_id]) for row in page.rows]
                if page.next_cursor is None:
                    break
                assert len(page.rows) == limit
                cursor = page.next_cursor
            expected = sorted((r for r in rows if listing.listed(r)), key=key, reverse=descending)
            assert seen == [str(r[listing.stored_id]) for r in expected], (name, sort, descending)


def test_a_sorted_lists_cursor_is_refused_by_another_sort_or_direction(
    app: BillingApplication, clock: ManualClock, runner: ProjectionRunner, engine: Engine
) -> None:
    tell_the_story(app, clock, runner)
    for key in ("po_1", "po_2"):
        app.record_payout(provider="stripe", provider_payout_id=key, amount=Money(100, "usd"), paid=True)
    runner.catch_up()
    for page, sorts in (
        (failed_payments, ("last_failure", "amount_due", "attempts", "number")),
        (list_payouts, ("reported", "amount", "status")),
        (list_items, ("detected", "amount", "class")),
    ):
        with pytest.raises(InvalidInputError) as refused:
            page(engine, sort="nope")
        assert refused.value.field == "sort"
        for sort in sorts:
            first = page(engine, sort=sort, descending=True, limit=1)
            assert first.next_cursor is not None
            assert page(engine, sort=sort, descending=True, limit=1, cursor=first.next_cursor).rows
            for other in sorts:
                for descending in (True, False):
                    if (other, descending) == (sort, True):
                        continue
                    with pytest.raises(InvalidInputError) as refused:
                        page(engine, sort=other, descending=descending, limit=1, cursor=first.next_cursor)
                    assert refused.value.field == "cursor"
    # Webhooks and activity: a cursor of newest first is refused oldest first, and the other way.
    with engine.begin() as conn:
        insert_rows(conn, webhook_events, [_webhook_row(i, {"received": _MOMENTS[i]}) for i in range(3)])
        insert_rows(
            conn, admin_activity, [_activity_row(i, {"performed": _MOMENTS[i], "position": i}) for i in range(3)]
        )
    for listed in (
        lambda descending, cursor: list_webhook_events(engine, limit=1, cursor=cursor, oldest_first=not descending),
        lambda descending, cursor: list_activity(engine, limit=1, cursor=cursor, descending=descending),
    ):
        for descending in (True, False):
            cursor = listed(descending, None).next_cursor
            assert cursor is not None
            assert listed(descending, cursor).rows
            with pytest.raises(InvalidInputError):
                listed(not descending, cursor)
